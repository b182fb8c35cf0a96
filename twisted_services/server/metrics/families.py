"""
The metric families every service shares, built from its counters at scrape
time: pure functions of the numbers they are given, so that whatever renders
them (this process's C{/metrics}, or a supervisor summing its workers') gets
the same families from the same counts.

Every name has the one project prefix L{PREFIX}; counters end in C{_total},
sizes are in bytes and durations in seconds, and each label has a fixed,
small set of values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING

from twisted_services.server.metrics.counters import (
    DatagramCounters,
    Histogram,
    StreamCounters,
)

if TYPE_CHECKING:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )
    from prometheus_client.metrics_core import Metric

PREFIX = "twisted_services_"


def _prometheus() -> ModuleType:
    """
    C{prometheus_client.core}, imported at the first scrape rather than at
    start-up: every service builds its collector, most are never scraped,
    and importing C{prometheus_client} cost every start about 40 ms.
    """
    from prometheus_client import core

    return core


def _single(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    labels: dict[str, str],
    value: float,
) -> Metric:
    """A family C{PREFIX + name} of C{kind} with one sample."""
    family = kind(PREFIX + name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def counter(
    name: str, documentation: str, labels: dict[str, str], value: float
) -> Metric:
    """A counter family C{PREFIX + name} (without C{_total}) with one sample."""
    kind = _prometheus().CounterMetricFamily
    return _single(kind, name, documentation, labels, value)


def gauge(
    name: str, documentation: str, labels: dict[str, str], value: float
) -> Metric:
    """A gauge family C{PREFIX + name} with one sample."""
    kind = _prometheus().GaugeMetricFamily
    return _single(kind, name, documentation, labels, value)


def counterSamples(
    name: str,
    documentation: str,
    labelNames: list[str],
    samples: Iterable[tuple[list[str], float]],
) -> Metric:
    """A counter family C{PREFIX + name} with C{samples}: (label values, count)."""
    family = _prometheus().CounterMetricFamily(
        PREFIX + name, documentation, labels=labelNames
    )
    for values, count in samples:
        family.add_metric(values, count)
    return family


def labelled(
    name: str,
    documentation: str,
    labels: dict[str, str],
    label: str,
    values: dict[str, int],
) -> Metric:
    """
    A counter family C{PREFIX + name} with a sample per key of C{values} as
    C{label}, and C{labels} on each.
    """
    fixed = list(labels.values())
    samples = [([*fixed, key], value) for key, value in values.items()]
    return counterSamples(name, documentation, [*labels, label], samples)


def histogram(
    name: str, documentation: str, labels: dict[str, str], observed: Histogram
) -> HistogramMetricFamily:
    """A histogram family C{PREFIX + name} of what C{observed} recorded."""
    family = _prometheus().HistogramMetricFamily(
        PREFIX + name, documentation, labels=list(labels)
    )
    family.add_metric(list(labels.values()), observed.cumulative(), observed.sum)
    return family


def streamFamilies(
    service: str, counters: StreamCounters, openConnections: int
) -> Iterator[Metric]:
    """The families of a TCP service's connections and bytes."""
    labels = {"service": service}
    yield gauge("connections_open", "Connections open now.", labels, openConnections)
    yield counter(
        "connections_accepted", "Connections accepted.", labels, counters.accepted
    )
    yield labelled(
        "connections_refused",
        "Connections refused, by the limit that refused them.",
        labels,
        "reason",
        counters.refused,
    )
    yield counter(
        "connections_timed_out",
        "Connections closed because the client was idle or too slow.",
        labels,
        counters.timedOut,
    )
    yield counter(
        "received_bytes", "Bytes received from clients.", labels, counters.bytesReceived
    )
    yield counter("sent_bytes", "Bytes sent to clients.", labels, counters.bytesSent)


def datagramFamilies(service: str, counters: DatagramCounters) -> Iterator[Metric]:
    """The families of a UDP request/reply service's datagrams."""
    labels = {"service": service}
    yield counter(
        "udp_datagrams_answered",
        "UDP datagrams answered.",
        labels,
        counters.answered,
    )
    yield labelled(
        "udp_datagrams_dropped",
        "UDP datagrams left unanswered, by reason.",
        labels,
        "reason",
        counters.dropped(),
    )
