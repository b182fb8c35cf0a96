"""
The http service's metrics: its connections and bytes; requests by method
class and status code, how long they took, the responses each route gave,
and the requests refused by reason.

L{HTTPCounters} keeps per-request work to one dict increment keyed by the
response the protocol already looked up; the labels are worked out from
those keys at scrape time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from twisted_services.http.responses import STATUS, Kind, ResponseKey
from twisted_services.server.connections import ConnectionTracker
from twisted_services.server.metrics.counters import MAX_CONNECTIONS, Histogram
from twisted_services.server.metrics.families import (
    counterSamples,
    histogram,
    labelled,
    streamFamilies,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

GET = "GET"
HEAD = "HEAD"
OTHER = "other"
"""Method classes: C{GET}, C{HEAD}, and every other method (or none parsed)."""

ROUTE_LABELS = {Kind.HELLO: "/", Kind.HEALTH: "/health", Kind.REQUEST_ECHO: "/request"}
"""The C{route} label of each route's responses; every other one is C{none}."""

REJECTIONS = {
    Kind.BAD_REQUEST: "bad_request",
    Kind.REQUEST_TIMEOUT: "timeout",
    Kind.PAYLOAD_TOO_LARGE: "body_too_large",
    Kind.URI_TOO_LONG: "uri_too_long",
    Kind.HEADERS_TOO_LARGE: "headers_too_large",
    Kind.VERSION_NOT_SUPPORTED: "version_not_supported",
}
"""The C{reason} of each kind of refused request (503 is a refused connection)."""


class HTTPCounters:
    """
    What http counts beyond connections and bytes.

    @ivar answered: requests answered as their last byte arrived, by the
        response they got (its kind, whether to C{HEAD}, and its
        C{Connection}).
    @ivar otherNotFound: of the 404s in C{answered} not to C{HEAD}, those
        to a method other than C{GET} (405 always is one).
    @ivar rejected: requests refused before they were complete (and 404s
        and 405s found early), by kind and method class.
    @ivar duration: seconds from a request's first byte to its response
        being written.
    """

    __slots__ = ("answered", "duration", "otherNotFound", "rejected")

    def __init__(self) -> None:
        self.answered: defaultdict[ResponseKey, int] = defaultdict(int)
        self.otherNotFound = 0
        self.rejected: defaultdict[tuple[Kind, str], int] = defaultdict(int)
        self.duration = Histogram()

    def byMethodAndKind(self) -> dict[tuple[str, Kind], int]:
        """Every request answered, by method class and kind of response."""
        counts: defaultdict[tuple[str, Kind], int] = defaultdict(int)
        for (kind, headOnly, _), count in list(self.answered.items()):
            if headOnly:
                method = HEAD
            elif kind is Kind.METHOD_NOT_ALLOWED:
                method = OTHER
            else:
                method = GET
            counts[method, kind] += count
        if self.otherNotFound:
            counts[GET, Kind.NOT_FOUND] -= self.otherNotFound
            counts[OTHER, Kind.NOT_FOUND] += self.otherNotFound
        for (kind, method), count in list(self.rejected.items()):
            counts[method, kind] += count
        return counts


class HTTPCollector:
    """Collects http's metrics from its factory's counters."""

    def __init__(self, counters: HTTPCounters, connections: ConnectionTracker) -> None:
        self._counters = counters
        self._connections = connections

    def collect(self) -> Iterator[Metric]:
        connections = self._connections
        yield from streamFamilies("http", connections.counters, len(connections))
        counts = self._counters.byMethodAndKind()
        byCode: defaultdict[tuple[str, int], int] = defaultdict(int)
        routes = dict.fromkeys([*ROUTE_LABELS.values(), "none"], 0)
        rejections = dict.fromkeys(REJECTIONS.values(), 0)
        for (method, kind), count in counts.items():
            byCode[method, STATUS[kind]] += count
            routes[ROUTE_LABELS.get(kind, "none")] += count
            if kind in REJECTIONS:
                rejections[REJECTIONS[kind]] += count
        yield counterSamples(
            "http_requests",
            "Requests answered, by method class (GET, HEAD, other) and status code.",
            ["method", "code"],
            # A 0 is a GET 404 count that all went to other methods.
            [
                ([method, str(code)], count)
                for (method, code), count in sorted(byCode.items())
                if count
            ],
        )
        yield histogram(
            "http_request_duration_seconds",
            "Seconds from a request's first byte to its response being written.",
            {},
            self._counters.duration,
        )
        yield labelled(
            "http_responses",
            "Responses by route: /, /health, /request, or none (404s and errors).",
            {},
            "route",
            routes,
        )
        rejections["service_unavailable"] = connections.counters.refused[
            MAX_CONNECTIONS
        ]
        yield labelled(
            "http_rejections",
            "Requests refused, by reason: 400 bad_request, 408 timeout, 413 "
            "body_too_large, 414 uri_too_long, 431 headers_too_large, 505 "
            "version_not_supported, and 503 service_unavailable (connections "
            "past --max-connections).",
            {},
            "reason",
            rejections,
        )
