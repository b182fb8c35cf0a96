"""
What each plugin adds to its service tree for metrics (L{metricsServices}).

The exporter's module, with C{prometheus_client} and C{twisted.web}, is
imported only when C{--metrics} asks for an exporter: every other start
would pay about 60 ms for it.
"""

from __future__ import annotations

from twisted.application.service import IService
from twisted.internet.interfaces import IReactorCore

from twisted_services.server.metrics.sources import Collector, MetricsSource


def metricsServices(
    collector: Collector, endpoint: str | None, reactor: IReactorCore
) -> list[IService]:
    """
    A L{MetricsSource} for C{collector}, always (a combined plugin's
    exporter, or a workers supervisor, finds it), and, given an C{endpoint}
    (the plugin's C{--metrics}), the exporter serving it.
    """
    services: list[IService] = [MetricsSource(collector)]
    if endpoint is not None:
        from twisted_services.server.metrics.exposition import MetricsExporter

        services.append(MetricsExporter([endpoint], reactor))
    return services
