"""
The temperature service's metrics: requests answered by result, and its
datagrams answered and dropped, read from the counters its protocol and its
reflection guard keep.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from twisted_services.server.metrics.counters import DatagramCounters
from twisted_services.server.metrics.families import datagramFamilies, labelled


class TemperatureCounters:
    """
    Requests converted (C{ok}) and answered with an error (C{errors}), as
    the protocol made their replies.
    """

    __slots__ = ("errors", "ok")

    def __init__(self) -> None:
        self.ok = 0
        self.errors = 0


class TemperatureCollector:
    """Collects temperature's metrics from its protocol's and guard's counters."""

    def __init__(
        self, results: TemperatureCounters, datagrams: DatagramCounters
    ) -> None:
        self._results = results
        self._datagrams = datagrams

    def collect(self) -> Iterator[Metric]:
        results = self._results
        yield labelled(
            CounterMetricFamily,
            "temperature_requests",
            "Temperature requests answered, by result: ok (converted) or error.",
            {},
            "result",
            {"ok": results.ok, "error": results.errors},
        )
        yield from datagramFamilies("temperature", self._datagrams)
