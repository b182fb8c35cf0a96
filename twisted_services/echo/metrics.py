"""
The echo service's metrics: its connections and bytes, and its UDP
datagrams when it serves UDP, read from the counters its factory and its
reflection guard keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from twisted_services.server.connections import ConnectionTracker
from twisted_services.server.metrics.families import datagramFamilies, streamFamilies
from twisted_services.server.udpguard import ReflectionGuard

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


class EchoCollector:
    """Collects echo's metrics from its L{ConnectionTracker} and UDP guard."""

    def __init__(
        self, connections: ConnectionTracker, guard: ReflectionGuard | None = None
    ) -> None:
        self._connections = connections
        self._guard = guard

    def collect(self) -> Iterator[Metric]:
        connections = self._connections
        yield from streamFamilies("echo", connections.counters, len(connections))
        if self._guard is not None:
            yield from datagramFamilies("echo", self._guard.counters)
