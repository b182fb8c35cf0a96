"""
Tests for C{twistd chat --web} and C{--web-origin}: the options, and the
web listener C{makeService} adds, on a fake reactor.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.tap import Tap
from twisted_services.chat import tap
from twisted_services.chat.protocol import ChatFactory
from twisted_services.chat.web.guard import GuardedSiteFactory

CHAT = Tap(tap)


class WebOptionsTests(SynchronousTestCase):
    """C{--web} and C{--web-origin}."""

    def test_offByDefault(self) -> None:
        """Chat alone serves no page."""
        options = CHAT.parse()
        self.assertEqual((options["web"], options["web-origin"]), ([], []))
        _, reactor = CHAT.started("--port", "0")
        self.assertEqual([type(s[1]) for s in reactor.tcpServers], [ChatFactory])

    def test_web(self) -> None:
        """
        Each C{--web} is a listener of the page and socket, sharing the
        chat's factory, its origins those given, normalised.
        """
        _, reactor = CHAT.started(
            "--port",
            "0",
            "--web",
            "tcp:8081",
            "--web",
            "tcp:8082",
            "--web-origin",
            "HTTPS://chat.example.com",
            "--max-connections",
            "7",
        )
        chat, first, second = (s[1] for s in reactor.tcpServers)
        self.assertEqual([s[0] for s in reactor.tcpServers][1:], [8081, 8082])
        self.assertIsInstance(first, GuardedSiteFactory)
        self.assertIs(first, second)
        self.assertEqual(first.limit.maximum, 7)
        socket = first.wrappedFactory.resource.children[b"ws"]
        self.assertIs(socket._chat, chat)
        self.assertEqual(socket.origins, frozenset({"https://chat.example.com"}))

    def test_badOrigin(self) -> None:
        """A C{--web-origin} that is no origin is a usage error saying so."""
        with self.assertRaises(UsageError) as raised:
            CHAT.parse("--web", "tcp:8081", "--web-origin", "example.com")
        self.assertIn(
            "--web-origin: 'example.com' is not an origin", str(raised.exception)
        )

    def test_originWithoutWeb(self) -> None:
        """C{--web-origin} alone is a mistake."""
        self.assertRaises(UsageError, CHAT.parse, "--web-origin", "https://a.example")
