"""
C{--metrics ENDPOINT}: C{GET /metrics} in the Prometheus text format, for
every service in the process.

Each service puts a L{MetricsSource} (L{sources}) in its service tree,
holding a collector that reads its counters; the L{MetricsExporter} walks the whole
tree it belongs to at each scrape, so in C{twistd services} one exporter
serves all four services' metrics, merged into one family per name.

The exposition is rendered by C{prometheus_client.generate_latest} on the
reactor thread, behind a small C{twisted.web} resource: the client's own
C{MetricsResource} answers from a thread pool, where the collectors would
read counters the reactor is changing, and imports the global reactor when
it is imported.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from twisted.application.service import IService, MultiService
from twisted.internet.interfaces import IAddress, IProtocol, IReactorCore
from twisted.protocols.policies import WrappingFactory
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

import twisted
import twisted_services
from twisted_services.server.listeners import streamListeners
from twisted_services.server.metrics.families import PREFIX
from twisted_services.server.metrics.sources import MetricsSource
from twisted_services.server.tree import rootOf, walk

MAX_SCRAPERS = 16
"""
Connections the metrics listener holds at once: Prometheus uses one per
target, so this is room for a few scrapers and a curl, not a service.
"""

SCRAPE_TIMEOUT = 10.0
"""Seconds a metrics connection may sit idle before it is closed."""


class TreeCollector:
    """
    Every L{MetricsSource} in a service tree, collected in tree order, with
    the families of one name from several services (each with its own
    C{service} label) merged into one, as the text format requires.
    """

    def __init__(self, root: Callable[[], IService]) -> None:
        self._root = root

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for service in walk(self._root()):
            if not isinstance(service, MetricsSource):
                continue
            for family in service.collector.collect():
                known = merged.get(family.name)
                if known is None:
                    merged[family.name] = family
                else:
                    known.samples.extend(family.samples)
        yield from merged.values()


class BuildInfoCollector:
    """C{twisted_services_build_info}: 1, labelled with the versions running."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            PREFIX + "build_info",
            "The versions running: twisted-services, Twisted and Python.",
            labels=["version", "twisted_version", "python_version"],
        )
        family.add_metric(
            [
                twisted_services.__version__,
                twisted.__version__,
                platform.python_version(),
            ],
            1,
        )
        yield family


def metricsRegistry(root: Callable[[], IService]) -> CollectorRegistry:
    """
    A registry of the metrics of the tree C{root} returns, the process's
    (CPU, memory, descriptors) and the build's.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TreeCollector(root))
    registry.register(BuildInfoCollector())
    ProcessCollector(registry=registry)
    return registry


class MetricsResource(Resource):
    """C{GET /metrics}: the registry's exposition, rendered here and now."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        # What generate_latest writes for names like ours is the 0.0.4 text
        # format, which every Prometheus 2 reads (Debian's 2.42 included).
        request.setHeader(b"Content-Type", CONTENT_TYPE_PLAIN_0_0_4.encode("ascii"))
        return generate_latest(self._registry)


class _QuietSite(Site):
    """A L{Site} that logs no access line: a scrape every few seconds is noise."""

    def log(self, request: Request) -> None:
        """Scrapes are not logged."""


class _Limited(WrappingFactory):
    """Its factory's connections, up to L{MAX_SCRAPERS} at once; more are closed."""

    noisy = False

    def buildProtocol(self, addr: IAddress) -> IProtocol | None:
        if len(self.protocols) >= MAX_SCRAPERS:
            return None
        return super().buildProtocol(addr)


class MetricsExporter(MultiService):
    """
    Serves C{GET /metrics} on each of C{descriptions} (endpoint
    descriptions, as C{--listen} takes) for every L{MetricsSource} in the
    service tree it is part of; any other path is a 404.

    A supervisor of workers serves another C{resource} (the workers'
    metrics merged) on the same kind of site.

    @ivar descriptions: the endpoint descriptions served.
    @ivar registry: what this process's own tree and process export.

    @raise SystemExit: with a one-line message, as for any listener, for a
        description that cannot be parsed.
    """

    def __init__(
        self,
        descriptions: Iterable[str],
        reactor: IReactorCore,
        resource: Resource | None = None,
    ) -> None:
        super().__init__()
        self.descriptions = list(descriptions)
        self.registry = metricsRegistry(lambda: rootOf(self))
        root = Resource()
        root.putChild(
            b"metrics", MetricsResource(self.registry) if resource is None else resource
        )
        site = _QuietSite(root, timeout=SCRAPE_TIMEOUT, reactor=reactor)
        site.noisy = False
        limited = _Limited(site)
        for listener in streamListeners("metrics", self.descriptions, limited, reactor):
            listener.setServiceParent(self)
