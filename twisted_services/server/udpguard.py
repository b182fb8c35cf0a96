"""
Rules that keep a UDP service from being used as a reflection amplifier or
from ping-ponging with another UDP service.

A UDP reply goes to an address nobody verified. Well-known source ports
(below 1024) and our own port are where spoofed loops come from (echo to
chargen, converter to converter), and a per-source token bucket caps what any
one victim can be sent.

L{ReflectionGuard} holds those rules; L{GuardedDatagramProtocol} is the one
way a request/reply datagram service applies them, so every such service
drops the same datagrams and survives the same send failures.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime, ISystemHandle, IUDPTransport
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from twisted_services.core.ratelimit import SourceRateLimiter
from twisted_services.core.reporting import ThrottledReport
from twisted_services.server.metrics.counters import DatagramCounters

DROP_LOG_INTERVAL = 10.0

RESERVED_PORTS = 1024
"""Source ports below this are never answered: well-known services live there."""

Address = tuple[str, int]


class ReflectionGuard:
    """
    Decides whether a datagram from C{(host, port)} may be answered, and
    counts the ones that may not, logging the count at most once per interval.

    @ivar counters: the datagrams answered, and dropped by reason, for metrics.
    """

    _log = Logger()

    def __init__(
        self,
        serviceName: str,
        clock: IReactorTime,
        rate: float,
        burst: int,
        maxSources: int = 10000,
    ) -> None:
        self._serviceName = serviceName
        # Bound once: allows() runs for every datagram.
        self._allow = SourceRateLimiter(rate, burst, clock, maxSources).allow
        self._drops = ThrottledReport(clock, DROP_LOG_INTERVAL, self._logDropped)
        self.ownPort = 0
        self.dropped = 0
        self.counters = DatagramCounters()

    def allows(self, address: Address) -> bool:
        """Whether a reply to C{address} is allowed now; a refusal is counted."""
        port = address[1]
        if port < RESERVED_PORTS or port == self.ownPort:
            self.counters.reservedPort += 1
            self.drop()
            return False
        if not self._allow(address[0]):
            self.counters.rateLimited += 1
            self.drop()
            return False
        return True

    def receiver(
        self,
        answerable: Callable[[bytes], bool],
        reply: Callable[[bytes], bytes],
        send: Callable[[bytes, Address], object],
    ) -> Callable[[bytes, Address], None]:
        """
        The handling of one datagram, as one function over locals: unless
        C{answerable} refuses it (before any token is spent) or L{allows}
        would refuse its source, C{send} its C{reply} back to that source; a
        send that fails with C{OSError} is dropped. Every datagram is
        counted, answered or left unanswered by reason (L{counters}).
        L{ownPort} is read now, so call this once it is known.

        It repeats the rules of L{allows} inline rather than calling it: on
        the path of every datagram, each Python call and attribute lookup
        saved is a share of what the guard costs (see
        C{bench/temperature_bench.py --micro}).
        """
        ownPort = self.ownPort
        allow = self._allow
        drop = self.drop
        counters = self.counters

        def receive(data: bytes, address: Address) -> None:
            if not answerable(data):
                counters.unanswerable += 1
                drop()
                return
            host, port = address
            if port < RESERVED_PORTS or port == ownPort:
                counters.reservedPort += 1
                drop()
                return
            if not allow(host):
                counters.rateLimited += 1
                drop()
                return
            try:
                send(reply(data), address)
            except OSError:
                # A spoofed broadcast source (EACCES) or a full send buffer
                # (EAGAIN) would otherwise log a traceback per datagram.
                counters.sendFailed += 1
                drop()
            else:
                counters.answered += 1

        return receive

    def drop(self) -> None:
        """Count a datagram left unanswered for any reason."""
        self.dropped += 1
        self._drops.record()

    def stop(self) -> None:
        """Log the drops not yet reported and cancel the report's timer."""
        self._drops.stop()

    def _logDropped(self, count: int) -> None:
        self._log.warn(
            "{service}: dropped {count} datagram(s) (unanswerable, from a "
            "reserved or our own port, or over the per-source rate limit)",
            service=self._serviceName,
            count=count,
        )


class GuardedDatagramProtocol(DatagramProtocol):
    """
    Answers each datagram with L{reply}, sent back to its source, unless its
    L{ReflectionGuard} refuses that source or the datagram itself is one that
    must go unanswered; a reply the system will not send is dropped too.
    Every datagram left unanswered is counted by the guard.

    Subclasses implement L{reply} and may narrow what is answered with
    L{answerable}, which is checked before the guard, so the datagrams it
    refuses spend none of the source's tokens.
    """

    noisy = False
    transport: IUDPTransport

    def __init__(self, guard: ReflectionGuard) -> None:
        self.guard = guard

    def answerable(self, data: bytes) -> bool:
        """
        Whether C{data} may be answered at all, whoever sent it: a service
        refuses here what it would send as a reply, so that a datagram
        spoofed from one instance to another cannot ping-pong. All by default.
        """
        return True

    def reply(self, data: bytes) -> bytes:
        """The answer to one datagram that the guard let through."""
        raise NotImplementedError(f"{type(self).__name__} must implement reply")

    def startProtocol(self) -> None:
        # Read once: getHost is a system call, too dear for every datagram.
        self.guard.ownPort = self.transport.getHost().port
        # The hot path of every UDP service here: the port calls one closure
        # over locals (ReflectionGuard.receiver) for each datagram, not this
        # class's methods. A DatagramProtocol has one transport, for good.
        self.datagramReceived = self.guard.receiver(  # type: ignore[method-assign]
            self.answerable, self.reply, replySender(self.transport)
        )

    def stopProtocol(self) -> None:
        self.guard.stop()
        del self.datagramReceived

    def datagramReceived(self, data: bytes, addr: Address) -> None:
        """
        Not started (or stopped): there is no port to answer from, so the
        datagram is dropped (its reply could not be sent); once started,
        L{ReflectionGuard.receiver}'s function takes this method's place.
        """
        self.guard.counters.sendFailed += 1
        self.guard.drop()


def replySender(transport: IUDPTransport) -> Callable[[bytes, Address], object]:
    """
    How replies leave C{transport}: by its socket's own C{sendto} where it
    has one (a UDP port of a real reactor is an L{ISystemHandle} whose
    handle is its socket), else by its C{write}.

    C{Port.write} checks every address it is given, whether it is IPv4 or
    IPv6 and fits the port (three parses, about 2 us a datagram on the
    project's VM: more than the whole guard). A reply goes to the address
    C{recvfrom} gave for the request, which passes them by construction. A
    send the system refuses raises C{OSError} either way.
    """
    if ISystemHandle.providedBy(transport):
        handle = transport.getHandle()
        if isinstance(handle, socket.socket):
            return handle.sendto
    return transport.write
