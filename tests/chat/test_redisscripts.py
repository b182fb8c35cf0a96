"""
Tests for L{twisted_services.chat.redisscripts}: the Lua scripts on Debian's
real C{redis-server}, through a real L{RedisLink} on the reactor (trial's
C{TestCase}: the tests return L{Deferred}s). One Redis serves the module;
each test uses a key prefix of its own.
"""

from __future__ import annotations

import atexit
import itertools
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from tests.support.redis import REDIS_SERVER, SKIP_REASON, RedisServer
from twisted_services.chat import redisscripts as scripts
from twisted_services.chat.redislink import RedisLink
from twisted_services.chat.redisurl import parseRedisURL

TTL = 60_000
_prefixes = itertools.count()
_redis: list[RedisServer] = []


def sharedRedis() -> RedisServer:
    """The module's Redis, started by the first test, stopped at exit."""
    if not _redis:
        server = RedisServer()
        server.start()
        atexit.register(server.close)
        _redis.append(server)
    return _redis[0]


class Receiver:
    """Fires C{ready} once the link is up; keeps what is published to it."""

    def __init__(self) -> None:
        self.ready: Deferred[None] = Deferred()
        self.messages: list[tuple[bytes, bytes]] = []

    def linkReady(self) -> None:
        if not self.ready.called:
            self.ready.callback(None)

    def linkLost(self, reason: Failure) -> None:
        pass

    def messageReceived(self, channel: bytes, payload: bytes) -> None:
        self.messages.append((channel, payload))


class ScriptTests(TestCase):
    """What the scripts do to, and read from, a real Redis."""

    timeout = 30

    def setUp(self) -> Deferred[None]:
        if REDIS_SERVER is None:
            raise SkipTest(SKIP_REASON)
        address = parseRedisURL(sharedRedis().url)
        self.link = RedisLink(
            address.endpoint(reactor, 5), address.describe(), reactor, 5
        )
        self.receiver = Receiver()
        self.link.start(self.receiver)
        self.addCleanup(self.link.stop)
        self.prefix = f"t{next(_prefixes)}:"
        return self.receiver.ready

    def run_(self, script: bytes, *args: object) -> Deferred[Any]:
        return self.link.eval(script, [self.prefix, *args])

    @inlineCallbacks
    def test_nickClaimedOnce(self) -> Any:
        """A nick one server holds is refused to another, whatever its case."""
        first = yield self.run_(
            scripts.ENTER, "s1", TTL, "allce", "alice", "lobby", "lobby"
        )
        self.assertEqual(first, [1, b"lobby"])
        second = yield self.run_(
            scripts.ENTER, "s2", TTL, "allce", "ALICE", "lobby", "lobby"
        )
        self.assertEqual(second, [0])
        renamed = yield self.run_(
            scripts.RENAME, "s2", TTL, "b0b", "bob", "allce", "aIice", ""
        )
        self.assertEqual(renamed, 0)

    @inlineCallbacks
    def test_heartbeatRewritesManyMembers(self) -> Any:
        """
        A heartbeat rewrites a server's rooms, more members than Lua's
        unpack() takes at once included; only live servers are read; a
        goodbye gives everything up.
        """
        nicks = [f"n{number}" for number in range(2500)]
        args: list[object] = ["s1", TTL, 2, "big", "Big", len(nicks), *nicks]
        args += ["small", "small", 1, "solo"]
        for nick in [*nicks, "solo"]:
            args += [nick, nick]
        conflicts = yield self.run_(scripts.HEARTBEAT, *args)
        self.assertEqual(conflicts, [])
        members = yield self.run_(scripts.MEMBERS, "big")
        self.assertEqual(sorted(members), sorted(n.encode() for n in nicks))
        rooms = yield self.run_(scripts.ROOMS)
        self.assertEqual(
            dict(zip(rooms[::2], rooms[1::2], strict=True)), {b"Big": 2500, b"small": 1}
        )
        # Another server's heartbeat finds solo taken.
        taken = yield self.run_(scripts.HEARTBEAT, "s2", TTL, 0, "solo", "solo")
        self.assertEqual(taken, [b"solo"])
        yield self.run_(scripts.GOODBYE, "s1", "solo", *nicks)
        rooms = yield self.run_(scripts.ROOMS)
        self.assertEqual(rooms, [])
        entered = yield self.run_(
            scripts.ENTER, "s2", TTL, "solo", "solo", "lobby", "lobby"
        )
        self.assertEqual(entered, [1, b"lobby"])

    @inlineCallbacks
    def test_roomKeepsItsSpelling(self) -> Any:
        """A room entered on another server keeps the spelling it was created with."""
        yield self.run_(scripts.HEARTBEAT, "s1", TTL, 0)
        yield self.run_(scripts.HEARTBEAT, "s2", TTL, 0)
        yield self.run_(scripts.ENTER, "s1", TTL, "a", "a", "games", "Games")
        entered = yield self.run_(scripts.ENTER, "s2", TTL, "b", "b", "games", "GAMES")
        self.assertEqual(entered, [1, b"Games"])
        moved = yield self.run_(scripts.JOIN, "s2", TTL, "b", "games", "games", "gAmEs")
        self.assertEqual(moved, b"Games")

    @inlineCallbacks
    def test_privateLine(self) -> Any:
        """
        A private line goes to the holder's server channel with the nick as
        spelled; to a nick no one holds, or whose server is not listening,
        it goes nowhere.
        """
        yield self.run_(scripts.ENTER, "s1", TTL, "dave", "Dave", "lobby", "lobby")
        channel = f"{self.prefix}server:s1".encode()
        yield self.link.subscribe(channel)
        holder = yield self.run_(scripts.PRIVATE, "dave", b"*erin* hi\r\n")
        self.assertEqual(holder, b"Dave")
        nobody = yield self.run_(scripts.PRIVATE, "nobody", b"x")
        self.assertIsNone(nobody)
        yield self.link.unsubscribe(channel)
        unheard = yield self.run_(scripts.PRIVATE, "dave", b"x")
        self.assertIsNone(unheard)
        self.assertEqual(self.receiver.messages, [(channel, b"Dave\n*erin* hi\r\n")])
