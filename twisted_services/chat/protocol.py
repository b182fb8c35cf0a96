"""
The chat service: a room-based, line-based chat anyone can use with C{nc} or
C{telnet}, safe with hostile clients.

L{ChatProtocol} frames, decodes, sanitizes and rate-limits what one client
sends and turns it into operations on the factory's L{IChatBroker}, the chat
as a whole, which may span several servers and so answers with
L{Deferred}s; this server's rooms and members are its L{IChatState}. Neither
knows transports. What a client is sent goes
through its L{ChatMember}, which is also the streaming producer on its
transport: it learns from the transport when the client stops reading, and
disconnects a client whose output stays queued for too long, so that one
slow reader never holds back anyone else. Input is budgeted per connection
before any line is framed: a client sending faster than its line limits
allow is not read from until its budget refills.

The wire protocol, in brief (C{/help} lists the commands): lines are UTF-8
ending in LF or CRLF; the server's lines end in CRLF; a plain line goes to
the rest of the sender's room as C{<nick> text}; server notices start with
C{*** }, errors with C{! } (see L{twisted_services.chat.wire}).

Run as C{python -m twisted_services.chat HOST:PORT}, this module is the
terminal client (L{twisted_services.chat.client}).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocol,
    IReactorTime,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from twisted_services.chat import wire
from twisted_services.chat.admission import TOO_MANY, AddressAdmission
from twisted_services.chat.member import ChatMember
from twisted_services.chat.metrics import ChatCounters
from twisted_services.chat.notices import ChurnNotices
from twisted_services.chat.state import (
    LOBBY,
    IChatBroker,
    IChatState,
    LocalBroker,
    NickTaken,
)
from twisted_services.chat.text import (
    decodeLine,
    encodeLine,
    isTextEncoding,
    isValidNick,
    isValidRoom,
    parseLine,
    sanitize,
)
from twisted_services.chat.wire import encodeError, encodeNotice
from twisted_services.core.addresses import describeAddress
from twisted_services.core.lines import BoundedLineReceiver
from twisted_services.core.ratelimit import TokenBucket
from twisted_services.server.connections import ConnectionTracker, TrackingFactory
from twisted_services.server.metrics.counters import (
    CONNECT_RATE,
    MAX_CONNECTIONS,
    PER_ADDRESS,
    StreamCounters,
)

_T = TypeVar("_T")

CLOSE_GRACE = 3.0
"""
Seconds a closing connection has to take its last lines before it is
aborted: a client that does not read would otherwise keep it open for ever.
"""

HINT_DELAY = 2.0
"""
Seconds a partial line may sit unterminated before its sender is told, once,
to end lines with a newline (as socket-tutorial clients do not).
"""

# A run of line ends holds empty lines, which are ignored: they are skipped
# here, in one pass over the data, rather than one framed line at a time.
_EMPTY_LINES = re.compile(rb"\n(?:\r?\n)+")


class ChatProtocol(BoundedLineReceiver, TimeoutMixin):
    """
    One chat client: lines in, commands and messages out.

    Lines end in LF, with an optional CR before it. C{MAX_LENGTH} is
    C{--max-line} plus one for that CR; a longer line is discarded, all of
    it, with one C{! line too long}, and the connection goes on (the framing
    is L{BoundedLineReceiver}'s).

    What the rest of the chat must answer (a nick claim, C{/who}, C{/join},
    ...) goes to the factory's L{IChatBroker}, whose answers are
    L{Deferred}s. While one is awaited the client's later lines wait, and
    reading from it stops, so that they are handled in the order they were
    sent; an answer that comes once the client is gone is not acted on, and
    whatever it gave the member is given up (see L{_answered}). With
    L{LocalBroker} every answer is there at once and nothing waits.

    Nothing a client sends raises out of this protocol: an unexpected error
    handling a line is logged and the line is dropped.
    """

    _log = Logger()
    factory: ChatFactory
    # Every stream transport Twisted has (TCP, TLS, UNIX) can abort.
    transport: ITCPTransport
    member: ChatMember

    _peer = "(not connected)"
    _closing = False
    _flooded = False
    _closeTimer: IDelayedCall | None = None
    # In the broker's chat (entered, not yet left), so that a lost
    # connection must leave it and tell the room, under the nick the room
    # knows: a rename answered while closing is not announced.
    _inChat = False
    _knownAs = ""
    # Broker answers awaited; lines wait while there is one.
    _awaited = 0
    # Why reading from the client is paused: "lines" (a broker answer is
    # awaited), "input" (the input budget is spent); read while empty.
    _readHolds: frozenset[str] = frozenset()
    _readAgain: IDelayedCall | None = None
    # The hint about line endings: when it is due, and whether it was sent.
    _hintTimer: IDelayedCall | None = None
    _hinted = False
    # The address counted against the per-address limits, if any.
    _host: str | None = None

    def connectionMade(self) -> None:
        factory = self.factory
        factory.connections.opened(self)
        peer = self.transport.getPeer()
        self._host = getattr(peer, "host", None)
        if self._host is not None:
            factory.admission.opened(self._host)
        self._peer = describeAddress(peer)
        self.MAX_LENGTH = factory.maxLine + 1
        now = factory.clock.seconds()
        self._bucket = TokenBucket(factory.rate, factory.burst, now)
        # Input is budgeted in bytes as the line limits allow at the longest
        # line (with its CRLF), so that no legal burst is ever held back.
        lineBytes = factory.maxLine + 2
        self._input = TokenBucket(
            factory.rate * lineBytes, factory.burst * lineBytes, now
        )
        self.member = ChatMember(
            self.transport,
            self._peer,
            factory.clock,
            factory.maxBuffer,
            factory.sendTimeout,
            factory.maxQueue,
            counters=factory.counters,
            stream=factory.connections.counters,
        )
        self._counters = factory.counters
        self._stream = factory.connections.counters
        self.transport.registerProducer(self.member, True)
        self.setTimeout(factory.idleTimeout or None)
        self._enter()

    def _enter(self) -> None:
        """Enter the lobby under the next guest nick no one here is using."""
        self.member.nick = self.factory.nextGuestNick()
        self._after(
            maybeDeferred(self.factory.broker.enter, self.member, LOBBY),
            self._entered,
            self._notEntered,
        )

    def _entered(self, room: str) -> None:
        """Welcome the newcomer, and tell its room."""
        self._inChat = True
        member, nick = self.member, self.member.nick
        self._knownAs = nick
        self._log.info(
            "chat: {peer} connected as {nick}, in {room}",
            peer=self._peer,
            nick=nick,
            room=room,
        )
        member.send(
            encodeNotice(f"welcome, you are {nick} in {room}; type /help for commands")
        )
        self.factory.notices.publish(room, f"{nick} has joined", exclude=member)

    def _notEntered(self, reason: Failure) -> None:
        if reason.check(NickTaken):
            # Taken on another server: this one's guest numbers go on.
            self._enter()
            return
        self._log.failure(
            "chat: {peer} could not enter the chat", reason, peer=self._peer
        )
        self._close()

    def _after(
        self,
        answer: Deferred[_T],
        then: Callable[[_T], None],
        otherwise: Callable[[Failure], None] | None = None,
    ) -> None:
        """
        Go on with C{then(result)}, or C{otherwise(failure)}, once the broker
        has answered: at once if C{answer} has already fired (it has, from
        L{LocalBroker}), else later, with this client's lines held back until
        then.
        """
        self._awaited += 1
        answer.addBoth(self._answered, then, otherwise)
        if self._awaited and not self.paused:
            self._holdLines()

    def _answered(
        self,
        result: object,
        then: Callable[[Any], None],
        otherwise: Callable[[Failure], None] | None,
    ) -> None:
        """
        The broker answered: act on it, unless the client is gone or going,
        then handle the lines that waited for it.
        """
        self._awaited -= 1
        try:
            if self.member.gone:
                self._answeredTooLate()
            elif isinstance(result, Failure):
                (otherwise or self._lineFailed)(result)
            else:
                then(result)
        except Exception:
            self._lineFailed()
        if not self._awaited and self.paused:
            self._releaseLines()

    def _answeredTooLate(self) -> None:
        """
        The broker answered a client that is gone or going: nothing is sent,
        and whatever the answer gave it (a nick, a room) must not outlive it.
        Unless L{connectionLost} is still to come and leave, leave now: it
        may have left before the broker acted, or the client never entered.
        """
        if not self._inChat:
            self._leaveChat()

    def _lineFailed(self, reason: Failure | None = None) -> None:
        """Log why a line failed: C{reason}, or the exception being handled."""
        self._log.failure(
            "chat: error handling a line from {nick} ({peer})",
            reason,
            nick=self.member.nick,
            peer=self._peer,
        )

    def _holdLines(self) -> None:
        """Handle no more lines, and read none, until the broker answers."""
        self.paused = True
        self._holdReading("lines")

    def _releaseLines(self) -> None:
        """Read again, and handle the lines that waited, in order."""
        self.paused = False
        self._releaseReading("lines")
        if not self.member.gone:
            self._frame(b"")

    def _holdReading(self, why: str) -> None:
        """Read nothing from the client until every reason is released."""
        if not self._readHolds and not self.member.gone:
            self.transport.pauseProducing()
        self._readHolds |= {why}

    def _releaseReading(self, why: str) -> None:
        self._readHolds -= {why}
        if not self._readHolds and not self.member.gone:
            self.transport.resumeProducing()

    def _inputRefilled(self) -> None:
        self._readAgain = None
        self._releaseReading("input")

    def _leaveChat(self) -> None:
        """Give up the member's room and nick in the broker."""
        self._inChat = False
        self.factory.broker.leave(self.member).addErrback(
            lambda reason: self._log.failure(
                "chat: {nick} ({peer}) could not leave the chat",
                reason,
                nick=self.member.nick,
                peer=self._peer,
            )
        )

    def dataReceived(self, data: bytes) -> None:
        if self._closing or self.member.gone:
            return
        self.resetTimeout()
        self._stream.bytesReceived += len(data)
        factory = self.factory
        wait = self._input.spend(len(data), factory.clock.seconds())
        if wait and self._readAgain is None:
            # Over budget: what is here is handled, and nothing more is read
            # (TCP holds the sender back) until the budget is paid off.
            self._holdReading("input")
            self._readAgain = factory.clock.callLater(wait, self._inputRefilled)
        if b"\n\n" in data or b"\n\r\n" in data:
            data = _EMPTY_LINES.sub(b"\n", data)
        self._frame(data)
        self._watchPartialLine(data)

    def _watchPartialLine(self, data: bytes) -> None:
        """
        Time the line left unterminated at the end of C{data}, if any: one
        that sits for L{HINT_DELAY} seconds gets the client its hint.
        """
        if self._hinted or self._closing:
            return
        if data.endswith(b"\n") or self._discarding:
            self._cancelHint()
        elif self._hintTimer is None or b"\n" in data:
            self._cancelHint()
            self._hintTimer = self.factory.clock.callLater(HINT_DELAY, self._hint)

    def _hint(self) -> None:
        self._hintTimer = None
        self._hinted = True
        self.member.send(wire.END_LINES)

    def _cancelHint(self) -> None:
        timer, self._hintTimer = self._hintTimer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _frame(self, data: bytes) -> None:
        """Frame C{data} into lines and handle them, unless told to wait."""
        try:
            super().dataReceived(data)
        except Exception:
            self._log.failure("chat: error framing data from {peer}", peer=self._peer)
            self.clearLineBuffer()

    def longLineDropped(self) -> None:
        """An over-long line was dropped: tell the client, once per line."""
        counters = self._counters
        counters.linesReceived += 1
        counters.tooLong += 1
        self.member.send(wire.LINE_TOO_LONG)

    def completeLineReceived(self, line: bytes) -> None:
        if self._closing or self.member.gone:
            # Closing, or cut off as a slow reader: the rest of this read
            # is not acted on while the transport finishes the job.
            self.clearLineBuffer()
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            # Empty lines are ignored, and cost nothing: not even a token.
            return
        self._counters.linesReceived += 1
        factory = self.factory
        if len(line) > factory.maxLine:
            # MAX_LENGTH allows for a CR that this line did not have.
            self._counters.tooLong += 1
            self.member.send(wire.LINE_TOO_LONG)
            return
        if not self._bucket.take(factory.clock.seconds()):
            self._counters.flood += 1
            if not self._flooded:
                self._flooded = True
                self.member.send(wire.SLOW_DOWN)
            return
        self._flooded = False
        try:
            self._handle(sanitize(decodeLine(line, factory.fallbackEncoding)))
        except Exception:
            self._lineFailed()

    def _handle(self, text: str) -> None:
        name, argument = parseLine(text)
        if name is None:
            if argument.strip():
                self._say(argument)
            return
        command: Callable[[str], None] | None = getattr(self, "command_" + name, None)
        if command is None:
            self.member.send(encodeError(f"unknown command /{name}; type /help"))
        else:
            command(argument)

    def _say(self, text: str) -> None:
        """Send C{text} to the rest of the room, encoded once for all of them."""
        member = self.member
        room = self.factory.state.roomOf(member)
        if room is not None:
            line = encodeLine(f"<{member.nick}> {text}")
            self.factory.broker.publish(room, line, exclude=member)

    def command_nick(self, argument: str) -> None:
        """C{/nick NAME}: change nick, if no one else has it."""
        words = argument.split()
        if len(words) != 1:
            self.member.send(wire.NICK_USAGE)
            return
        [nick] = words
        if not isValidNick(nick):
            self.member.send(wire.NICK_INVALID)
            return
        old = self.member.nick
        self._after(
            self.factory.broker.rename(self.member, nick),
            lambda _: self._renamed(old, nick),
            lambda reason: self._notRenamed(reason, nick),
        )

    def _renamed(self, old: str, nick: str) -> None:
        member = self.member
        self._knownAs = nick
        member.send(encodeNotice(f"you are now known as {nick}"))
        if nick != old:
            self._counters.nickChanges += 1
            self._log.info(
                "chat: {old} ({peer}) is now known as {nick}",
                old=old,
                peer=self._peer,
                nick=nick,
            )
            room = self.factory.state.roomOf(member)
            if room is not None:
                self.factory.broker.publish(
                    room, encodeNotice(f"{old} is now known as {nick}"), exclude=member
                )

    def _notRenamed(self, reason: Failure, nick: str) -> None:
        if reason.check(NickTaken):
            self.member.send(encodeError(f"nick {nick} is taken"))
        else:
            self._lineFailed(reason)

    def command_me(self, argument: str) -> None:
        """C{/me ACTION}: the room, and the actor as confirmation, see the action."""
        if not argument:
            self.member.send(wire.ME_USAGE)
            return
        room = self.factory.state.roomOf(self.member)
        if room is not None:
            line = encodeLine(f"* {self.member.nick} {argument}")
            self.factory.broker.publish(room, line)

    def command_who(self, argument: str) -> None:
        """C{/who}: the members of the room, on every server, sorted."""
        if argument:
            self.member.send(wire.WHO_USAGE)
            return
        room = self.factory.state.roomOf(self.member)
        if room is None:
            return

        def listed(nicks: list[str]) -> None:
            nicks = sorted(nicks, key=str.lower)
            self.member.send(encodeNotice(f"in {room}: {', '.join(nicks)}"))

        self._after(self.factory.broker.members(room), listed)

    def command_join(self, argument: str) -> None:
        """C{/join ROOM}: leave this room for C{ROOM}, creating it if need be."""
        words = argument.split()
        if len(words) != 1:
            self.member.send(wire.JOIN_USAGE)
            return
        [wanted] = words
        if not isValidRoom(wanted):
            self.member.send(wire.ROOM_INVALID)
            return
        current = self.factory.state.roomOf(self.member)
        if current is not None and current.lower() == wanted.lower():
            self.member.send(encodeError(f"you are already in {current}"))
            return
        self._after(self.factory.broker.join(self.member, wanted), self._joined)

    def _joined(self, move: tuple[str | None, str]) -> None:
        old, room = move
        member, notices = self.member, self.factory.notices
        member.send(encodeNotice(f"you joined {room}"))
        if old is not None:
            notices.publish(old, f"{member.nick} has left (joined {room})")
        notices.publish(room, f"{member.nick} has joined", exclude=member)
        self._log.info(
            "chat: {nick} ({peer}) moved from {old} to {room}",
            nick=member.nick,
            peer=self._peer,
            old=old,
            room=room,
        )

    def command_rooms(self, argument: str) -> None:
        """C{/rooms}: every room with its number of members, sorted."""
        if argument:
            self.member.send(wire.ROOMS_USAGE)
            return

        def listed(counts: dict[str, int]) -> None:
            ordered = sorted(counts.items(), key=lambda item: item[0].lower())
            listing = ", ".join(f"{room} ({count})" for room, count in ordered)
            self.member.send(encodeNotice(f"rooms: {listing}"))

        self._after(self.factory.broker.roomCounts(), listed)

    def command_msg(self, argument: str) -> None:
        """C{/msg NICK TEXT}: a private line to C{NICK}, in whichever room."""
        parts = argument.split(None, 1)
        if len(parts) != 2:
            self.member.send(wire.MSG_USAGE)
            return
        nick, text = parts
        if not isValidNick(nick):
            self.member.send(wire.NO_SUCH_NICK)
            return

        def sent(holder: str | None) -> None:
            if holder is None:
                self.member.send(wire.NO_SUCH_NICK)
            else:
                self.member.send(encodeLine(f"-> *{holder}* {text}"))

        line = encodeLine(f"*{self.member.nick}* {text}")
        self._after(self.factory.broker.sendPrivate(nick, line), sent)

    def command_quit(self, argument: str) -> None:
        """C{/quit [REASON]}: leave, telling the room why, and close."""
        reason = argument or "quit"
        member = self.member
        room = self.factory.state.roomOf(member)
        self._leaveChat()
        if room is not None:
            self.factory.notices.publish(
                room, f"{member.nick} has left ({reason})", exclude=member
            )
        self._log.info(
            "chat: {nick} ({peer}) quit {room} ({reason})",
            nick=member.nick,
            peer=self._peer,
            room=room,
            reason=reason,
        )
        member.send(wire.BYE)
        self._close()

    # The socket-tutorial clients' ways of saying goodbye.
    command_exit = command_bye = command_quit

    def command_help(self, argument: str) -> None:
        """C{/help}: the commands and the C{//} rule."""
        if argument:
            self.member.send(wire.HELP_USAGE)
            return
        self.member.send(wire.HELP)

    def drain(self) -> None:
        """The server is stopping: say so, and close (see L{_close})."""
        self.member.send(wire.SHUTTING_DOWN)
        self._close()

    def abort(self) -> None:
        """Close at once, whatever is still unsent."""
        self.transport.abortConnection()

    def callLater(self, period: float, func):  # type: ignore[no-untyped-def]
        """Time comes from the factory's clock, so tests can use a C{Clock}."""
        return self.factory.clock.callLater(period, func)

    def timeoutConnection(self) -> None:
        """Nothing from the client for C{idleTimeout} seconds: say so, and close."""
        self._log.info(
            "chat: {nick} ({peer}) idle, closing",
            nick=self.member.nick,
            peer=self._peer,
        )
        self._stream.timedOut += 1
        self.member.send(wire.IDLE_CLOSING)
        self._close()

    def _close(self) -> None:
        """
        Close once what was written is sent. The producer goes first, or the
        transport would wait for it to resume instead of closing; and a
        client that does not take its last lines within L{CLOSE_GRACE} is
        aborted.
        """
        if self._closing:
            return
        self._closing = True
        self.setTimeout(None)
        self.clearLineBuffer()
        self._stopTimers()
        # Before loseConnection, which may call connectionLost at once.
        self._closeTimer = self.factory.clock.callLater(CLOSE_GRACE, self._graceOver)
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def _graceOver(self) -> None:
        self._closeTimer = None
        self._log.info(
            "chat: {nick} ({peer}) did not close within {grace} seconds, aborting",
            nick=self.member.nick,
            peer=self._peer,
            grace=CLOSE_GRACE,
        )
        self.abort()

    def _stopTimers(self) -> None:
        """The connection is going: nothing more is sent, read or timed."""
        self.member.stop()
        self._cancelHint()
        readAgain, self._readAgain = self._readAgain, None
        if readAgain is not None and readAgain.active():
            readAgain.cancel()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        if self._closeTimer is not None:
            if self._closeTimer.active():
                self._closeTimer.cancel()
            self._closeTimer = None
        factory, member = self.factory, self.member
        self._stopTimers()
        factory.connections.closed(self)
        if self._host is not None:
            factory.admission.closed(self._host)
        if self._inChat:
            room = factory.state.roomOf(member)
            self._leaveChat()
            if room is not None and not factory.connections.shuttingDown:
                factory.notices.publish(
                    room, f"{self._knownAs} has left (connection lost)", exclude=member
                )
        self._log.info(
            "chat: {nick} ({peer}) disconnected ({reason})",
            nick=member.nick,
            peer=self._peer,
            reason=reason.getErrorMessage(),
        )


class Refused(Protocol):
    """
    What a refused client gets: one line saying why, then close (past
    C{--max-connections}, or past its address's limits).
    """

    def __init__(self, line: bytes) -> None:
        self.line = line

    def connectionMade(self) -> None:
        self.transport.write(self.line)
        self.transport.loseConnection()


class ChatFactory(TrackingFactory):
    """
    The chat server: the L{IChatBroker} (and through it this server's
    L{IChatState}), the limits every L{ChatProtocol} applies, the guest
    counter and the clock.

    @ivar broker: the chat as a whole; by default a L{LocalBroker}, over
        C{state} if one is given.
    @ivar state: this server's members and rooms, C{broker.local}.
    @ivar maxLine: the longest line a client may send, in bytes without its
        line ending.
    @ivar fallbackEncoding: the text encoding for lines that are not UTF-8,
        or L{None} to replace invalid bytes with U+FFFD.
    @ivar rate: lines per second a client may send, on average.
    @ivar burst: lines a client may send at once.
    @ivar maxBuffer: bytes a client may have waiting for longer than
        C{sendTimeout} seconds before it is disconnected as not reading.
    @ivar sendTimeout: seconds a client may keep more than C{maxBuffer}
        bytes waiting.
    @ivar maxQueue: bytes waiting for a client past which it is disconnected
        at once.
    @ivar admission: the per-address limits: C{maxPerAddress} connections at
        once (0 for no limit), C{connectRate} new ones a second on average
        and C{connectBurst} at once.
    @ivar notices: arrivals and departures, at most C{noticeBurst} at once
        and C{noticeRate} a second per room, the rest summed up.
    @ivar idleTimeout: seconds without data from a client before its
        connection is closed; 0 for never.
    @ivar connections: the open connections, up to C{maxConnections}; its
        C{drain} tells every client the server is shutting down, after which
        departures are no longer announced. Its C{counters} count
        connections, refusals and bytes.
    @ivar counters: lines received, delivered and dropped, and nick changes.
    """

    protocol = ChatProtocol
    noisy = False

    def __init__(
        self,
        clock: IReactorTime,
        state: IChatState | None = None,
        maxLine: int = 4096,
        fallbackEncoding: str | None = None,
        rate: float = 5.0,
        burst: int = 20,
        maxBuffer: int = 1024 * 1024,
        idleTimeout: float = 3600.0,
        maxConnections: int = 10000,
        broker: IChatBroker | None = None,
        sendTimeout: float = 10.0,
        maxQueue: int = 16 * 1024 * 1024,
        maxPerAddress: int = 20,
        connectRate: float = 2.0,
        connectBurst: int = 20,
        noticeRate: float = 1.0,
        noticeBurst: int = 10,
    ) -> None:
        TokenBucket(rate, burst, 0)  # validates the parameters up front
        if maxLine < 1 or maxBuffer < 1 or maxQueue < maxBuffer:
            raise ValueError(
                "maxLine and maxBuffer must be at least 1, maxQueue at least maxBuffer"
            )
        if sendTimeout <= 0:
            raise ValueError("sendTimeout must be positive")
        if fallbackEncoding is not None and not isTextEncoding(fallbackEncoding):
            raise ValueError(f"{fallbackEncoding!r} is not a text encoding")
        self.clock = clock
        if broker is None:
            broker = LocalBroker(state)
        elif state is not None and state is not broker.local:
            raise ValueError("give a state or a broker, not both")
        self.broker = broker
        self.state: IChatState = broker.local
        self.maxLine = maxLine
        self.fallbackEncoding = fallbackEncoding
        self.rate = rate
        self.burst = burst
        self.maxBuffer = maxBuffer
        self.sendTimeout = sendTimeout
        self.maxQueue = maxQueue
        self.idleTimeout = idleTimeout
        self.admission = AddressAdmission(
            clock, maxPerAddress, connectRate, connectBurst
        )
        self.notices = ChurnNotices(clock, broker, noticeRate, noticeBurst)
        # No drain timeout: each connection aborts itself CLOSE_GRACE seconds
        # after it starts closing (see ChatProtocol._close).
        self.connections = ConnectionTracker(
            "chat",
            clock,
            maxConnections,
            counters=StreamCounters((MAX_CONNECTIONS, PER_ADDRESS, CONNECT_RATE)),
        )
        self.counters = ChatCounters()

    def buildProtocol(self, addr: IAddress) -> IProtocol | None:
        """
        A protocol for a client from C{addr}, unless its address is past its
        limits: then it is told why, and closed.
        """
        host = getattr(addr, "host", None)
        if host is not None and not self.connections.shuttingDown:
            refusal = self.admission.refusal(host)
            if refusal is not None:
                reason = PER_ADDRESS if refusal is TOO_MANY else CONNECT_RATE
                self.connections.counters.refused[reason] += 1
                return Refused(encodeError(f"{refusal}, try later"))
        return super().buildProtocol(addr)

    def stopFactory(self) -> None:
        """The last listener stopped: no summary of arrivals is still to come."""
        self.notices.stop()

    def protocolWhenFull(self) -> Refused:
        """Past C{--max-connections} a client is told so, then closed."""
        return Refused(wire.SERVER_FULL)

    def nextGuestNick(self) -> str:
        """
        A guest nick no one on this server is using, as the broker numbers
        them (servers sharing a chat must not all count from 1); the broker
        has the last word on the rest of the chat.
        """
        return self.broker.nextGuestNick()
