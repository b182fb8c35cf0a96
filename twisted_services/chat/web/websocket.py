"""
Browser clients of the chat: each WebSocket runs an ordinary
L{ChatProtocol<twisted_services.chat.protocol.ChatProtocol>} of the chat's
own factory, through a L{LineTransport}, so the rooms, nicks, commands and
every limit (line length, flood control, sanitising, slow readers,
connections per address, the server's ceiling) are those of the TCP
clients, and with a broker that spans servers, the browser users do too.

The wire, for the page: the client sends one text message per line it
would type; the server sends one text message per line it would write,
without the CRLF (C{*** } notices, C{! } errors, C{<nick> text} and the
rest, see L{twisted_services.chat.wire}).
"""

from __future__ import annotations

from twisted.internet.interfaces import IProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from twisted.web.websocket import WebSocketResource, WebSocketTransport

from twisted_services.chat import wire
from twisted_services.chat.protocol import ChatFactory, ChatProtocol
from twisted_services.chat.web.guard import UnframedGuard
from twisted_services.chat.web.origin import originAllowed
from twisted_services.chat.web.transport import LineTransport
from twisted_services.core.addresses import describeAddress

ONE_LINE = wire.encodeError("one line per message")
TEXT_ONLY = wire.encodeError("send text messages, not binary ones")

# WebSocket close codes (RFC 6455 section 7.4.1).
GOING_AWAY = 1001
MESSAGE_TOO_BIG = 1009

FRAMING_ALLOWANCE = 4096
"""
Bytes beyond the longest line a client may send towards one message:
frame headers (up to 14 bytes a fragment), and pings between fragments.
"""


class ChatWebSocket:
    """
    One browser client: text messages in and out of a L{ChatProtocol}.

    A message is one line: one holding a line break is refused with
    C{! one line per message} and the connection goes on; a longer one than
    C{--max-line} gets C{! line too long} from the chat as on TCP. A
    message still unfinished after C{--max-line} bytes and
    L{FRAMING_ALLOWANCE} more cannot be refused without closing, as it has
    not ended: the client gets C{! line too long} and a close with code
    1009. Binary messages are refused with a line saying so.
    """

    _log = Logger()
    protocol: IProtocol | None = None
    _lines: LineTransport | None = None

    def __init__(self, factory: ChatFactory, request: Request) -> None:
        self._factory = factory
        self._request = request
        self._socket: WebSocketTransport | None = None
        guard = request.channel.transport
        if not isinstance(guard, UnframedGuard):
            raise TypeError("serve the chat's WebSocket with webChatFactory")
        self._guard = guard
        self._peer = describeAddress(request.getClientAddress())

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        # The handshake's answer is not written yet: the chat starts (and
        # writes its welcome) in negotiationFinished.
        self._socket = transport

    def negotiationFinished(self) -> None:
        socket, request = self._socket, self._request
        assert socket is not None
        # The HTTP channel's idle timeout is for requests; the chat has its own.
        request.channel.setTimeout(None)
        peer, host = request.getClientAddress(), request.getHost()
        protocol = self._factory.buildProtocol(peer)
        if protocol is None:
            # The server is shutting down.
            socket.loseConnection(GOING_AWAY)
            return
        self._lines = LineTransport(socket, self._guard, peer, host)
        self._guard.watch(self._factory.maxLine + FRAMING_ALLOWANCE, self._overLong)
        self.protocol = protocol
        protocol.makeConnection(self._lines)

    def textMessageReceived(self, message: str) -> None:
        self._guard.messageDelivered()
        if self.protocol is None or self._lines is None or self._lines.disconnecting:
            return
        if "\n" in message or "\r" in message:
            self._refuse(ONE_LINE)
            return
        self.protocol.dataReceived(message.encode("utf-8") + b"\n")

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self._guard.messageDelivered()
        if self._lines is not None and not self._lines.disconnecting:
            self._refuse(TEXT_ONLY)

    def _refuse(self, line: bytes) -> None:
        """Tell the client why its message was refused, as the chat would."""
        if isinstance(self.protocol, ChatProtocol):
            self.protocol.member.send(line)

    def _overLong(self) -> None:
        """A message grew past every legal line: say so, and close."""
        self._log.info(
            "webchat: {peer} sent an unfinished message of more than {limit} "
            "bytes, closing",
            peer=self._peer,
            limit=self._factory.maxLine + FRAMING_ALLOWANCE,
        )
        lines = self._lines
        assert lines is not None
        if not lines.disconnecting:
            self._refuse(wire.LINE_TOO_LONG)
            lines.closeNow(MESSAGE_TOO_BIG)

    def pongReceived(self, payload: bytes) -> None:
        """Pongs answer pings this server never sends: ignored."""

    def connectionLost(self, reason: Failure) -> None:
        if self.protocol is not None:
            self.protocol.connectionLost(reason)


class ChatSocketResource(WebSocketResource):
    """
    The WebSocket into the chat, for pages of the chat's own origin and of
    C{origins}; a request from any other page is refused with 403 before
    any upgrade (see L{originAllowed}).
    """

    _log = Logger()

    def __init__(self, factory: ChatFactory, origins: frozenset[str]) -> None:
        super().__init__(self)
        self._chat = factory
        self.origins = origins

    def render_GET(self, request: Request) -> bytes | int:
        origin = request.getHeader(b"origin")
        if not originAllowed(
            origin, request.isSecure(), request.getHeader(b"host"), self.origins
        ):
            self._log.warn(
                "webchat: refused a WebSocket from {peer} for a page of {origin}",
                peer=describeAddress(request.getClientAddress()),
                origin=(origin or b"").decode("ascii", "replace"),
            )
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this page's origin may not open the chat\n"
        return super().render_GET(request)

    def buildProtocol(self, request: Request) -> ChatWebSocket:
        """A L{ChatWebSocket} on the chat's factory (L{WebSocketResource} asks)."""
        return ChatWebSocket(self._chat, request)
