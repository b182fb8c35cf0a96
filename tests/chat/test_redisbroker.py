"""
Tests for L{twisted_services.chat.redisbroker}: the broker on a fake link
whose answers the tests give, and a L{Clock}. What Redis itself does with
the scripts is tested against the real server in
L{tests.chat.test_redis_integration}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.chat.test_state import Member
from twisted_services.chat import redisscripts as scripts
from twisted_services.chat.redisbroker import (
    GUEST_BLOCK,
    LOCAL_ONLY,
    SHARED_AGAIN,
    RedisBroker,
)
from twisted_services.chat.state import IChatBroker, NickTaken
from twisted_services.chat.text import nickKey

SID = "feedface0001"
TTL = 3.0
TIMEOUT = 2.0


class FakeLink:
    """
    A L{RedisLink} whose evals, publishes and commands wait for the test to
    answer them; subscriptions are confirmed at once.
    """

    name = "redis://fake/0"

    def __init__(self) -> None:
        self.up = False
        self.calls: list[tuple[str, tuple[Any, ...], Deferred[Any]]] = []
        self.subscribed: list[bytes] = []
        self.unsubscribed: list[bytes] = []
        self.resets = 0
        self.stopped = False

    def start(self, receiver: Any) -> None:
        self.receiver = receiver

    def stop(self) -> Deferred[None]:
        self.stopped = True
        return succeed(None)

    def reset(self) -> None:
        self.resets += 1

    def _call(self, kind: str, *args: Any) -> Deferred[Any]:
        answer: Deferred[Any] = Deferred()
        self.calls.append((kind, args, answer))
        return answer

    def eval(self, script: bytes, args: list[object]) -> Deferred[Any]:
        return self._call("eval", script, args)

    def execute(self, *command: object) -> Deferred[Any]:
        return self._call("execute", *command)

    def publish(self, channel: bytes, payload: bytes) -> Deferred[int]:
        return self._call("publish", channel, payload)

    def subscribe(self, channel: bytes) -> Deferred[Any]:
        self.subscribed.append(channel)
        return succeed(None)

    def unsubscribe(self, channel: bytes) -> Deferred[Any]:
        self.unsubscribed.append(channel)
        return succeed(None)

    def take(self, kind: str, script: bytes | None = None) -> tuple[Any, ...]:
        """The oldest unanswered call of C{kind} (and C{script}): args, answer."""
        for index, (k, args, answer) in enumerate(self.calls):
            if k == kind and (script is None or args[0] == script):
                del self.calls[index]
                return (*args, answer)
        raise AssertionError(f"no {kind} call among {[c[0] for c in self.calls]}")


def brokerOn(
    up: bool = True, maxPending: int = 1000
) -> tuple[RedisBroker, FakeLink, Clock]:
    """A started broker; with C{up}, its link came up and it is sharing."""
    link, clock = FakeLink(), Clock()
    broker = RedisBroker(
        link,  # type: ignore[arg-type]
        clock,
        presenceTTL=TTL,
        timeout=TIMEOUT,
        maxPending=maxPending,
        serverId=SID,
    )
    broker.startService()
    if up:
        bringUp(broker, link)
    return broker, link, clock


def bringUp(broker: RedisBroker, link: FakeLink) -> None:
    """The link comes up; the heartbeat and the guest block are answered."""
    link.up = True
    broker.linkReady()
    *_, beat = link.take("eval", scripts.HEARTBEAT)
    beat.callback([])
    *_, reserved = link.take("execute")
    reserved.callback(GUEST_BLOCK)


def entered(
    broker: RedisBroker, link: FakeLink, nick: str, room: str = "lobby"
) -> Member:
    """C{nick}, entered into C{room} with Redis's agreement."""
    member = Member(nick)
    result = broker.enter(member, room)
    _, args, answer = link.take("eval", scripts.ENTER)
    key = nickKey(nick)
    assert args[1:] == [SID.encode(), 3000, key, nick, room.lower(), room], args
    answer.callback([1, room.encode()])
    assert result.result == room, result.result
    return member


class BrokerTests(SynchronousTestCase):
    """The chat through Redis, as this server sees it."""

    def test_interface(self) -> None:
        """It is an L{IChatBroker}."""
        broker, _, _ = brokerOn()
        self.assertTrue(verifyObject(IChatBroker, broker))

    def test_onePublishPerLine(self) -> None:
        """
        A line for a room reaches this server's members at once and is
        published once, whatever the number of members.
        """
        broker, link, _ = brokerOn()
        alice, bob, carol = (
            entered(broker, link, n) for n in ("alice", "bob", "carol")
        )
        self.assertEqual(
            link.subscribed, [b"chat:server:" + SID.encode(), b"chat:room:lobby"]
        )
        broker.publish("lobby", b"<alice> hi\r\n", exclude=alice)
        self.assertEqual(
            (alice.received, bob.received, carol.received),
            ([], [b"<alice> hi\r\n"], [b"<alice> hi\r\n"]),
        )
        channel, payload, _ = link.take("publish")
        self.assertEqual(
            (channel, payload), (b"chat:room:lobby", SID.encode() + b"\n<alice> hi\r\n")
        )
        self.assertEqual([c for c in link.calls if c[0] == "publish"], [])

    def test_linesFromOtherServers(self) -> None:
        """
        A room's line from another server reaches the members here; one this
        server published itself is not delivered twice; a private line goes
        to its member alone.
        """
        broker, link, _ = brokerOn()
        alice, bob = entered(broker, link, "alice"), entered(broker, link, "bob")
        broker.messageReceived(b"chat:room:lobby", b"other\n<zed> yo\r\n")
        broker.messageReceived(b"chat:room:lobby", SID.encode() + b"\n<alice> hi\r\n")
        broker.messageReceived(b"chat:server:" + SID.encode(), b"Bob\n*zed* psst\r\n")
        self.assertEqual(alice.received, [b"<zed> yo\r\n"])
        self.assertEqual(bob.received, [b"<zed> yo\r\n", b"*zed* psst\r\n"])

    def test_nickTakenElsewhere(self) -> None:
        """A nick Redis says another server holds is refused; nothing stays claimed."""
        broker, link, _ = brokerOn()
        member = Member("alice")
        result = broker.enter(member, "lobby")
        link.take("eval", scripts.ENTER)[-1].callback([0])
        self.failureResultOf(result, NickTaken)
        self.assertIsNone(broker.local.lookup("alice"))
        self.assertEqual(broker.local.members("lobby"), [])

    def test_toldOnceEachWay(self) -> None:
        """
        Losing Redis tells every member here once that lines reach this
        server only; getting it back tells them once that they reach every
        server again.
        """
        broker, link, _ = brokerOn()
        alice = entered(broker, link, "alice")
        bob = entered(broker, link, "bob", "games")
        broker.linkLost(Failure(ConnectionError("gone")))
        broker.linkLost(Failure(ConnectionError("gone again")))
        self.assertEqual(alice.received, [LOCAL_ONLY])
        self.assertEqual(bob.received, [LOCAL_ONLY])
        bringUp(broker, link)
        self.assertEqual(alice.received, [LOCAL_ONLY, SHARED_AGAIN])
        self.assertEqual(bob.received, [LOCAL_ONLY, SHARED_AGAIN])

    def test_localWhileDown(self) -> None:
        """
        With Redis unreachable since start-up, the chat works here alone:
        entering, renaming, moving and talking answer at once; members are
        told once the timeout has passed, newcomers as they come.
        """
        broker, link, clock = brokerOn(up=False)
        alice, bob = Member("alice"), Member("bob")
        self.assertEqual(self.successResultOf(broker.enter(alice, "lobby")), "lobby")
        clock.advance(TIMEOUT)
        self.assertEqual(alice.received, [LOCAL_ONLY])
        self.successResultOf(broker.enter(bob, "lobby"))
        self.assertEqual(bob.received, [LOCAL_ONLY])
        self.successResultOf(broker.rename(bob, "bobby"))
        self.assertEqual(
            self.successResultOf(broker.join(bob, "games")), ("lobby", "games")
        )
        broker.publish("lobby", b"<alice> anyone?\r\n")
        self.assertEqual(broker.unshared, 1)
        self.assertEqual(link.calls, [])

    def test_pendingBound(self) -> None:
        """
        Lines awaiting Redis up to C{maxPending} bytes are published; one
        more is not (this server's members still get it) and is counted;
        once Redis answers there is room again.
        """
        broker, link, _ = brokerOn(maxPending=100)
        alice = entered(broker, link, "alice")
        line = b"x" * 48 + b"\r\n"
        broker.publish("lobby", line)
        broker.publish("lobby", line)
        self.assertEqual(broker.dropped, 0)
        broker.publish("lobby", line)
        self.assertEqual(broker.dropped, 1)
        self.assertEqual(alice.received, [line] * 3)
        link.take("publish")[-1].callback(1)
        broker.publish("lobby", line)
        self.assertEqual(broker.dropped, 1)
        self.assertEqual(len([c for c in link.calls if c[0] == "publish"]), 2)

    def test_noAnswerFallsBack(self) -> None:
        """
        An answer that does not come within the timeout drops the link and
        the member enters here alone, rather than waiting for ever.
        """
        broker, link, clock = brokerOn()
        alice = Member("alice")
        result = broker.enter(alice, "lobby")
        self.assertNoResult(result)
        clock.advance(TIMEOUT)
        self.assertEqual(self.successResultOf(result), "lobby")
        self.assertIs(broker.local.lookup("alice"), alice)
        self.assertEqual(link.resets, 1)

    def test_heartbeatRewritesAndReportsConflicts(self) -> None:
        """
        Every third of the presence TTL the heartbeat sends this server's
        rooms and nicks; a member whose nick another server claimed meanwhile
        is told so.
        """
        broker, link, clock = brokerOn()
        alice = entered(broker, link, "alice")
        entered(broker, link, "bob", "Games")
        clock.advance(TTL / 3)
        _, args, answer = link.take("eval", scripts.HEARTBEAT)
        self.assertEqual(
            args[1:],
            [
                SID.encode(),
                3000,
                2,
                "lobby",
                "lobby",
                1,
                "alice",
                "games",
                "Games",
                1,
                "bob",
                nickKey("alice"),
                "alice",
                nickKey("bob"),
                "bob",
            ],
        )
        answer.callback([b"alice"])
        self.assertEqual(len(alice.received), 1)
        self.assertIn(b"your nick alice was taken on another server", alice.received[0])

    def test_guestNicks(self) -> None:
        """
        Guest numbers come from the block reserved in Redis; without one,
        a nick marked with this server's id.
        """
        broker, link, _ = brokerOn(up=False)
        self.assertEqual(broker.nextGuestNick(), f"guest-{SID[:4]}-1")
        bringUp(broker, link)
        self.assertEqual(broker.nextGuestNick(), "guest1")
        self.assertEqual(broker.nextGuestNick(), "guest2")

    def test_leaveOnce(self) -> None:
        """Leaving gives the nick up in Redis once; leaving again asks nothing."""
        broker, link, _ = brokerOn()
        alice = entered(broker, link, "alice", "games")
        left = broker.leave(alice)
        self.assertIsNone(broker.local.lookup("alice"))
        _, args, answer = link.take("eval", scripts.LEAVE)
        answer.callback(1)
        self.successResultOf(left)
        self.assertEqual(args[1:], [SID.encode(), nickKey("alice"), "alice", "games"])
        self.assertEqual(link.unsubscribed, [b"chat:room:games"])
        self.successResultOf(broker.leave(alice))
        self.assertEqual(link.calls, [])

    def test_stopGivesUp(self) -> None:
        """Stopping gives up this server's part of the chat, then the link."""
        broker, link, _ = brokerOn()
        entered(broker, link, "alice")
        stopped = broker.stopService()
        _, args, answer = link.take("eval", scripts.GOODBYE)
        self.assertEqual(args[1:], [SID.encode(), nickKey("alice")])
        self.assertFalse(link.stopped)
        answer.callback(1)
        self.successResultOf(stopped)
        self.assertTrue(link.stopped)
