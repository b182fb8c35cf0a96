"""
One chat client as the chat state sees it, with its send queue judged over
time, the way an IRC server judges its clients' send queues.
"""

from __future__ import annotations

from twisted.internet.interfaces import (
    IDelayedCall,
    IPushProducer,
    IReactorTime,
    ITCPTransport,
)
from twisted.logger import Logger
from zope.interface import implementer

from twisted_services.chat.metrics import ChatCounters
from twisted_services.chat.state import IChatMember
from twisted_services.server.metrics.counters import StreamCounters


@implementer(IChatMember, IPushProducer)
class ChatMember:
    """
    One client: a nick, and L{send} for the lines it is sent.

    It is also the streaming producer on the client's transport, but it
    produces nothing: the transport calls L{pauseProducing} when its write
    buffer is full and L{resumeProducing} once it has all been sent. Reading
    from the client goes on either way.

    Being paused says nothing yet about the client: a fan-out writes a
    whole burst in one reactor turn, before the socket had any chance to
    drain. So slowness is judged over time. Bytes sent while paused are
    counted; once more than C{maxBuffer} are waiting a timer starts, and a
    client still paused C{sendTimeout} seconds later is disconnected. A
    client that drains its buffer in time (a resume) starts afresh. Past
    C{maxQueue} bytes the client is disconnected at once, so that memory
    stays bounded whatever the timeout.

    @ivar unsent: bytes written since the transport paused us.
    @ivar gone: whether the connection is closing or closed, so that sending
        is pointless.
    @ivar counters: where lines sent and dropped are counted.
    @ivar stream: where bytes sent are counted.
    """

    _log = Logger()

    def __init__(
        self,
        transport: ITCPTransport,
        peer: str,
        clock: IReactorTime,
        maxBuffer: int,
        sendTimeout: float,
        maxQueue: int,
        nick: str = "",
        counters: ChatCounters | None = None,
        stream: StreamCounters | None = None,
    ) -> None:
        self.nick = nick
        self.transport = transport
        self.peer = peer
        self.clock = clock
        self.maxBuffer = maxBuffer
        self.sendTimeout = sendTimeout
        self.maxQueue = maxQueue
        self.paused = False
        self.unsent = 0
        self.gone = False
        self.counters = ChatCounters() if counters is None else counters
        self.stream = StreamCounters() if stream is None else stream
        self._cutOffAsSlow = False
        self._timer: IDelayedCall | None = None

    def send(self, line: bytes) -> None:
        """Write C{line}, unless the client has let too much pile up."""
        if self.gone:
            if self._cutOffAsSlow:
                self.counters.slowReader += 1
            return
        if self.paused:
            self.unsent += len(line)
            if self.unsent > self.maxQueue:
                self._cutOff("more than {maxQueue} bytes queued")
                self.counters.slowReader += 1
                return
            if self.unsent > self.maxBuffer and self._timer is None:
                self._timer = self.clock.callLater(self.sendTimeout, self._timedOut)
        self.transport.write(line)
        self.counters.deliveries += 1
        self.stream.bytesSent += len(line)

    def _timedOut(self) -> None:
        self._timer = None
        self._cutOff("more than {maxBuffer} bytes unsent for {sendTimeout} seconds")

    def _cutOff(self, why: str) -> None:
        self.stop()
        self._cutOffAsSlow = True
        self.counters.slowReaders += 1
        self._log.warn(
            "chat: {nick} ({peer}) is not reading: " + why + ", disconnecting",
            nick=self.nick,
            peer=self.peer,
            maxBuffer=self.maxBuffer,
            maxQueue=self.maxQueue,
            sendTimeout=self.sendTimeout,
        )
        self.transport.abortConnection()

    def stop(self) -> None:
        """Send nothing more, and judge no more: the connection is going."""
        self.gone = True
        self._cancelTimer()

    def _cancelTimer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def pauseProducing(self) -> None:
        """The client's write buffer is full: count what is sent from now on."""
        self.paused = True

    def resumeProducing(self) -> None:
        """The client's write buffer drained: it is keeping up."""
        self.paused = False
        self.unsent = 0
        self._cancelTimer()

    def stopProducing(self) -> None:
        """The connection is going away; L{ChatProtocol} cleans up."""
        self.stop()
