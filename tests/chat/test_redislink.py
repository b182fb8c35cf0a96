"""
Tests for L{twisted_services.chat.redislink}: the two connections to Redis
on an in-memory endpoint and a L{Clock}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.chat.redislink import RETRY_MAX, RedisLink


class MemoryEndpoint:
    """Connects every protocol at once to a L{StringTransport} of its own."""

    def __init__(self) -> None:
        self.connected: list[tuple[Any, StringTransport]] = []

    def connect(self, factory: Any) -> Deferred[Any]:
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.connected.append((protocol, transport))
        return succeed(protocol)


class Receiver:
    def __init__(self) -> None:
        self.events: list[str] = []

    def linkReady(self) -> None:
        self.events.append("ready")

    def linkLost(self, reason: Failure) -> None:
        self.events.append("lost")

    def messageReceived(self, channel: bytes, payload: bytes) -> None:
        self.events.append("message")


class LinkTests(SynchronousTestCase):
    """L{RedisLink} readiness, loss and reconnection."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.endpoint = MemoryEndpoint()
        self.receiver = Receiver()

    def link(self, password: str | None = None) -> RedisLink:
        link = RedisLink(
            self.endpoint,  # type: ignore[arg-type]
            "redis://memory/0",
            self.clock,
            5.0,
            password=password,
        )
        link.start(self.receiver)
        return link

    def test_upOnceBothReady(self) -> None:
        """
        The link is up once both connections are; losing one drops the
        other and is told once.
        """
        link = self.link()
        self.assertTrue(link.up)
        self.assertEqual(self.receiver.events, ["ready"])
        (commands, _), (_, subscribed) = self.endpoint.connected
        commands.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(link.up)
        self.assertTrue(subscribed.disconnecting)
        self.assertEqual(self.receiver.events, ["ready", "lost"])
        self.failureResultOf(link.publish(b"c", b"p"))

    def test_wrongPasswordBacksOff(self) -> None:
        """
        Connections that Redis refuses (a wrong password) are retried less
        and less often, up to L{RETRY_MAX} seconds apart, not at once for
        ever; the link is never up.
        """
        link = self.link(password="wrong")
        delays = []
        for _ in range(6):
            refused = self.endpoint.connected[-2:]
            for protocol, transport in refused:
                self.assertIn(b"AUTH", transport.value())
                protocol.dataReceived(b"-WRONGPASS invalid password\r\n")
                protocol.connectionLost(Failure(ConnectionDone()))
            delay = max(call.getTime() for call in self.clock.getDelayedCalls())
            delays.append(delay - self.clock.seconds())
            self.clock.advance(delays[-1])
        self.assertFalse(link.up)
        self.assertEqual(self.receiver.events, [])
        self.assertGreater(delays[3], delays[0])
        self.assertLessEqual(max(delays), RETRY_MAX + 1)  # backoff plus jitter
