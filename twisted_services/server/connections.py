"""
Connection tracking for the stream services: a ceiling on open connections,
a registry of them, and a drain on shutdown, written once for every factory.

C{twisted.protocols.policies.LimitConnectionsByPeer} is broken in Twisted 26.10
(it indexes an C{IPv4Address}), and a global ceiling is what an operator needs
to protect the process's descriptors and memory anyway.
"""

from __future__ import annotations

from typing import Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IProtocol, IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from twisted_services.core.reporting import ThrottledReport
from twisted_services.server.metrics.counters import MAX_CONNECTIONS, StreamCounters

REFUSAL_LOG_INTERVAL = 10.0


class Drainable(Protocol):
    """A connection that can be asked to finish: say goodbye, then close."""

    def drain(self) -> None:
        """Finish what is under way and close; C{connectionLost} follows."""

    def abort(self) -> None:
        """Close at once: the drain took too long."""


class ConnectionLimit:
    """
    Counts a service's open connections against C{maximum}; refusals are
    logged at most once per L{REFUSAL_LOG_INTERVAL} under a flood.
    """

    _log = Logger()

    def __init__(self, maximum: int, clock: IReactorTime, serviceName: str) -> None:
        self.maximum = maximum
        self.open = 0
        self._serviceName = serviceName
        self._refusals = ThrottledReport(clock, REFUSAL_LOG_INTERVAL, self._logRefused)

    def admits(self) -> bool:
        """
        Whether one more connection fits; a refusal is recorded for the log.
        The caller counts an admitted connection with L{opened}.
        """
        if self.open < self.maximum:
            return True
        self._refusals.record()
        return False

    def opened(self) -> None:
        self.open += 1

    def closed(self) -> None:
        self.open -= 1

    def _logRefused(self, count: int) -> None:
        self._log.warn(
            "{service}: refused {count} connection(s): limit of {maximum} reached",
            service=self._serviceName,
            count=count,
            maximum=self.maximum,
        )


class ConnectionTracker:
    """
    The open connections of one service: admitted up to a L{ConnectionLimit},
    each known by its protocol, and all drained by L{drain} when the service
    stops.

    @ivar limit: the ceiling on open connections.
    @ivar shuttingDown: set by L{drain}: no connection is admitted any more.
    @ivar drainTimeout: seconds L{drain} gives the connections before it
        aborts those left; L{None} to leave that to each connection.
    @ivar counters: the service's connection and byte counts, for metrics:
        this counts the connections, the protocols the rest.
    """

    _log = Logger()

    def __init__(
        self,
        serviceName: str,
        clock: IReactorTime,
        maxConnections: int,
        drainTimeout: float | None = None,
        counters: StreamCounters | None = None,
    ) -> None:
        if drainTimeout is not None and drainTimeout < 0:
            raise ValueError("drainTimeout must be 0 or more")
        self.serviceName = serviceName
        self.limit = ConnectionLimit(maxConnections, clock, serviceName)
        self.drainTimeout = drainTimeout
        self.counters = StreamCounters() if counters is None else counters
        self.shuttingDown = False
        self._clock = clock
        self._open: set[Drainable] = set()
        self._drained: list[Deferred[None]] = []
        self._abortTimer: IDelayedCall | None = None

    def __len__(self) -> int:
        return len(self._open)

    def admits(self) -> bool:
        """
        Whether one more connection fits (a refusal is counted, and logged,
        throttled).
        """
        if self.limit.admits():
            return True
        self.counters.refused[MAX_CONNECTIONS] += 1
        return False

    def opened(self, connection: Drainable) -> None:
        """Count C{connection} (from its C{connectionMade})."""
        self.limit.opened()
        self.counters.accepted += 1
        self._open.add(connection)

    def closed(self, connection: Drainable) -> None:
        """Forget C{connection} (from its C{connectionLost})."""
        self.limit.closed()
        self._open.discard(connection)
        if self._drained:
            self._checkDrained()

    def drain(self) -> Deferred[None]:
        """
        Refuse new connections and ask every open one to finish; any left
        after L{drainTimeout} seconds is aborted.

        @return: a L{Deferred} that fires once every connection is gone.
        """
        self.shuttingDown = True
        self._log.info(
            "{service}: shutting down, finishing {count} connection(s)",
            service=self.serviceName,
            count=len(self._open),
        )
        drained: Deferred[None] = Deferred()
        self._drained.append(drained)
        for connection in list(self._open):
            connection.drain()
        if self._open and self.drainTimeout is not None and self._abortTimer is None:
            self._abortTimer = self._clock.callLater(self.drainTimeout, self._abortLeft)
        self._checkDrained()
        return drained

    def _abortLeft(self) -> None:
        """The drain's grace period is over: abort what is still open."""
        self._abortTimer = None
        self._log.info(
            "{service}: {count} connection(s) not finished within {timeout} "
            "seconds, aborting",
            service=self.serviceName,
            count=len(self._open),
            timeout=self.drainTimeout,
        )
        for connection in list(self._open):
            connection.abort()

    def _checkDrained(self) -> None:
        if self._open or not self._drained:
            return
        timer, self._abortTimer = self._abortTimer, None
        if timer is not None and timer.active():
            timer.cancel()
        drained, self._drained = self._drained, []
        for each in drained:
            each.callback(None)


class TrackingFactory(Factory):
    """
    A factory whose connections a L{ConnectionTracker} admits: none once
    the service is shutting down, and L{protocolWhenFull} past the limit.
    Its protocols call C{connections.opened(self)} and
    C{connections.closed(self)}.
    """

    connections: ConnectionTracker

    def buildProtocol(self, addr: IAddress) -> IProtocol | None:
        if self.connections.shuttingDown:
            # None makes the listening port close the accepted socket.
            return None
        if not self.connections.admits():
            return self.protocolWhenFull()
        return super().buildProtocol(addr)

    def protocolWhenFull(self) -> IProtocol | None:
        """
        What a connection past the limit gets: by default nothing (the
        socket is closed at once); a service may answer with a protocol that
        says why, then closes.
        """
        return None


class ShutdownService(Service):
    """
    Drains its L{ConnectionTracker} when stopped, so SIGTERM lets every
    connection finish (or be told) before the reactor drops it.

    Add it to the L{MultiService} before the listeners: a C{MultiService}
    stops its children in reverse order, so the listeners stop first and no
    one connects during the drain.
    """

    def __init__(self, connections: ConnectionTracker) -> None:
        self.connections = connections

    def startService(self) -> None:
        super().startService()
        self.connections.shuttingDown = False

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self.connections.drain()
