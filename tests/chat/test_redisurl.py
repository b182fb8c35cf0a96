"""
Tests for L{twisted_services.chat.redisurl}: the Redis URL forms, endpoints
for them, and the password kept out of the command line.
"""

from __future__ import annotations

from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.support.files import temporaryDirectory
from twisted_services.chat.redisurl import (
    PASSWORD_VARIABLE,
    RedisAddress,
    RedisURLError,
    parseRedisURL,
    readPassword,
)


class ParseTests(SynchronousTestCase):
    """L{parseRedisURL} takes the forms Redis's own clients take."""

    def test_tcp(self) -> None:
        """C{redis://host:port/db}, with the port and database optional."""
        self.assertEqual(
            parseRedisURL("redis://cache.example:6380/2"),
            RedisAddress("tcp", "cache.example", 6380, db=2),
        )
        self.assertEqual(
            parseRedisURL("redis://127.0.0.1"), RedisAddress("tcp", "127.0.0.1")
        )
        self.assertEqual(parseRedisURL("redis://[::1]:7/").host, "::1")

    def test_tlsAndUser(self) -> None:
        """C{rediss://} is TLS; a user name (an ACL user) is kept."""
        self.assertEqual(
            parseRedisURL("rediss://chat@redis.example/1"),
            RedisAddress("tls", "redis.example", db=1, username="chat"),
        )

    def test_unix(self) -> None:
        """C{unix:/path} and C{unix:///path}, with C{?db=N}."""
        expected = RedisAddress("unix", path="/run/redis/redis.sock", db=3)
        self.assertEqual(parseRedisURL("unix:/run/redis/redis.sock?db=3"), expected)
        self.assertEqual(parseRedisURL("unix:///run/redis/redis.sock?db=3"), expected)

    def test_passwordRefused(self) -> None:
        """A password in the URL is refused, saying where it goes instead."""
        error = self.assertRaises(
            RedisURLError, parseRedisURL, "redis://:secret@localhost/0"
        )
        self.assertIn("--redis-password-file", str(error))
        self.assertIn(PASSWORD_VARIABLE, str(error))
        self.assertNotIn("secret", str(error))

    def test_invalid(self) -> None:
        """Other schemes, bad ports and databases, relative paths: refused."""
        for url in [
            "http://localhost",
            "localhost:6379",
            "redis://localhost:99999",
            "redis://localhost/x",
            "redis:///0",
            "unix:relative.sock",
            "unix:/r.sock?db=x",
        ]:
            self.assertRaises(RedisURLError, parseRedisURL, url)

    def test_describeHasNoCredentials(self) -> None:
        """How the address is logged: the URL without the user."""
        self.assertEqual(
            parseRedisURL("rediss://chat@[::1]:7/1").describe(), "rediss://[::1]:7/1"
        )
        self.assertEqual(parseRedisURL("unix:/r.sock").describe(), "unix:/r.sock?db=0")

    def test_endpoints(self) -> None:
        """TCP and TLS connect by host name; unix: to the socket's path."""
        reactor = MemoryReactorClock()
        tcp = parseRedisURL("redis://localhost").endpoint(reactor, 5)
        self.assertIsInstance(tcp, HostnameEndpoint)
        unix = parseRedisURL("unix:/r.sock").endpoint(reactor, 5)
        self.assertIsInstance(unix, UNIXClientEndpoint)
        tls = parseRedisURL("rediss://localhost").endpoint(reactor, 5)
        self.assertNotIsInstance(tls, HostnameEndpoint)


class PasswordTests(SynchronousTestCase):
    """L{readPassword}: from a file, else the environment, else none."""

    def test_file(self) -> None:
        """The file's first line, without its line end, wins over the variable."""
        path = str(temporaryDirectory(self) / "password")
        with open(path, "w") as file:
            file.write("s3cret\r\nignored\n")
        self.assertEqual(readPassword(path, {PASSWORD_VARIABLE: "other"}), "s3cret")

    def test_environment(self) -> None:
        """Without a file, the variable; without either, no password."""
        self.assertEqual(readPassword(None, {PASSWORD_VARIABLE: "pw"}), "pw")
        self.assertIsNone(readPassword(None, {}))

    def test_unreadable(self) -> None:
        """A missing file or an empty first line is an error naming the file."""
        missing = str(temporaryDirectory(self) / "password")
        error = self.assertRaises(RedisURLError, readPassword, missing, {})
        self.assertIn(missing, str(error))
        empty = str(temporaryDirectory(self) / "password")
        with open(empty, "w") as file:
            file.write("\n")
        self.assertRaises(RedisURLError, readPassword, empty, {})
