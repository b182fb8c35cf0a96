"""
Integration tests of chat across servers: Debian's real C{redis-server} and
three real C{twistd chat --redis} processes on loopback, started once for
the class (see L{SharedChat}), with raw clients on each.

Each test works in rooms and under nicks of its own, so the tests can share
the servers. Every read has a deadline, every loop a bound; nothing sleeps.
"""

from __future__ import annotations

import atexit
import re
import signal

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.chat.sockets import LineClient
from tests.support.redis import REDIS_SERVER, SKIP_REASON, RedisServer
from tests.support.twistd import STARTUP_TIMEOUT, Twistd, pluginCommand
from tests.support.waiting import polling

PRESENCE_TTL = 2.0
"""The servers' --redis-presence-ttl: short, so that the kill test is quick."""

# Tests that send quickly must not meet flood control.
FAST = ["--rate", "100000", "--burst", "100000"]
_WELCOME = re.compile(
    r"\*\*\* welcome, you are (\S+) in lobby; type /help for commands"
)
LOCAL_ONLY = (
    "*** the chat's other servers cannot be reached: messages now reach this "
    "server only"
)
SHARED_AGAIN = (
    "*** the chat's other servers are back: messages reach every server again"
)


def chatCommand(url: str) -> list[str]:
    return pluginCommand(
        "chat",
        [
            "--port",
            "0",
            "--interface",
            "127.0.0.1",
            "--redis",
            url,
            "--redis-presence-ttl",
            str(PRESENCE_TTL),
            *FAST,
        ],
    )


def awaitLine(client: LineClient, wanted: str, timeout: float) -> None:
    """Read lines until C{wanted}, for at most C{timeout} seconds."""
    for remaining in polling(timeout, f"{wanted!r}"):
        if client.readLine(timeout=remaining) == wanted:
            return


def sharing(server: Twistd) -> int:
    """How many times C{server} has logged that it shares the chat."""
    return sum("sharing the chat through Redis" in line for line in server.output)


def startServers(url: str, count: int) -> list[Twistd]:
    """Start C{count} chat servers on Redis at C{url} at once; wait for all."""
    servers = [Twistd.spawn(chatCommand(url)) for _ in range(count)]
    try:
        for server in servers:
            server.waitForLog("sharing the chat through Redis", STARTUP_TIMEOUT)
            server.listener()
    except BaseException:
        for server in servers:
            server.kill()
        raise
    return servers


class SharedChat:
    """
    One Redis and three chat servers for a test class, started by its first
    test and stopped by C{tearDownClass} (pytest) or, at the latest, when the
    test process exits (trial has no class fixtures).
    """

    def __init__(self) -> None:
        self.redis = RedisServer()
        self.redis.start()
        try:
            self.servers = startServers(self.redis.url, 3)
        except BaseException:
            self.redis.close()
            raise
        atexit.register(self.close)

    def close(self) -> None:
        for server in self.servers:
            server.kill()
        self.redis.close()


class RedisChatTests(SynchronousTestCase):
    """Users on three servers sharing one Redis."""

    shared: SharedChat | None = None

    def setUp(self) -> None:
        if REDIS_SERVER is None:
            raise SkipTest(SKIP_REASON)
        cls = type(self)
        if cls.shared is None:
            cls.shared = SharedChat()
        self.chat = cls.shared

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.shared is not None:
            cls.shared.close()
            cls.shared = None

    def connect(self, server: Twistd, nick: str, room: str) -> LineClient:
        """A client on C{server}, renamed to C{nick} and moved to C{room}."""
        client = LineClient.connect(server.listener().loopbackAddress)
        self.addCleanup(client.close)
        line = client.readLine()
        if not _WELCOME.fullmatch(line):
            raise AssertionError(f"no welcome but {line!r}")
        client.send(f"/nick {nick}")
        client.waitFor(f"*** you are now known as {nick}")
        client.send(f"/join {room}")
        client.waitFor(f"*** you joined {room}")
        return client

    def threeInARoom(self, room: str) -> list[LineClient]:
        """alice, bob and carol, one on each server, in C{room}."""
        s1, s2, s3 = self.chat.servers
        alice = self.connect(s1, f"alice{room}", room)
        bob = self.connect(s2, f"bob{room}", room)
        alice.waitFor(f"*** bob{room} has joined")
        carol = self.connect(s3, f"carol{room}", room)
        alice.waitFor(f"*** carol{room} has joined")
        bob.waitFor(f"*** carol{room} has joined")
        return [alice, bob, carol]

    def test_roomAcrossServers(self) -> None:
        """Messages, /me, /who, /rooms and notices reach every server."""
        alice, bob, carol = self.threeInARoom("r1")
        alice.send("hello all")
        bob.expect("<alicer1> hello all")
        carol.expect("<alicer1> hello all")
        carol.send("/me waves")
        for client in (alice, bob, carol):
            client.expect("* carolr1 waves")
        carol.send("/who")
        carol.expect("*** in r1: alicer1, bobr1, carolr1")
        carol.send("/rooms")
        self.assertIn("r1 (3)", carol.readLine())
        bob.send("/nick bobbyr1")
        bob.expect("*** you are now known as bobbyr1")
        alice.expect("*** bobr1 is now known as bobbyr1")
        carol.expect("*** bobr1 is now known as bobbyr1")
        carol.send("/quit")
        alice.expect("*** carolr1 has left (quit)")
        bob.expect("*** carolr1 has left (quit)")
        alice.send("/who")
        alice.expect("*** in r1: alicer1, bobbyr1")

    def test_privateMessagesAndNicks(self) -> None:
        """/msg crosses servers, and a nick held on one is refused on another."""
        s1, s2, _ = self.chat.servers
        dave = self.connect(s1, "dave", "r2")
        erin = self.connect(s2, "erin", "r2b")
        erin.send("/nick DAVE")
        erin.expect("! nick DAVE is taken")
        erin.send("/msg Dave psst")
        erin.expect("-> *dave* psst")
        dave.expect("*erin* psst")
        erin.send("/msg nobody hello")
        erin.expect("! no such nick")

    def test_killedServerNicksFreed(self) -> None:
        """
        The nicks of a server killed with SIGKILL are free again once its
        presence runs out (--redis-presence-ttl), and its users leave /who.
        """
        [doomed] = startServers(self.chat.redis.url, 1)
        self.addCleanup(doomed.kill)
        frank = self.connect(doomed, "frank", "r3")
        grace = self.connect(self.chat.servers[0], "grace", "r3")
        frank.waitFor("*** grace has joined")
        grace.send("/nick frank")
        # frank's join notice may still be on its way through Redis.
        grace.waitFor("! nick frank is taken")
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait()
        # Free within the presence TTL; the deadline leaves room for a busy
        # machine, and the loop is bounded by it.
        for _ in polling(PRESENCE_TTL + 8, "frank's nick freed"):
            grace.send("/nick frank")
            if grace.readLine() == "*** you are now known as frank":
                break
        grace.send("/who")
        grace.expect("*** in r3: frank")

    def test_redisRestart(self) -> None:
        """
        With Redis gone, users are told once, and each server's rooms keep
        working; once it is back they are told so, and lines cross again.
        """
        s1, s2, _ = self.chat.servers
        ivan = self.connect(s1, "ivan", "r4")
        judy = self.connect(s2, "judy", "r4")
        ivan.waitFor("*** judy has joined")
        kim = self.connect(s1, "kim", "r4")
        ivan.waitFor("*** kim has joined")
        before = [sharing(server) for server in self.chat.servers]
        self.chat.redis.stop()
        for client in (ivan, judy, kim):
            awaitLine(client, LOCAL_ONLY, 20)
        ivan.send("only here")
        kim.expect("<ivan> only here")
        self.chat.redis.start()
        # Reconnecting backs off up to 5 seconds between attempts.
        for client in (ivan, judy, kim):
            awaitLine(client, SHARED_AGAIN, 20)
        # The third server too, so that later tests find all three up.
        for server, count in zip(self.chat.servers, before, strict=True):
            server.waitFor(lambda s=server, n=count: sharing(s) > n, 20)
        ivan.send("everywhere again")
        judy.expect("<ivan> everywhere again")
        kim.expect("<ivan> everywhere again")
        judy.send("/who")
        judy.expect("*** in r4: ivan, judy, kim")
