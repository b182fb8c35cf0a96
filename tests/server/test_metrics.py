"""
Tests for L{twisted_services.server.metrics}: the plain counters, the shared
families, the C{/metrics} resource and exporter, and the C{--metrics} option.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from tests.support.prometheus import (
    NO_PROMTOOL,
    PROMTOOL,
    promtoolCheck,
    render,
    sampleValue,
)
from tests.support.tap import parseOptions
from tests.support.udp import RefusingDatagramTransport
from twisted_services.echo.tap import Options as EchoOptions
from twisted_services.server.connections import ConnectionTracker
from twisted_services.server.metrics.counters import (
    MAX_CONNECTIONS,
    DatagramCounters,
    Histogram,
    StreamCounters,
)
from twisted_services.server.metrics.exposition import (
    MAX_SCRAPERS,
    MetricsExporter,
    MetricsResource,
    TreeCollector,
    metricsRegistry,
)
from twisted_services.server.metrics.families import (
    datagramFamilies,
    streamFamilies,
)
from twisted_services.server.metrics.plugin import metricsServices
from twisted_services.server.metrics.sources import MetricsSource
from twisted_services.server.udpguard import GuardedDatagramProtocol, ReflectionGuard
from twisted_services.testing import FakeDatagramTransport, attachDatagram

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class _Stream:
    """A collector of one TCP service's shared families."""

    def __init__(self, service: str, counters: StreamCounters, open: int = 0) -> None:
        self.service, self.counters, self.open = service, counters, open

    def collect(self):  # type: ignore[no-untyped-def]
        return streamFamilies(self.service, self.counters, self.open)


class _Datagrams:
    """A collector of one UDP service's shared families."""

    def __init__(self, service: str, counters: DatagramCounters) -> None:
        self.service, self.counters = service, counters

    def collect(self):  # type: ignore[no-untyped-def]
        return datagramFamilies(self.service, self.counters)


class _Reply(GuardedDatagramProtocol):
    """Answers every datagram with C{ok}."""

    def reply(self, data: bytes) -> bytes:
        return b"ok"


class _NonEmptyReply(_Reply):
    """Answers every datagram but an empty one."""

    def answerable(self, data: bytes) -> bool:
        return bool(data)


class _Drainable:
    def drain(self) -> None:
        pass

    def abort(self) -> None:
        pass


class HistogramTests(SynchronousTestCase):
    """L{Histogram} counts observations into Prometheus's buckets."""

    def test_boundsAreInclusive(self) -> None:
        """A value equal to a bound is in that bound's bucket (C{le})."""
        histogram = Histogram([0.1, 1.0])
        histogram.observe(0.1)
        histogram.observe(1.0, 2)
        histogram.observe(5.0)
        self.assertEqual(histogram.cumulative(), [("0.1", 1), ("1.0", 3), ("+Inf", 4)])
        self.assertAlmostEqual(histogram.sum, 0.1 + 2.0 + 5.0)

    def test_boundsInOrder(self) -> None:
        """Bounds out of order, or none, are refused."""
        self.assertRaises(ValueError, Histogram, [1.0, 0.5])
        self.assertRaises(ValueError, Histogram, [])


class ConnectionCountingTests(SynchronousTestCase):
    """L{ConnectionTracker} counts what it admits and what it refuses."""

    def test_limitBurst(self) -> None:
        """
        Up to the limit every connection is accepted and counted; the one
        just over it is refused and counted as refused by max_connections.
        """
        tracker = ConnectionTracker("test", Clock(), 3)
        for _ in range(3):
            self.assertTrue(tracker.admits())
            tracker.opened(_Drainable())
        self.assertFalse(tracker.admits())
        self.assertEqual(tracker.counters.accepted, 3)
        self.assertEqual(tracker.counters.refused, {MAX_CONNECTIONS: 1})
        collector = _Stream("test", tracker.counters, len(tracker))
        self.assertEqual(
            sampleValue(collector, "twisted_services_connections_open", service="test"),
            3,
        )
        self.assertEqual(
            sampleValue(
                collector,
                "twisted_services_connections_refused_total",
                service="test",
                reason="max_connections",
            ),
            1,
        )


class DatagramCountingTests(SynchronousTestCase):
    """L{GuardedDatagramProtocol} counts what it answers and drops, by reason."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.guard = ReflectionGuard("test", self.clock, rate=1.0, burst=2)
        self.protocol = _Reply(self.guard)
        self.transport = attachDatagram(self.protocol, FakeDatagramTransport(port=7))

    def dropped(self, reason: str) -> float:
        return sampleValue(
            _Datagrams("test", self.guard.counters),
            "twisted_services_udp_datagrams_dropped_total",
            service="test",
            reason=reason,
        )

    def test_rateBurst(self) -> None:
        """
        The burst is answered and counted; the datagram just over it is
        dropped as rate_limited.
        """
        for _ in range(2):
            self.protocol.datagramReceived(b"x", ("127.0.0.1", 5000))
        self.protocol.datagramReceived(b"x", ("127.0.0.1", 5000))
        self.assertEqual(
            sampleValue(
                _Datagrams("test", self.guard.counters),
                "twisted_services_udp_datagrams_answered_total",
                service="test",
            ),
            2,
        )
        self.assertEqual(self.dropped("rate_limited"), 1)

    def test_reservedAndOwnPort(self) -> None:
        """Port 1023 and the service's own port are dropped as reserved_port."""
        self.protocol.datagramReceived(b"x", ("127.0.0.1", 1023))
        self.protocol.datagramReceived(b"x", ("127.0.0.1", 7))
        self.protocol.datagramReceived(b"x", ("127.0.0.1", 1024))
        self.assertEqual(self.dropped("reserved_port"), 2)
        self.assertEqual(self.guard.counters.answered, 1)

    def test_unanswerable(self) -> None:
        """What C{answerable} refuses is dropped as unanswerable."""
        protocol = _NonEmptyReply(self.guard)
        attachDatagram(protocol, FakeDatagramTransport(port=7))
        protocol.datagramReceived(b"", ("127.0.0.1", 5000))
        protocol.datagramReceived(b"x", ("127.0.0.1", 5000))
        self.assertEqual(self.dropped("unanswerable"), 1)
        self.assertEqual(self.guard.counters.answered, 1)

    def test_notStarted(self) -> None:
        """A datagram before the port has started cannot be answered: send_failed."""
        _Reply(self.guard).datagramReceived(b"x", ("127.0.0.1", 5000))
        self.assertEqual(self.dropped("send_failed"), 1)

    def test_sendFailed(self) -> None:
        """A reply the system will not send is dropped as send_failed."""
        protocol = _Reply(self.guard)
        attachDatagram(protocol, RefusingDatagramTransport())
        protocol.datagramReceived(b"x", ("127.0.0.1", 5000))
        self.assertEqual(self.dropped("send_failed"), 1)
        self.assertEqual(self.guard.counters.answered, 0)


class TreeCollectorTests(SynchronousTestCase):
    """L{TreeCollector} collects every L{MetricsSource} in a service tree."""

    def test_mergesFamilies(self) -> None:
        """
        Two services' families of one name become one family with both
        services' samples, as the text format requires.
        """
        root = MultiService()
        echo, chat = StreamCounters(), StreamCounters()
        echo.accepted, chat.accepted = 2, 5
        for collector in (_Stream("echo", echo), _Stream("chat", chat)):
            child = MultiService()
            child.setServiceParent(root)
            MetricsSource(collector).setServiceParent(child)
        collector = TreeCollector(lambda: root)
        families = [f for f in collector.collect() if f.name.endswith("_accepted")]
        [family] = families
        self.assertEqual(
            {s.labels["service"]: s.value for s in family.samples},
            {"echo": 2, "chat": 5},
        )

    def test_registry(self) -> None:
        """
        The registry holds the tree's metrics, the process collector's and
        the build info, with this package's version.
        """
        root = MultiService()
        MetricsSource(_Stream("echo", StreamCounters())).setServiceParent(root)
        text = render([metricsRegistry(lambda: root)]).decode()
        self.assertIn(
            'twisted_services_connections_accepted_total{service="echo"}', text
        )
        self.assertIn("process_cpu_seconds_total", text)
        self.assertIn('twisted_services_build_info{python_version="', text)
        self.assertIn('version="0.1.0"', text)


class ResourceTests(SynchronousTestCase):
    """L{MetricsResource} renders the exposition at once, on this thread."""

    def test_renders(self) -> None:
        """GET gives the exposition, in the text format's content type."""
        counters = StreamCounters()
        counters.bytesReceived = 1234
        root = MultiService()
        MetricsSource(_Stream("echo", counters)).setServiceParent(root)
        request = DummyRequest([b""])
        body = MetricsResource(metricsRegistry(lambda: root)).render_GET(request)
        self.assertIn(
            b'twisted_services_received_bytes_total{service="echo"} 1234.0', body
        )
        self.assertEqual(
            request.responseHeaders.getRawHeaders(b"content-type"),
            [b"text/plain; version=0.0.4; charset=utf-8"],
        )

    def test_promtool(self) -> None:
        """The shared families and the process's pass C{promtool check metrics}."""
        if PROMTOOL is None:
            raise self.skipTest(NO_PROMTOOL)
        root = MultiService()
        for name in ("echo", "chat"):
            MetricsSource(_Stream(name, StreamCounters())).setServiceParent(root)
        MetricsSource(_Datagrams("echo", DatagramCounters())).setServiceParent(root)
        result = promtoolCheck(render([metricsRegistry(lambda: root)]))
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))


class ExporterTests(SynchronousTestCase):
    """L{MetricsExporter} listens where C{--metrics} says, within its limit."""

    def test_listens(self) -> None:
        """It listens on its description, named metrics."""
        reactor = MemoryReactorClock()
        exporter = MetricsExporter(["tcp:9100:interface=127.0.0.1"], reactor)
        exporter.privilegedStartService()
        [(port, _, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (9100, "127.0.0.1"))
        [listener] = list(exporter)
        self.assertEqual(listener.serviceName, "metrics")

    def test_badDescription(self) -> None:
        """A description Twisted cannot parse is a one-line exit."""
        exit = self.assertRaises(
            SystemExit, MetricsExporter, ["nonsense:1"], MemoryReactorClock()
        )
        self.assertIn("metrics: bad listen description 'nonsense:1'", str(exit.code))

    def test_scraperLimit(self) -> None:
        """
        Up to L{MAX_SCRAPERS} connections are served at once; the one just
        over is refused.
        """
        reactor = MemoryReactorClock()
        MetricsExporter(["tcp:0"], reactor).privilegedStartService()
        factory = reactor.tcpServers[0][1]
        built = [factory.buildProtocol(PEER) for _ in range(MAX_SCRAPERS)]
        self.assertNotIn(None, built)
        # The wrapping factory counts a protocol once it is connected.
        for protocol in built:
            protocol.makeConnection(StringTransport())
        self.assertIsNone(factory.buildProtocol(PEER))

    def test_offByDefault(self) -> None:
        """Without C{--metrics} only the source is added: nothing listens."""
        options = parseOptions(EchoOptions())
        self.assertIsNone(options["metrics"])
        services = metricsServices(
            _Stream("echo", StreamCounters()), None, MemoryReactorClock()
        )
        self.assertEqual([type(s) for s in services], [MetricsSource])

    def test_option(self) -> None:
        """C{--metrics} adds the exporter on that endpoint."""
        options = parseOptions(EchoOptions(), "--metrics", "tcp:9100")
        services = metricsServices(
            _Stream("echo", StreamCounters()),
            options["metrics"],
            MemoryReactorClock(),
        )
        self.assertEqual([type(s) for s in services], [MetricsSource, MetricsExporter])
