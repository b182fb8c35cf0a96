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

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

from twisted_services.server.metrics.counters import (
    DatagramCounters,
    Histogram,
    StreamCounters,
)

PREFIX = "twisted_services_"


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
    return _single(CounterMetricFamily, name, documentation, labels, value)


def gauge(
    name: str, documentation: str, labels: dict[str, str], value: float
) -> Metric:
    """A gauge family C{PREFIX + name} with one sample."""
    return _single(GaugeMetricFamily, name, documentation, labels, value)


def labelled(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    labels: dict[str, str],
    label: str,
    values: dict[str, int],
) -> Metric:
    """A family C{PREFIX + name} with a sample per key of C{values} as C{label}."""
    family = kind(PREFIX + name, documentation, labels=[*labels, label])
    fixed = list(labels.values())
    for key, value in values.items():
        family.add_metric([*fixed, key], value)
    return family


def histogram(
    name: str, documentation: str, labels: dict[str, str], observed: Histogram
) -> HistogramMetricFamily:
    """A histogram family C{PREFIX + name} of what C{observed} recorded."""
    family = HistogramMetricFamily(PREFIX + name, documentation, labels=list(labels))
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
        CounterMetricFamily,
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
        CounterMetricFamily,
        "udp_datagrams_dropped",
        "UDP datagrams left unanswered, by reason.",
        labels,
        "reason",
        counters.dropped(),
    )
