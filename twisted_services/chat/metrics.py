"""
The chat service's metrics: its connections and bytes, the lines its clients
send and are sent, what is dropped and why, and its rooms and members.

L{ChatCounters} is bumped where L{ChatProtocol} and L{ChatMember} already see
each event, so every transport that speaks through them (TCP, TLS, or a
later one) is counted alike; rooms and members are read from the server's
L{IChatState} at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from twisted_services.chat.state import IChatState
from twisted_services.server.connections import ConnectionTracker
from twisted_services.server.metrics.families import (
    counter,
    gauge,
    labelled,
    streamFamilies,
)


class ChatCounters:
    """
    What chat counts beyond connections and bytes.

    @ivar linesReceived: non-empty lines clients sent, dropped ones included.
    @ivar deliveries: lines written to clients (each recipient of a
        broadcast counts once).
    @ivar tooLong: lines dropped as longer than C{--max-line}.
    @ivar flood: lines dropped as over the sender's line rate.
    @ivar slowReader: lines not sent to a client disconnected as a slow
        reader (the one that overflowed its queue, and any after it).
    @ivar slowReaders: clients disconnected as slow readers.
    @ivar nickChanges: successful C{/nick} changes to a different nick.
    """

    __slots__ = (
        "deliveries",
        "flood",
        "linesReceived",
        "nickChanges",
        "slowReader",
        "slowReaders",
        "tooLong",
    )

    def __init__(self) -> None:
        self.linesReceived = 0
        self.deliveries = 0
        self.tooLong = 0
        self.flood = 0
        self.slowReader = 0
        self.slowReaders = 0
        self.nickChanges = 0


class ChatCollector:
    """Collects chat's metrics from its factory's counters and state."""

    def __init__(
        self, counters: ChatCounters, connections: ConnectionTracker, state: IChatState
    ) -> None:
        self._counters = counters
        self._connections = connections
        self._state = state

    def collect(self) -> Iterator[Metric]:
        connections, counters = self._connections, self._counters
        yield from streamFamilies("chat", connections.counters, len(connections))
        yield counter(
            "chat_lines_received",
            "Non-empty lines clients sent, dropped ones included.",
            {},
            counters.linesReceived,
        )
        yield counter(
            "chat_deliveries",
            "Lines written to clients, one per recipient.",
            {},
            counters.deliveries,
        )
        yield labelled(
            CounterMetricFamily,
            "chat_lines_dropped",
            "Lines dropped: too long, over the sender's rate (flood), or not "
            "sent to a client cut off as a slow reader.",
            {},
            "reason",
            {
                "too_long": counters.tooLong,
                "flood": counters.flood,
                "slow_reader": counters.slowReader,
            },
        )
        yield counter(
            "chat_slow_readers_disconnected",
            "Clients disconnected for not reading what they were sent.",
            {},
            counters.slowReaders,
        )
        yield counter("chat_nick_changes", "Nick changes.", {}, counters.nickChanges)
        rooms = self._state.roomCounts()
        yield gauge("chat_rooms", "Rooms on this server.", {}, len(rooms))
        yield gauge("chat_members", "Members on this server.", {}, sum(rooms.values()))
