"""
Where a service's metrics live in its service tree: a L{MetricsSource}
holding its collector, which an exporter (L{exposition.MetricsExporter}, or
a workers supervisor asking its workers) finds by walking the tree.

Every service has one, so this module is imported by every start and keeps
to what that needs: no C{prometheus_client}, no C{twisted.web}.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from twisted.application.service import Service

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


class Collector(Protocol):
    """What C{prometheus_client} collects from: metric families, on demand."""

    def collect(self) -> Iterable[Metric]: ...


class MetricsSource(Service):
    """
    A service's metrics, in its service tree: whichever exporter the tree
    has collects from it. It runs nothing.
    """

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
