"""
Tests for L{twisted_services.http.metrics}: requests by method and status,
their durations, responses by route and rejections by reason, counted on
fake transports with a L{Clock}, as the collector exposes them.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.trial.unittest import SynchronousTestCase

from tests.http.test_protocol import request
from tests.support.prometheus import (
    NO_PROMTOOL,
    PROMTOOL,
    promtoolCheck,
    render,
    sampleValue,
)
from twisted_services.http.metrics import HTTPCollector
from twisted_services.http.protocol import HTTPFactory, HTTPProtocol
from twisted_services.testing import connect

MAX_HEADER_SIZE = 200


class HTTPMetricsTests(SynchronousTestCase):
    """What http counts, per request, and when it refuses one."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = HTTPFactory(
            self.clock,
            maxHeaderSize=MAX_HEADER_SIZE,
            maxBody=10,
            headerTimeout=5.0,
            idleTimeout=30.0,
            maxConnections=3,
        )
        self.collector = HTTPCollector(self.factory.counters, self.factory.connections)

    def send(self, data: bytes) -> StringTransportWithDisconnection:
        """C{data} from a new client, in one read; its transport."""
        protocol, transport = connect(self.factory)
        assert isinstance(protocol, HTTPProtocol)
        protocol.dataReceived(data)
        transport.loseConnection()
        return transport

    def value(self, name: str, **labels: str) -> float:
        return sampleValue(self.collector, f"twisted_services_{name}", **labels)

    def requests(self, method: str, code: int) -> float:
        return self.value("http_requests_total", method=method, code=str(code))

    def test_methodsAndCodes(self) -> None:
        """Requests are counted by method class and status code."""
        self.send(request("/") + request("/request") + request("/nope"))
        self.send(request("/health", "HEAD") + request("/nope", "HEAD"))
        self.send(request("/", "POST"))
        self.send(request("/nope", "DELETE"))
        self.assertEqual(self.requests("GET", 200), 2)
        self.assertEqual(self.requests("GET", 404), 1)
        self.assertEqual(self.requests("HEAD", 200), 1)
        self.assertEqual(self.requests("HEAD", 404), 1)
        self.assertEqual(self.requests("other", 405), 1)
        self.assertEqual(self.requests("other", 404), 1)

    def test_routes(self) -> None:
        """Responses are counted by route; 404s and errors under none."""
        self.send(request("/") + request("/", "HEAD") + request("/health"))
        self.send(request("/nope") + request("/", "POST"))
        routes = {
            route: self.value("http_responses_total", route=route)
            for route in ("/", "/health", "/request", "none")
        }
        self.assertEqual(routes, {"/": 2, "/health": 1, "/request": 0, "none": 2})

    def test_headerLimit(self) -> None:
        """
        A head of C{maxHeaderSize} bytes is answered; one byte more is
        rejected as headers_too_large, a 431.
        """
        fits = request("/", headers=[("X", "")])
        padding = MAX_HEADER_SIZE - len(fits) + 2
        self.send(request("/", headers=[("X", "a" * padding)]))
        self.assertEqual(self.requests("GET", 200), 1)
        self.send(request("/", headers=[("X", "a" * (padding + 1))]))
        self.assertEqual(
            self.value("http_rejections_total", reason="headers_too_large"), 1
        )
        self.assertEqual(self.requests("GET", 431), 1)

    def test_rejections(self) -> None:
        """Each kind of refused request is counted under its reason."""
        self.send(b"NONSENSE\r\n\r\n")
        self.send(request("/", "POST", headers=[("Content-Length", "11")]))
        self.send(request("/" + "a" * MAX_HEADER_SIZE))
        self.send(request("/", version="2.0"))
        reasons = {
            reason: self.value("http_rejections_total", reason=reason)
            for reason in (
                "bad_request",
                "body_too_large",
                "uri_too_long",
                "version_not_supported",
                "timeout",
            )
        }
        self.assertEqual(
            reasons,
            {
                "bad_request": 1,
                "body_too_large": 1,
                "uri_too_long": 1,
                "version_not_supported": 1,
                "timeout": 0,
            },
        )

    def test_unavailable(self) -> None:
        """The connection past C{--max-connections} counts as a 503 rejection."""
        for _ in range(3):
            connect(self.factory)
        self.assertEqual(
            self.value("http_rejections_total", reason="service_unavailable"), 0
        )
        protocol, _ = connect(self.factory)
        self.assertNotIsInstance(protocol, HTTPProtocol)
        self.assertEqual(
            self.value("http_rejections_total", reason="service_unavailable"), 1
        )

    def test_timeouts(self) -> None:
        """
        An idle connection closed quietly and a head answered 408 both
        count as timed out; the 408 is a timeout rejection, timed.
        """
        connect(self.factory)  # idle
        slow, _ = connect(self.factory)
        slow.dataReceived(b"GET / HTTP/1.1\r\n")
        self.clock.advance(5.0)
        self.assertEqual(self.value("http_rejections_total", reason="timeout"), 1)
        self.clock.advance(25.0)
        self.assertEqual(self.value("connections_timed_out_total", service="http"), 2)
        self.assertEqual(
            self.value("http_request_duration_seconds_bucket", le="5.0"), 1
        )
        self.assertEqual(
            self.value("http_request_duration_seconds_bucket", le="2.5"), 0
        )

    def test_duration(self) -> None:
        """
        A request spread over reads is timed from its first byte; the
        requests that began in the read that answered them, from that read.
        """
        protocol, _ = connect(self.factory)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n")
        self.clock.advance(0.3)
        protocol.dataReceived(b"\r\n" + request("/") + request("/health"))
        bucket = "http_request_duration_seconds_bucket"
        self.assertEqual(self.value(bucket, le="0.0001"), 2)
        self.assertEqual(self.value(bucket, le="0.25"), 2)
        self.assertEqual(self.value(bucket, le="0.5"), 3)
        self.assertEqual(self.value("http_request_duration_seconds_count"), 3)
        self.assertAlmostEqual(self.value("http_request_duration_seconds_sum"), 0.3)

    def test_refusedAcrossReads(self) -> None:
        """
        A head refused once its reads pass C{maxHeaderSize} is timed from its
        first read, like any request.
        """
        protocol, _ = connect(self.factory)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nX: " + b"a" * 100)
        self.clock.advance(0.3)
        protocol.dataReceived(b"a" * 100)
        self.assertEqual(self.requests("GET", 431), 1)
        bucket = "http_request_duration_seconds_bucket"
        self.assertEqual(self.value(bucket, le="0.25"), 0)
        self.assertEqual(self.value(bucket, le="0.5"), 1)

    def test_bytes(self) -> None:
        """Bytes received and sent are counted as read and written."""
        data = request("/") + request("/nope")
        transport = self.send(data)
        self.assertEqual(self.value("received_bytes_total", service="http"), len(data))
        self.assertEqual(
            self.value("sent_bytes_total", service="http"), len(transport.value())
        )

    def test_promtool(self) -> None:
        """Http's exposition passes C{promtool check metrics}."""
        if PROMTOOL is None:
            raise self.skipTest(NO_PROMTOOL)
        self.send(request("/") + request("/nope", "POST"))
        result = promtoolCheck(render([self.collector]))
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))
