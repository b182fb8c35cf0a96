"""
Sending lines no faster than a server's flood limit: a paste of a hundred
lines must reach a chat room whole, not meet C{! slow down} after the
server's burst.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime

from twisted_services.core.ratelimit import TokenBucket


class LinePacer:
    """
    Sends queued lines in order, the first C{burst} at once and then
    C{rate} a second, the way a token bucket on the server lets them in.

    At most C{maxQueued} lines wait. When the queue is full the input's
    producer (if one is set) is paused, and resumed once half the queue has
    gone out; a line pushed onto a full queue anyway is refused.
    """

    def __init__(
        self,
        send: Callable[[bytes], None],
        clock: IReactorTime,
        rate: float,
        burst: int,
        maxQueued: int,
    ) -> None:
        if maxQueued < 1:
            raise ValueError("maxQueued must be at least 1")
        self._send = send
        self._clock = clock
        self._rate = rate
        self._bucket = TokenBucket(rate, burst, clock.seconds())
        self._maxQueued = maxQueued
        self._queue: deque[bytes] = deque()
        self._next: IDelayedCall | None = None
        self._idle: list[Deferred[None]] = []
        self._producer: IPushProducer | None = None
        self._paused = False
        self._stopped = False

    def __len__(self) -> int:
        """How many lines wait to be sent."""
        return len(self._queue)

    def pauseWhenFull(self, producer: IPushProducer) -> None:
        """Pause C{producer} (the input) while the queue is full."""
        self._producer = producer

    def push(self, line: bytes) -> bool:
        """
        Send C{line} as soon as the pace allows; C{False} if the queue is
        full and the line is refused.
        """
        if self._stopped or len(self._queue) >= self._maxQueued:
            return False
        self._queue.append(line)
        if self._next is None:
            self._flush()
        if len(self._queue) >= self._maxQueued and self._producer is not None:
            self._paused = True
            self._producer.pauseProducing()
        return True

    def whenIdle(self) -> Deferred[None]:
        """Fires once every queued line is sent (at once if none waits)."""
        if not self._queue:
            return succeed(None)
        idle: Deferred[None] = Deferred()
        self._idle.append(idle)
        return idle

    def stop(self) -> None:
        """The connection is gone: send nothing more, forget what waits."""
        self._stopped = True
        self._queue.clear()
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None

    def _flush(self) -> None:
        self._next = None
        queue = self._queue
        while queue and self._bucket.take(self._clock.seconds()):
            self._send(queue.popleft())
        if queue:
            # The bucket lacks less than one token: in 1/rate it has one.
            self._next = self._clock.callLater(1 / self._rate, self._flush)
        else:
            idle, self._idle = self._idle, []
            for waiting in idle:
                waiting.callback(None)
        if self._paused and len(queue) <= self._maxQueued // 2:
            self._paused = False
            if self._producer is not None:
                self._producer.resumeProducing()
