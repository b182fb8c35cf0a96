"""
Tests for L{twisted_services.chat.web}: the page, the WebSocket into the
chat and its limits, on the whole web stack (the guard, C{twisted.web}'s
Site, Twisted's WebSocket) over in-memory transports, with C{wsproto}
framing what a browser would send. TCP clients of the same factory share
the rooms.
"""

from __future__ import annotations

import re

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from twisted_services.chat.member import ChatMember
from twisted_services.chat.protocol import ChatFactory
from twisted_services.chat.web.guard import GuardedSiteFactory
from twisted_services.chat.web.page import contentSecurityPolicy, loadPage
from twisted_services.chat.web.site import REQUEST_TIMEOUT, webChatFactory
from twisted_services.chat.web.websocket import FRAMING_ALLOWANCE
from twisted_services.testing import connect, peerAddress

HOST = "127.0.0.1:8081"
SERVER = IPv4Address("TCP", "127.0.0.1", 8081)
WELCOME = "*** welcome, you are {} in lobby; type /help for commands"


class LingeringTransport(StringTransportWithDisconnection):
    """
    A transport that, like TCP with data still to send, only starts closing
    on C{loseConnection}; L{lost} then ends the connection.
    """

    def loseConnection(self) -> None:
        self.disconnecting = True

    def lost(self) -> None:
        StringTransportWithDisconnection.loseConnection(self)


class WebClient:
    """
    One browser-like client of the web listener, in memory: HTTP requests
    and WebSocket frames in, what the server wrote decoded back out.
    """

    def __init__(
        self,
        site: GuardedSiteFactory,
        host: str = "127.0.0.1",
        transport: type[StringTransportWithDisconnection] = (
            StringTransportWithDisconnection
        ),
    ) -> None:
        self.transport = transport(hostAddress=SERVER, peerAddress=peerAddress(host))
        protocol = site.buildProtocol(self.transport.getPeer())
        assert protocol is not None
        self.protocol = protocol
        self.transport.protocol = protocol
        protocol.makeConnection(self.transport)
        self.socket = WSConnection(ConnectionType.CLIENT)
        self.status: int | None = None
        self.body = b""
        self.closeCode: int | None = None
        self._early: list[str] = []

    def get(self, path: bytes) -> bytes:
        """An HTTP/1.1 GET of C{path}, and the raw response."""
        self.protocol.dataReceived(
            b"GET " + path + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"
        )
        return self.transport.value()

    def open(self, origin: str | None = "http://" + HOST) -> bool:
        """Ask for the WebSocket as a page of C{origin} would; whether accepted."""
        headers = [] if origin is None else [(b"Origin", origin.encode())]
        self.protocol.dataReceived(
            self.socket.send(Request(host=HOST, target="/ws", extra_headers=headers))
        )
        self._early = self.received()
        return self.status == 101

    def send(self, text: str) -> None:
        self.protocol.dataReceived(self.socket.send(TextMessage(text)))

    def received(self) -> list[str]:
        """The text messages the server sent since the last call."""
        data = self.transport.value()
        self.transport.clear()
        self.socket.receive_data(data)
        texts, self._early = self._early, []
        for event in self.socket.events():
            if isinstance(event, AcceptConnection):
                self.status = 101
            elif isinstance(event, RejectConnection):
                self.status = event.status_code
            elif isinstance(event, RejectData):
                self.body += event.data
            elif isinstance(event, TextMessage):
                texts.append(event.data)
            elif isinstance(event, CloseConnection):
                self.closeCode = event.code
        return texts


def chatFactory(clock: Clock, **limits: object) -> ChatFactory:
    """A chat factory, its flood control out of the way unless C{limits} say."""
    return ChatFactory(clock, **{"rate": 100, "burst": 100, **limits})  # type: ignore[arg-type]


class WebTestCase(SynchronousTestCase):
    """A chat factory and its web listener on one clock."""

    origins: frozenset[str] = frozenset()

    def setUp(self) -> None:
        self.clock = Clock()
        self.useLimits()

    def useLimits(self, **limits: object) -> None:
        """A new chat with C{limits}, and its web listener."""
        self.factory = chatFactory(self.clock, **limits)
        self.site = webChatFactory(self.factory, self.origins, self.clock, 100)

    def openBrowser(self) -> WebClient:
        """A browser in the chat, its welcome read."""
        web = WebClient(self.site)
        self.assertTrue(web.open())
        web.received()
        return web


class PageTests(WebTestCase):
    """C{GET /} serves the page with a policy that allows only itself."""

    def test_pageAndHeaders(self) -> None:
        """The page comes with its CSP, nosniff and no framing."""
        response = WebClient(self.site).get(b"/")
        head, _, body = response.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        self.assertEqual(body, loadPage())
        headers = head.lower()
        self.assertIn(b"content-type: text/html; charset=utf-8", headers)
        self.assertIn(b"x-content-type-options: nosniff", headers)
        self.assertIn(b"x-frame-options: deny", headers)
        policy = contentSecurityPolicy(loadPage()).encode().lower()
        self.assertIn(b"content-security-policy: " + policy, headers)

    def test_policyAllowsOnlyItsOwnInlineCode(self) -> None:
        """
        The CSP names the inline script and style by hash, allows nothing
        unsafe or remote, and connects only to the page's own origin.
        """
        policy = contentSecurityPolicy(loadPage())
        self.assertIn("default-src 'none'", policy)
        self.assertIn("connect-src 'self'", policy)
        self.assertIn("frame-ancestors 'none'", policy)
        self.assertNotIn("unsafe", policy)
        self.assertEqual(len(re.findall(r"script-src 'sha256-[^']+';", policy)), 1)
        self.assertEqual(len(re.findall(r"style-src 'sha256-[^']+';", policy)), 1)
        changed = loadPage().replace(b"<script>", b"<script>alert(1);")
        self.assertNotEqual(contentSecurityPolicy(changed), policy)

    def test_pageLoadsNothingElseAndWritesNoHTML(self) -> None:
        """
        The page refers to no other site and its script never parses a
        server's text as HTML.
        """
        page = loadPage().decode("utf-8")
        self.assertNotRegex(page, r"(src|href)\s*=\s*[\"']")
        self.assertNotRegex(page, r"https?://")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
            self.assertNotIn(sink, page)
        self.assertIn('name="viewport"', page)

    def test_otherPaths(self) -> None:
        """Anything but the page and the socket is 404."""
        response = WebClient(self.site).get(b"/index.html")
        self.assertTrue(response.startswith(b"HTTP/1.1 404 "), response)


class SocketTests(WebTestCase):
    """The WebSocket is a chat client like the TCP ones."""

    def test_sharedRoomWithTCP(self) -> None:
        """
        A browser and a TCP client of one factory meet in the lobby; a line
        each way arrives, as one text message without its CRLF.
        """
        tcp, tcpTransport = connect(self.factory)
        web = WebClient(self.site)
        self.assertTrue(web.open())
        self.assertEqual(web.received(), [WELCOME.format("guest2")])
        self.assertIn(b"*** guest2 has joined\r\n", tcpTransport.value())
        tcpTransport.clear()
        web.send("/nick alice")
        self.assertEqual(web.received(), ["*** you are now known as alice"])
        self.assertEqual(tcpTransport.value(), b"*** guest2 is now known as alice\r\n")
        tcpTransport.clear()
        web.send("hello <b>there</b>")
        self.assertEqual(tcpTransport.value(), b"<alice> hello <b>there</b>\r\n")
        tcp.dataReceived(b"hi\r\n")
        self.assertEqual(web.received(), ["<guest1> hi"])

    def test_severalLinesSeveralMessages(self) -> None:
        """A write of several lines (C{/help}) is one message a line."""
        web = self.openBrowser()
        web.send("/help")
        lines = web.received()
        self.assertGreater(len(lines), 5)
        self.assertTrue(all(line.startswith("*** ") for line in lines), lines)

    def test_sanitised(self) -> None:
        """Control characters are taken out as for TCP clients."""
        _, tcpTransport = connect(self.factory)
        web = WebClient(self.site)
        web.open()
        tcpTransport.clear()
        web.send("red\x1b[31m\u202etext")
        self.assertEqual(tcpTransport.value(), b"<guest2> redtext\r\n")

    def test_lineBreakRefused(self) -> None:
        """A message holding a line break is refused whole; the socket goes on."""
        _, tcpTransport = connect(self.factory)
        web = self.openBrowser()
        tcpTransport.clear()
        for text in ("one\ntwo", "one\rtwo"):
            web.send(text)
            self.assertEqual(web.received(), ["! one line per message"])
        self.assertEqual(tcpTransport.value(), b"")
        web.send("three")
        self.assertEqual(tcpTransport.value(), b"<guest2> three\r\n")

    def test_binaryRefused(self) -> None:
        """A binary message gets a line saying so."""
        web = self.openBrowser()
        web.protocol.dataReceived(web.socket.send(BytesMessage(b"hi")))
        self.assertEqual(web.received(), ["! send text messages, not binary ones"])

    def test_lineLimit(self) -> None:
        """
        A message of C{--max-line} bytes is said; one byte more gets
        C{! line too long}, as on TCP, and the connection goes on.
        """
        self.useLimits(maxLine=100)
        _, tcpTransport = connect(self.factory)
        web = self.openBrowser()
        tcpTransport.clear()
        # 100 bytes: é is two in UTF-8, and the limit counts bytes.
        web.send("é" * 50)
        self.assertEqual(
            tcpTransport.value(), ("<guest2> " + "é" * 50 + "\r\n").encode()
        )
        tcpTransport.clear()
        web.send("x" * 101)
        self.assertEqual(web.received(), ["! line too long"])
        self.assertEqual(tcpTransport.value(), b"")
        web.send("x" * 100)
        self.assertEqual(tcpTransport.value(), b"<guest2> " + b"x" * 100 + b"\r\n")

    def test_unfinishedMessageLimit(self) -> None:
        """
        Fragments of one message up to C{--max-line} plus the framing
        allowance are held; past that, the client is told and the socket
        closed with 1009 (message too big).
        """
        self.useLimits(maxLine=100)
        web = self.openBrowser()
        limit = 100 + FRAMING_ALLOWANCE
        legal = web.socket.send(TextMessage("x" * (limit - 8), message_finished=False))
        self.assertLessEqual(len(legal), limit)
        web.protocol.dataReceived(legal)
        self.assertEqual((web.received(), web.closeCode), ([], None))
        web.protocol.dataReceived(
            web.socket.send(TextMessage("x" * 100, message_finished=False))
        )
        self.assertEqual(web.received(), ["! line too long"])
        self.assertEqual(web.closeCode, 1009)
        self.assertFalse(web.transport.connected)

    def test_floodControl(self) -> None:
        """C{--burst} messages at once are said; the next gets C{! slow down}."""
        self.useLimits(rate=1, burst=5)
        _, tcpTransport = connect(self.factory)
        web = self.openBrowser()
        tcpTransport.clear()
        for n in range(5):
            web.send(f"line {n}")
        self.assertEqual(tcpTransport.value().count(b"\r\n"), 5)
        web.send("one too many")
        self.assertEqual(web.received(), ["! slow down"])
        self.assertEqual(tcpTransport.value().count(b"\r\n"), 5)

    def test_slowReaderCutOff(self) -> None:
        """
        The chat's member is the producer on the real connection: when the
        socket's buffer stays full past C{--max-queue} bytes, the browser
        is cut off as a TCP client would be.
        """
        self.useLimits(maxBuffer=1000, maxQueue=2000, maxLine=500)
        tcp, _ = connect(self.factory)
        web = self.openBrowser()
        member = web.transport.producer
        self.assertIsInstance(member, ChatMember)
        member.pauseProducing()
        for _ in range(4):
            tcp.dataReceived(b"y" * 480 + b"\n")
        self.assertTrue(web.transport.connected)
        tcp.dataReceived(b"y" * 480 + b"\n")
        self.assertFalse(web.transport.connected)
        self.assertEqual(len(self.factory.connections), 1)

    def test_requestTimeoutNotForSockets(self) -> None:
        """The HTTP idle timeout does not close an open WebSocket."""
        web = WebClient(self.site)
        web.open()
        self.clock.advance(REQUEST_TIMEOUT * 2)
        self.assertTrue(web.transport.connected)

    def test_maxConnections(self) -> None:
        """Past the chat's C{--max-connections} a browser is told, then closed."""
        self.useLimits(maxConnections=1)
        first = WebClient(self.site)
        self.assertTrue(first.open())
        self.assertEqual(first.received(), [WELCOME.format("guest1")])
        web = WebClient(self.site)
        self.assertTrue(web.open())
        self.assertEqual(web.received(), ["! server full, try later"])
        self.assertEqual(web.closeCode, 1000)

    def test_shutdown(self) -> None:
        """Stopping the chat tells browsers too, and closes their sockets."""
        web = self.openBrowser()
        self.factory.connections.drain()
        self.assertEqual(web.received(), ["*** server shutting down"])
        self.assertEqual(web.closeCode, 1000)

    def test_clientCloseHandshake(self) -> None:
        """
        Once a browser has sent its close, lines for it are dropped without
        error until the connection is gone, and the room is told it left.
        """
        tcp, tcpTransport = connect(self.factory)
        web = WebClient(self.site, transport=LingeringTransport)
        web.open()
        web.received()
        with capturedLogs() as events:
            web.protocol.dataReceived(web.socket.send(CloseConnection(1001)))
            tcp.dataReceived(b"anyone there?\r\n")
        self.assertEqual(web.received(), [])
        self.assertEqual(web.closeCode, 1001)
        self.assertEqual([e for e in events if e["log_level"] >= LogLevel.warn], [])
        tcpTransport.clear()
        web.transport.lost()
        self.assertEqual(
            tcpTransport.value(), b"*** guest2 has left (connection lost)\r\n"
        )

    def test_closedByClient(self) -> None:
        """A browser that goes leaves the room, and the room is told."""
        _, tcpTransport = connect(self.factory)
        web = WebClient(self.site)
        web.open()
        tcpTransport.clear()
        web.transport.loseConnection()
        self.assertEqual(
            tcpTransport.value(), b"*** guest2 has left (connection lost)\r\n"
        )
        self.assertEqual(len(self.factory.connections), 1)


class OriginTests(WebTestCase):
    """Only pages of the chat's own origin, or allowed ones, open the socket."""

    origins = frozenset({"https://chat.example.com"})

    def test_ownOrigin(self) -> None:
        """The page's own origin is accepted."""
        self.assertTrue(WebClient(self.site).open("http://" + HOST))

    def test_allowedOrigin(self) -> None:
        """An origin given by C{--web-origin} is accepted."""
        self.assertTrue(WebClient(self.site).open("https://chat.example.com"))

    def test_noOrigin(self) -> None:
        """A client that is not a browser page (no Origin) is accepted."""
        self.assertTrue(WebClient(self.site).open(None))

    def test_otherOriginsRefused(self) -> None:
        """
        Another site, another port, another scheme or C{null} is refused
        with 403 before any upgrade, and never enters the chat.
        """
        for origin in (
            "http://evil.example",
            "http://127.0.0.1:8082",
            "https://" + HOST,
            "http://localhost:8081",
            "null",
        ):
            web = WebClient(self.site)
            self.assertFalse(web.open(origin), origin)
            self.assertEqual(web.status, 403, origin)
            self.assertEqual(len(self.factory.connections), 0)


class GuardTests(SynchronousTestCase):
    """The web listener's own connection ceiling."""

    def test_maxConnections(self) -> None:
        """Up to the limit connections are served; past it, closed at once."""
        clock = Clock()
        site = webChatFactory(chatFactory(clock), frozenset(), clock, 2)
        first = WebClient(site)
        WebClient(site)
        self.assertIsNone(site.buildProtocol(peerAddress()))
        first.transport.loseConnection()
        self.assertIsNotNone(site.buildProtocol(peerAddress()))
