"""
The chat service's metrics: its connections and bytes, the lines its clients
send and are sent, what is dropped and why, and its rooms and members.

L{ChatCounters} is bumped where L{ChatProtocol} and L{ChatMember} already see
each event, so every transport that speaks through them (TCP, TLS, or a
later one) is counted alike; rooms and members are read from the server's
L{IChatState} at scrape time, and, with C{--redis}, the Redis link's state and
what did not cross it from the L{RedisBroker}'s own counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from twisted_services.chat.state import IChatState
from twisted_services.server.connections import ConnectionTracker
from twisted_services.server.metrics.families import (
    counter,
    gauge,
    labelled,
    streamFamilies,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    # Not imported at run time: txredisapi installs the default reactor when
    # imported, and a chat without --redis has no broker to read.
    from twisted_services.chat.redisbroker import RedisBroker


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
    """
    Collects chat's metrics from its factory's counters and state, and from
    C{redis}, the broker sharing the chat, when there is one.
    """

    def __init__(
        self,
        counters: ChatCounters,
        connections: ConnectionTracker,
        state: IChatState,
        redis: RedisBroker | None = None,
    ) -> None:
        self._counters = counters
        self._connections = connections
        self._state = state
        self._redis = redis

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
        if self._redis is not None:
            yield from redisFamilies(self._redis)


def redisFamilies(broker: RedisBroker) -> Iterator[Metric]:
    """The Redis link's state and what did not cross it, as C{broker} counted."""
    yield counter(
        "chat_redis_lines_dropped",
        "Lines said here and not published to the other servers because more "
        "than --redis-max-pending bytes awaited Redis; this server's members "
        "got them.",
        {},
        broker.dropped,
    )
    yield counter(
        "chat_redis_lines_unshared",
        "Lines said here while Redis could not be reached, reaching this "
        "server's members only.",
        {},
        broker.unshared,
    )
    yield gauge(
        "chat_redis_link_up",
        "1 while the chat is shared through Redis, 0 while it is this "
        "server's alone (Redis lost or not reached yet).",
        {},
        1 if broker.up else 0,
    )
    yield counter(
        "chat_redis_link_losses",
        "Times the link to Redis was lost once up; each is followed by reconnecting.",
        {},
        broker.linkLosses,
    )
    yield gauge(
        "chat_redis_pending_bytes",
        "Bytes of published lines awaiting Redis's answer now.",
        {},
        broker.pending,
    )
