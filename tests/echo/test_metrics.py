"""
Tests for L{twisted_services.echo.metrics}: what echo counts, on fake
transports and a L{Clock}, as its collector exposes it.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.support.prometheus import (
    NO_PROMTOOL,
    PROMTOOL,
    promtoolCheck,
    render,
    sampleValue,
)
from twisted_services.echo.metrics import EchoCollector
from twisted_services.echo.protocol import DatagramEcho, EchoFactory
from twisted_services.server.udpguard import ReflectionGuard
from twisted_services.testing import (
    ConnectionRefused,
    FakeDatagramTransport,
    attachDatagram,
    connect,
)


def value(collector: EchoCollector, name: str, **labels: str) -> float:
    return sampleValue(collector, f"twisted_services_{name}", service="echo", **labels)


class EchoMetricsTests(SynchronousTestCase):
    """Echo's connections, bytes, timeouts and datagrams are counted."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = EchoFactory(self.clock, idleTimeout=10.0, maxConnections=2)
        self.guard = ReflectionGuard("echo", self.clock, 100.0, 100)
        self.collector = EchoCollector(self.factory.connections, self.guard)

    def test_bytes(self) -> None:
        """Every byte echoed counts once received and once sent."""
        protocol, transport = connect(self.factory)
        protocol.dataReceived(b"hello")
        protocol.dataReceived(b"!" * 1000)
        self.assertEqual(value(self.collector, "received_bytes_total"), 1005)
        self.assertEqual(value(self.collector, "sent_bytes_total"), 1005)
        self.assertEqual(len(transport.value()), 1005)

    def test_connections(self) -> None:
        """
        The connections up to C{--max-connections} are accepted and open;
        the one just over is refused; a closed one is no longer open.
        """
        _, first = connect(self.factory)
        connect(self.factory)
        self.assertRaises(ConnectionRefused, connect, self.factory)
        self.assertEqual(value(self.collector, "connections_open"), 2)
        self.assertEqual(value(self.collector, "connections_accepted_total"), 2)
        self.assertEqual(
            value(
                self.collector,
                "connections_refused_total",
                reason="max_connections",
            ),
            1,
        )
        first.loseConnection()
        self.assertEqual(value(self.collector, "connections_open"), 1)

    def test_timeout(self) -> None:
        """An idle connection closed by its timeout is counted; an active one not."""
        protocol, _ = connect(self.factory)
        self.clock.advance(9.9)
        protocol.dataReceived(b"x")
        self.clock.advance(9.9)
        self.assertEqual(value(self.collector, "connections_timed_out_total"), 0)
        self.clock.advance(0.2)
        self.assertEqual(value(self.collector, "connections_timed_out_total"), 1)

    def test_datagrams(self) -> None:
        """UDP echo's answers and drops are counted under service=echo."""
        protocol = DatagramEcho(self.guard)
        attachDatagram(protocol, FakeDatagramTransport(port=7))
        protocol.datagramReceived(b"ping", ("127.0.0.1", 5000))
        protocol.datagramReceived(b"ping", ("127.0.0.1", 53))
        self.assertEqual(value(self.collector, "udp_datagrams_answered_total"), 1)
        self.assertEqual(
            value(
                self.collector,
                "udp_datagrams_dropped_total",
                reason="reserved_port",
            ),
            1,
        )

    def test_noUDP(self) -> None:
        """Without UDP there are no datagram families."""
        collector = EchoCollector(self.factory.connections)
        names = {family.name for family in collector.collect()}
        self.assertNotIn("twisted_services_udp_datagrams_answered", names)

    def test_promtool(self) -> None:
        """Echo's exposition passes C{promtool check metrics}."""
        if PROMTOOL is None:
            raise self.skipTest(NO_PROMTOOL)
        result = promtoolCheck(render([self.collector]))
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))
