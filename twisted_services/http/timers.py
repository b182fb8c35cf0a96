"""
A connection's deadlines on one timer: L{ConnectionTimer}.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class ConnectionTimer:
    """
    The deadlines of one connection, on a single L{IDelayedCall} set for
    whichever comes first: the idle deadline (C{idleTimeout} after the last
    read), the head deadline (C{headerTimeout} after a head's first read,
    however slowly the rest trickles in), the body deadline (from
    L{bodyBegan}, however slowly the body trickles in) and, once the
    connection is closing, the close grace period.

    Reads and requests only move the deadlines on: the call is rescheduled
    when it fires early, when a nearer deadline is set, or on closing, so a
    busy keep-alive connection does not touch the reactor's timers.

    @ivar lastActivity: when the connection last read anything; its owner
        sets it on every read.
    """

    def __init__(
        self,
        clock: IReactorTime,
        idleTimeout: float,
        headerTimeout: float,
        closeGrace: float,
        expired: Callable[[], None],
        graceOver: Callable[[], None],
    ) -> None:
        """
        @param idleTimeout: seconds without a read before C{expired}; 0 for
            never.
        @param headerTimeout: seconds from L{headBegan} to C{expired}, unless
            L{headDone} comes first.
        @param closeGrace: seconds from L{closing} to C{graceOver}.
        @param expired: called when the idle or head deadline has passed.
        @param graceOver: called when the close grace period has passed.
        """
        self._clock = clock
        self._idleTimeout = idleTimeout
        self._headerTimeout = headerTimeout
        self._closeGrace = closeGrace
        self._expired = expired
        self._graceOver = graceOver
        self.lastActivity = 0.0
        self._headDeadline = math.inf
        self._bodyDeadline = math.inf
        self._closing = False
        self._call: IDelayedCall | None = None
        self._callAt = math.inf

    def start(self, now: float) -> None:
        """The connection is made: the idle deadline runs from C{now}."""
        self.lastActivity = now
        if self._idleTimeout:
            self._scheduleAt(now + self._idleTimeout, now)

    def headBegan(self, now: float) -> None:
        """A request's head began at C{now}: it must be complete in time."""
        self._headDeadline = deadline = now + self._headerTimeout
        if deadline < self._callAt:
            self._scheduleAt(deadline, now)

    def headDone(self) -> None:
        """The head timed by L{headBegan} is complete (or was answered)."""
        self._headDeadline = math.inf

    def bodyBegan(self, now: float, timeout: float) -> None:
        """A request's body began at C{now}: it must be complete C{timeout} on."""
        self._bodyDeadline = deadline = now + timeout
        if deadline < self._callAt:
            self._scheduleAt(deadline, now)

    def bodyDone(self) -> None:
        """The body timed by L{bodyBegan} is complete."""
        self._bodyDeadline = math.inf

    def closing(self, now: float) -> None:
        """
        The connection is closing: the only deadline left is the grace
        period's, from C{now}.
        """
        self._closing = True
        self._scheduleAt(now + self._closeGrace, now)

    def stop(self) -> None:
        """The connection is gone: no deadline is left."""
        call = self._call
        if call is not None and call.active():
            call.cancel()
        self._call = None
        self._callAt = math.inf

    def _scheduleAt(self, when: float, now: float) -> None:
        call = self._call
        if call is not None and call.active():
            call.reset(when - now)
        else:
            self._call = self._clock.callLater(when - now, self._fired)
        self._callAt = when

    def _fired(self) -> None:
        """
        Report whichever deadline has passed, or set the call for the next
        one: reads since it was set moved the idle deadline on.
        """
        self._call = None
        self._callAt = math.inf
        if self._closing:
            self._graceOver()
            return
        now = self._clock.seconds()
        deadline = min(self._headDeadline, self._bodyDeadline)
        if self._idleTimeout:
            deadline = min(deadline, self.lastActivity + self._idleTimeout)
        if now >= deadline:
            self._expired()
        elif deadline < math.inf:
            self._scheduleAt(deadline, now)
