"""
Tests for C{twistd chat --redis ...}: the options that share a chat
through Redis, and the service built with them (not started: the broker is
tested in L{tests.chat.test_redisbroker}).
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.tap import Tap
from twisted_services.chat import tap
from twisted_services.chat.redisbroker import RedisBroker
from twisted_services.chat.redisurl import RedisAddress

CHAT = Tap(tap)


class RedisOptionsTests(SynchronousTestCase):
    """C{--redis} and the options that go with it."""

    def test_withoutRedis(self) -> None:
        """Without C{--redis} the chat is one process's, as before."""
        options = CHAT.parse()
        self.assertIsNone(options["redis-address"])
        self.assertEqual(
            [options["redis-presence-ttl"], options["redis-timeout"]], [15.0, 5.0]
        )
        self.assertRaises(
            UsageError,
            CHAT.parse,
            "--redis-password-file",
            str(temporaryDirectory(self) / "password"),
        )

    def test_url(self) -> None:
        """The URL is parsed; the password comes from its file."""
        path = str(temporaryDirectory(self) / "password")
        with open(path, "w") as file:
            file.write("hunter2\n")
        options = CHAT.parse(
            "--redis",
            "redis://chat@redis.example.com:6380/1",
            "--redis-password-file",
            path,
        )
        self.assertEqual(
            options["redis-address"],
            RedisAddress("tcp", "redis.example.com", 6380, db=1, username="chat"),
        )
        self.assertEqual(options["redis-password"], "hunter2")

    def test_badURL(self) -> None:
        """A password on the command line, or a URL of another kind, is refused."""
        for url in ["redis://:hunter2@localhost", "http://localhost"]:
            error = self.assertRaises(UsageError, CHAT.parse, "--redis", url)
            self.assertTrue(str(error).startswith("--redis: "))
            self.assertNotIn("hunter2", str(error))

    def test_serviceHasBroker(self) -> None:
        """
        The chat's broker is a L{RedisBroker} for that Redis, the first
        service to start, so the last to stop.
        """
        options = CHAT.parse(
            "--redis", "redis://127.0.0.1:1/0", "--redis-presence-ttl", "6"
        )
        service = tap.makeService(options, MemoryReactorClock(), notify=False)
        broker = next(iter(service))
        self.assertIsInstance(broker, RedisBroker)
        assert isinstance(broker, RedisBroker)
        self.assertEqual(broker.presenceTTL, 6.0)
        self.assertEqual(broker.link.name, "redis://127.0.0.1:1/0")
