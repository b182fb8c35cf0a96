"""
The temperature service's metrics: requests answered by result, and its
datagrams answered and dropped, read from the counters its protocol and its
reflection guard keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from twisted_services.server.metrics.counters import DatagramCounters
from twisted_services.server.metrics.families import datagramFamilies, labelled

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


class TemperatureCounters:
    """
    Requests answered with an error (C{errors}), counted as the protocol
    makes their replies; the rest of the replies are conversions.
    """

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors = 0


class TemperatureCollector:
    """Collects temperature's metrics from its protocol's and guard's counters."""

    def __init__(
        self, results: TemperatureCounters, datagrams: DatagramCounters
    ) -> None:
        self._results = results
        self._datagrams = datagrams

    def collect(self) -> Iterator[Metric]:
        # Every datagram the guard lets through gets a reply, which is sent
        # (answered) or not (send_failed): those not errors are conversions.
        # One count per error is cheaper than one per reply.
        datagrams, errors = self._datagrams, self._results.errors
        replies = datagrams.answered + datagrams.sendFailed
        yield labelled(
            "temperature_requests",
            "Temperature requests answered, by result: ok (converted) or error.",
            {},
            "result",
            {"ok": replies - errors, "error": errors},
        )
        yield from datagramFamilies("temperature", self._datagrams)
