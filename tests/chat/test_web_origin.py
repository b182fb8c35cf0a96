"""
Tests for L{twisted_services.chat.web.origin}: which pages may open the
chat's WebSocket, as pure functions.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_services.chat.web.origin import (
    normalOrigin,
    originAllowed,
    originOption,
    pageOrigin,
)

NONE: frozenset[str] = frozenset()


class NormalOriginTests(SynchronousTestCase):
    """L{normalOrigin} puts origins in one form, or refuses them."""

    def test_forms(self) -> None:
        """Case, a default port and a trailing slash do not matter."""
        for given, normal in [
            ("http://localhost:8081", "http://localhost:8081"),
            ("HTTP://LocalHost:8081/", "http://localhost:8081"),
            ("http://example.com:80", "http://example.com"),
            ("https://example.com:443", "https://example.com"),
            ("https://example.com:80", "https://example.com:80"),
            ("http://[::1]:8081", "http://[::1]:8081"),
        ]:
            self.assertEqual(normalOrigin(given), normal, given)

    def test_notOrigins(self) -> None:
        """C{null}, other schemes, paths, user names and bad ports are refused."""
        for given in [
            "null",
            "",
            "file://",
            "ws://localhost:8081",
            "http://localhost:8081/chat",
            "http://user@localhost",
            "http://localhost:99999",
            "http://localhost?x",
        ]:
            self.assertIsNone(normalOrigin(given), given)

    def test_option(self) -> None:
        """C{--web-origin} takes an origin and says what it wants otherwise."""
        self.assertEqual(
            originOption("https://Chat.example.com/"), "https://chat.example.com"
        )
        with self.assertRaises(ValueError) as raised:
            originOption("chat.example.com")
        self.assertIn("scheme://host[:port]", str(raised.exception))


class OriginAllowedTests(SynchronousTestCase):
    """L{originAllowed}: the page's own origin, the allowed ones, or none."""

    def test_pageOrigin(self) -> None:
        """The scheme the request came over and its Host."""
        self.assertEqual(pageOrigin(False, b"localhost:8081"), "http://localhost:8081")
        self.assertEqual(
            pageOrigin(True, b"chat.example.com"), "https://chat.example.com"
        )
        self.assertIsNone(pageOrigin(False, None))

    def test_sameOrigin(self) -> None:
        """A page served by this listener may connect, over either scheme."""
        self.assertTrue(
            originAllowed(b"http://localhost:8081", False, b"localhost:8081", NONE)
        )
        self.assertTrue(
            originAllowed(
                b"https://chat.example.com", True, b"chat.example.com:443", NONE
            )
        )

    def test_crossOrigin(self) -> None:
        """
        Another host, port or scheme than the request's is refused, and so
        is a request without Host.
        """
        for origin, secure, host in [
            (b"http://evil.example", False, b"localhost:8081"),
            (b"http://localhost:8082", False, b"localhost:8081"),
            (b"http://localhost:8081", True, b"localhost:8081"),
            (b"null", False, b"localhost:8081"),
            (b"http://localhost:8081", False, None),
        ]:
            self.assertFalse(originAllowed(origin, secure, host, NONE), origin)

    def test_allowed(self) -> None:
        """An origin given by C{--web-origin} may connect from anywhere."""
        allowed = frozenset({"https://chat.example.com"})
        self.assertTrue(
            originAllowed(
                b"https://CHAT.example.com", False, b"127.0.0.1:8081", allowed
            )
        )
        self.assertFalse(
            originAllowed(b"http://chat.example.com", False, b"127.0.0.1:8081", allowed)
        )

    def test_noOrigin(self) -> None:
        """Without an Origin header there is no page: allowed."""
        self.assertTrue(originAllowed(None, False, b"localhost:8081", NONE))
