"""
Arrival and departure notices, limited per room: a host that connects and
disconnects in a loop (or many hosts doing it together) must not flood a
room with them. Past the limit they are counted instead, and the room gets
one summary line for them a little later.

Local to this server: it limits what this server publishes.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from twisted_services.chat.state import IChatBroker, IChatMember
from twisted_services.chat.wire import encodeNotice
from twisted_services.core.ratelimit import SourceRateLimiter

SUMMARY_DELAY = 10.0
"""Seconds over which notices past the limit are gathered into one summary."""


class ChurnNotices:
    """
    Publishes arrival and departure notices through C{broker}, at most
    C{burst} at once and C{rate} a second on average per room; the rest are
    summed up in one notice per room every L{SUMMARY_DELAY} seconds at most.
    """

    def __init__(
        self, clock: IReactorTime, broker: IChatBroker, rate: float, burst: int
    ) -> None:
        self._clock = clock
        self._broker = broker
        self._limits = SourceRateLimiter(rate, burst, clock)
        # Room key -> [room name, notices not shown]; bounded by the rooms.
        self._held: dict[str, tuple[str, int]] = {}
        self._timers: dict[str, IDelayedCall] = {}

    def publish(self, room: str, text: str, exclude: IChatMember | None = None) -> None:
        """Tell C{room} (but C{exclude}) C{text}, a server notice, if in budget."""
        key = room.lower()
        if self._limits.allow(key):
            self._broker.publish(room, encodeNotice(text), exclude=exclude)
            return
        _, count = self._held.get(key, (room, 0))
        self._held[key] = (room, count + 1)
        if key not in self._timers:
            self._timers[key] = self._clock.callLater(
                SUMMARY_DELAY, self._summarize, key
            )

    def _summarize(self, key: str) -> None:
        del self._timers[key]
        room, count = self._held.pop(key)
        self._broker.publish(
            room,
            encodeNotice(f"{count} more arrival(s) and departure(s) not shown"),
        )

    def stop(self) -> None:
        """Cancel the summaries still to come (the server is stopping)."""
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()
        self._held.clear()
