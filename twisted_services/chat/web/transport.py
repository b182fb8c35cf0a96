"""
The chat protocol's transport over a WebSocket: what the chat writes as
lines goes out as text messages, one a line.
"""

from __future__ import annotations

from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IPushProducer,
    ITCPTransport,
    ITransport,
)
from twisted.web.websocket import WebSocketTransport
from zope.interface import implementer

from twisted_services.chat.text import LINE_ENDING


@implementer(ITransport, IConsumer, IPushProducer)
class LineTransport:
    """
    What L{ChatProtocol<twisted_services.chat.protocol.ChatProtocol>} takes
    for its transport when its client is a browser.

    The chat writes whole lines ending in CRLF (several at once for
    C{/help}); each becomes one WebSocket text message, without its line
    ending. Everything else goes to the connection underneath, C{raw}:
    pausing reading, aborting, and the producer that learns when the
    client stops reading, so the chat's slow-reader handling judges the
    real socket's buffer.

    A client's close ends the WebSocket at once (Twisted answers it and
    closes the connection), before C{connectionLost}: from then on, as after
    L{loseConnection}, the transport is L{disconnecting} and writes nothing.
    """

    _closing = False

    def __init__(
        self,
        socket: WebSocketTransport,
        raw: ITCPTransport,
        peer: IAddress,
        host: IAddress,
    ) -> None:
        self._socket = socket
        self._raw = raw
        self._peer = peer
        self._host = host

    @property
    def disconnecting(self) -> bool:
        """Whether the connection is closing, so that nothing more is sent."""
        return self._closing or bool(self._raw.disconnecting)

    def write(self, data: bytes) -> None:
        """Send each line in C{data} as one text message."""
        if self.disconnecting:
            return
        lines = data.split(LINE_ENDING)
        if lines[-1] == b"":
            lines.pop()
        for line in lines:
            self._socket.sendTextMessage(line.decode("utf-8", "replace"))

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """Close the WebSocket normally, once what was written is sent."""
        if self.disconnecting:
            return
        self._closing = True
        self._socket.loseConnection()

    def abortConnection(self) -> None:
        """Drop the connection at once, whatever is unsent."""
        self._closing = True
        self._raw.abortConnection()

    def getPeer(self) -> IAddress:
        return self._peer

    def getHost(self) -> IAddress:
        return self._host

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        """
        C{producer} hears when the client's socket buffer fills and drains.
        It takes the place of the HTTP channel, which registered on the
        connection before it became a WebSocket and is done with it.
        """
        if not streaming:
            raise ValueError("only streaming (push) producers are supported")
        self._socket.detachProducer()
        self._socket.attachProducer(producer)

    def unregisterProducer(self) -> None:
        self._socket.detachProducer()

    def pauseProducing(self) -> None:
        """Read nothing more from the client for now."""
        self._raw.pauseProducing()

    def resumeProducing(self) -> None:
        self._raw.resumeProducing()

    def stopProducing(self) -> None:
        self.abortConnection()

    def closeNow(self, code: int) -> None:
        """Close the WebSocket with C{code} (e.g. 1009, message too big)."""
        if not self.disconnecting:
            self._closing = True
            self._socket.loseConnection(code)
