"""
Dual-stack listening: one IPv6 socket on C{::} that accepts IPv4 clients too,
as IPv4-mapped addresses (nginx's C{listen [::]:80 ipv6only=off}), so that
C{localhost}, which many systems resolve to C{::1} first, reaches a default
listener.

Linux accepts IPv4 on an IPv6 wildcard socket by default
(C{net.ipv6.bindv6only=0}), and then Twisted's own C{listenTCP} and
C{listenUDP} on C{::} are dual-stack. On a host set to C{bindv6only=1} they
would be IPv6 only, so there the socket is made here, with C{IPV6_V6ONLY}
turned off explicitly, and handed to the reactor to serve.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from twisted.internet.defer import Deferred, execute
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorSocket,
    IReactorTCP,
    IReactorUDP,
)
from twisted.internet.protocol import DatagramProtocol

WILDCARD = "::"
_BINDV6ONLY = "/proc/sys/net/ipv6/bindv6only"


def v6onlyByDefault(path: str = _BINDV6ONLY) -> bool:
    """Whether a new IPv6 socket refuses IPv4 unless told otherwise."""
    try:
        with open(path) as setting:
            return setting.read().strip() == "1"
    except OSError:
        return False


def hostHasIPv6() -> bool:
    """Whether this host can bind an IPv6 socket at all (IPv6 not disabled)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind((WILDCARD, 0))
    except OSError:
        return False
    return True


def _boundSocket(
    kind: int, port: int, prepare: Callable[[socket.socket], None]
) -> socket.socket:
    """
    An IPv6 socket of C{kind} bound to C{[::]:port} that accepts IPv4 too,
    non-blocking and close-on-exec (Python's default), ready to adopt.

    @raise CannotListenError: if it cannot be bound (a port in use).
    """
    sock = socket.socket(socket.AF_INET6, kind)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        prepare(sock)
        sock.bind((WILDCARD, port))
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise CannotListenError(WILDCARD, port, error) from None
    return sock


class DualStackServerEndpoint:
    """
    A stream server endpoint on C{[::]:port} that accepts IPv4 too: what
    C{tcp6:PORT:interface=\\:\\:} means here, whatever C{bindv6only} says.
    """

    def __init__(
        self,
        reactor: IReactorTCP | IReactorSocket,
        port: int,
        backlog: int,
        v6only: bool | None = None,
    ) -> None:
        """
        @param v6only: whether IPv6 sockets are IPv6 only unless told
            otherwise; by default, what the host's C{bindv6only} says.
        """
        self._reactor = reactor
        self._port = port
        self._backlog = backlog
        self._v6only = v6onlyByDefault() if v6only is None else v6only

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        if not self._v6only:
            return execute(
                self._reactor.listenTCP,
                self._port,
                factory,
                self._backlog,
                WILDCARD,
            )
        return execute(self._adopt, factory)

    def _adopt(self, factory: IProtocolFactory) -> IListeningPort:
        def reuse(sock: socket.socket) -> None:
            # As Twisted's own TCP ports: restart at once over TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

        with _boundSocket(socket.SOCK_STREAM, self._port, reuse) as sock:
            sock.listen(self._backlog)
            # The reactor serves a duplicate; ours closes here.
            return self._reactor.adoptStreamPort(
                sock.fileno(), socket.AF_INET6, factory
            )


def listenDualStackUDP(
    reactor: IReactorUDP | IReactorSocket,
    port: int,
    protocol: DatagramProtocol,
    v6only: bool | None = None,
    maxPacketSize: int = 8192,
) -> IListeningPort:
    """
    Serve C{protocol} on UDP C{[::]:port}, IPv4 senders included.

    @param v6only: as for L{DualStackServerEndpoint}.
    """
    if not (v6onlyByDefault() if v6only is None else v6only):
        return reactor.listenUDP(
            port, protocol, interface=WILDCARD, maxPacketSize=maxPacketSize
        )
    with _boundSocket(socket.SOCK_DGRAM, port, lambda sock: None) as sock:
        return reactor.adoptDatagramPort(
            sock.fileno(), socket.AF_INET6, protocol, maxPacketSize
        )
