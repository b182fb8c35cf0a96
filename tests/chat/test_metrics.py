"""
Tests for L{twisted_services.chat.metrics}: what chat counts, with clients
on fake transports and a L{Clock}, as its collector exposes it.
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
from twisted_services.chat.metrics import ChatCollector
from twisted_services.chat.protocol import ChatFactory, ChatProtocol
from twisted_services.testing import connect, peerAddress

MAX_LINE = 20


class ChatMetricsTests(SynchronousTestCase):
    """Chat's lines, deliveries, drops, nicks, rooms and refusals are counted."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = ChatFactory(
            self.clock,
            maxLine=MAX_LINE,
            rate=1.0,
            burst=3,
            maxBuffer=100,
            maxQueue=1000,
            idleTimeout=60.0,
            maxConnections=10,
            maxPerAddress=2,
            connectRate=0.001,
            connectBurst=3,
        )
        self.collector = ChatCollector(
            self.factory.counters, self.factory.connections, self.factory.state
        )
        self.hosts = iter(range(1, 200))

    def client(self, host: str | None = None) -> ChatProtocol:
        """A client connected from C{host}, or from an address of its own."""
        protocol = self.connection(host)
        assert isinstance(protocol, ChatProtocol)
        return protocol

    def connection(self, host: str | None = None) -> object:
        """A connection from C{host}: a client, or a refusal."""
        peer = peerAddress(host or f"127.0.3.{next(self.hosts)}")
        return connect(self.factory, peer)[0]

    def value(self, name: str, **labels: str) -> float:
        return sampleValue(self.collector, f"twisted_services_{name}", **labels)

    def test_linesAndDeliveries(self) -> None:
        """
        A line said in a room of three is one line received and two
        deliveries, of its bytes each.
        """
        talker, *_ = [self.client() for _ in range(3)]
        deliveries = self.value("chat_deliveries_total")
        sent = self.value("sent_bytes_total", service="chat")
        talker.dataReceived(b"hello\r\n")
        self.assertEqual(self.value("chat_lines_received_total"), 1)
        self.assertEqual(self.value("chat_deliveries_total") - deliveries, 2)
        line = len(b"<guest1> hello\r\n")
        self.assertEqual(
            self.value("sent_bytes_total", service="chat") - sent, 2 * line
        )
        self.assertEqual(self.value("received_bytes_total", service="chat"), 7)

    def test_tooLong(self) -> None:
        """
        A line of C{--max-line} bytes goes through; one byte more is dropped
        as too long, whether its CR made it fit the framing or not.
        """
        talker = self.client()
        talker.dataReceived(b"a" * MAX_LINE + b"\n")
        self.assertEqual(self.value("chat_lines_dropped_total", reason="too_long"), 0)
        talker.dataReceived(b"a" * (MAX_LINE + 1) + b"\n")
        talker.dataReceived(b"a" * (MAX_LINE + 5) + b"\n")
        self.assertEqual(self.value("chat_lines_dropped_total", reason="too_long"), 2)
        self.assertEqual(self.value("chat_lines_received_total"), 3)

    def test_flood(self) -> None:
        """The burst of lines goes through; the line just over it is dropped."""
        talker = self.client()
        talker.dataReceived(b"1\n2\n3\n")
        self.assertEqual(self.value("chat_lines_dropped_total", reason="flood"), 0)
        talker.dataReceived(b"4\n")
        self.assertEqual(self.value("chat_lines_dropped_total", reason="flood"), 1)

    def test_slowReader(self) -> None:
        """
        A client whose queue passes C{maxQueue} is cut off and counted, with
        the line that did not fit; up to C{maxQueue} nothing is dropped.
        """
        reader = self.client()
        reader.member.pauseProducing()
        reader.member.send(b"x" * 1000)
        self.assertEqual(self.value("chat_slow_readers_disconnected_total"), 0)
        reader.member.send(b"x")
        reader.member.send(b"x")
        self.assertEqual(self.value("chat_slow_readers_disconnected_total"), 1)
        self.assertEqual(
            self.value("chat_lines_dropped_total", reason="slow_reader"), 2
        )

    def test_nickChanges(self) -> None:
        """A change of nick counts; taking the nick one has does not."""
        client = self.client()
        client.dataReceived(b"/nick alice\n")
        client.dataReceived(b"/nick alice\n")
        self.assertEqual(self.value("chat_nick_changes_total"), 1)

    def test_roomsAndMembers(self) -> None:
        """Rooms and members are read from the state when scraped."""
        first, _ = self.client(), self.client()
        self.assertEqual(self.value("chat_rooms"), 1)
        self.assertEqual(self.value("chat_members"), 2)
        first.dataReceived(b"/join den\n")
        self.assertEqual(self.value("chat_rooms"), 2)
        first.transport.loseConnection()
        self.assertEqual((self.value("chat_rooms"), self.value("chat_members")), (1, 1))

    def test_perAddress(self) -> None:
        """
        Two connections from one address are accepted; the third is refused
        per_address. With one closed, a fourth attempt, past the connect
        burst of three, is refused connect_rate.
        """
        first = self.client("127.0.4.1")
        self.client("127.0.4.1")
        self.connection("127.0.4.1")
        self.assertEqual(
            self.value(
                "connections_refused_total", service="chat", reason="per_address"
            ),
            1,
        )
        self.assertEqual(self.value("connections_accepted_total", service="chat"), 2)
        first.transport.loseConnection()
        self.connection("127.0.4.1")
        self.assertEqual(
            self.value(
                "connections_refused_total", service="chat", reason="connect_rate"
            ),
            1,
        )

    def test_timeout(self) -> None:
        """A client closed for idling is counted as timed out."""
        self.client()
        self.clock.advance(60.0)
        self.assertEqual(self.value("connections_timed_out_total", service="chat"), 1)

    def test_promtool(self) -> None:
        """Chat's exposition passes C{promtool check metrics}."""
        if PROMTOOL is None:
            raise self.skipTest(NO_PROMTOOL)
        self.client().dataReceived(b"hi\n")
        result = promtoolCheck(render([self.collector]))
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))
