"""
Limits below the WebSocket layer: how many connections the web listener
holds, and how many bytes a client may send towards a message that is not
yet whole.

Twisted's WebSocket implementation gathers a message's fragments until the
last one arrives and has no ceiling of its own, so a client could make the
server hold an endless message. Only whole messages reach the chat, so the
bytes are counted here, on the connection, where they arrive.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
)
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from twisted_services.server.connections import ConnectionLimit


class UnframedGuard(ProtocolWrapper):
    """
    One connection of the web listener, counting the bytes received since
    the last whole message (L{messageDelivered}). Once L{watch} is called
    (the connection became a WebSocket), more than C{limit} of them calls
    the callback given to it; before then, the HTTP parser's own limits
    apply.

    The count is checked after each read, so at most C{limit} plus one read
    is ever held for an unfinished message.

    @ivar pending: bytes received since the last whole message.
    """

    pending = 0
    _limit: int | None = None
    _overLimit: Callable[[], None] | None = None

    def watch(self, limit: int, overLimit: Callable[[], None]) -> None:
        """From now on, call C{overLimit} once past C{limit} unframed bytes."""
        self._limit = limit
        self._overLimit = overLimit
        self.pending = 0

    def messageDelivered(self) -> None:
        """A whole message arrived: what came before it is accounted for."""
        self.pending = 0

    def dataReceived(self, data: bytes) -> None:
        if self._limit is None:
            super().dataReceived(data)
            return
        self.pending += len(data)
        super().dataReceived(data)
        if self.pending > self._limit and self._overLimit is not None:
            overLimit, self._overLimit = self._overLimit, None
            overLimit()


class GuardedSiteFactory(WrappingFactory):
    """
    Wraps the web chat's L{Site}: every connection gets an L{UnframedGuard},
    and past C{maxConnections} open ones a new connection is closed at once,
    the refusals logged at most once every few seconds (the WebSocket
    connections are also counted, and refused with a line saying why, by
    the chat's own limit).
    """

    protocol = UnframedGuard
    noisy = False

    def __init__(
        self, wrappedFactory: IProtocolFactory, maxConnections: int, clock: IReactorTime
    ) -> None:
        super().__init__(wrappedFactory)
        self.limit = ConnectionLimit(maxConnections, clock, "webchat")

    def buildProtocol(self, addr: IAddress) -> IProtocol | None:
        if not self.limit.admits():
            return None
        protocol = super().buildProtocol(addr)
        self.limit.opened()
        return protocol

    def unregisterProtocol(self, p: IProtocol) -> None:
        super().unregisterProtocol(p)
        self.limit.closed()
