"""
L{RedisBroker}: one chat over any number of servers sharing a Redis.

Each server keeps its own members in its L{IChatState} and fans lines out
to them in-process, as a lone server does; Redis carries what crosses
servers (see L{twisted_services.chat.redisscripts} for the data):

  - a line said in a room is delivered here at once and published once, on
    the room's channel, to which every server with members there is
    subscribed; never once per member;
  - nicks are claimed in Redis atomically, with an expiry that a heartbeat
    refreshes every third of it, so the nicks of a server that dies are
    free within C{presenceTTL} seconds; the heartbeat also rewrites this
    server's rooms and members, so that Redis converges on what the server
    holds whatever was lost (a restarted Redis, a reply that never came);
  - C{/msg} to a nick on another server is published to that server's own
    channel.

When Redis cannot be reached the chat goes on locally: rooms, nicks and
messages among this server's members work as on a lone server, every member
is told once that messages now reach this server only, and once that they
reach every server again when the link is back (after reconnecting with
backoff). Nothing queues without bound: lines published while Redis is
slow to answer are counted against C{maxPending} bytes, and past it they
reach this server only and are counted as dropped.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_services.chat import redisscripts as scripts
from twisted_services.chat.redislink import ILinkReceiver, RedisLink
from twisted_services.chat.state import (
    LOBBY,
    ChatState,
    IChatBroker,
    IChatMember,
    IChatState,
    LocalBroker,
    NickTaken,
)
from twisted_services.chat.text import nickKey
from twisted_services.chat.wire import encodeNotice
from twisted_services.core.reporting import ThrottledReport

_T = TypeVar("_T")

LOCAL_ONLY = encodeNotice(
    "the chat's other servers cannot be reached: messages now reach this server only"
)
SHARED_AGAIN = encodeNotice(
    "the chat's other servers are back: messages reach every server again"
)

GUEST_BLOCK = 64
"""Guest numbers reserved from Redis at a time."""

DROP_LOG_INTERVAL = 10.0
"""Dropped lines are logged at most once per this many seconds, with a count."""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@implementer(IChatBroker, ILinkReceiver)
class RedisBroker(Service):
    """
    L{IChatBroker} over a L{RedisLink}, and the service that starts the link
    and the heartbeat and, when stopping, gives this server's part of the
    chat up at once.

    @param presenceTTL: seconds a server's claims outlive its last
        heartbeat; it sends one every third of that.
    @param timeout: seconds an answer from Redis is waited for; a client's
        lines wait meanwhile, so past it Redis is taken to be lost.
    @param maxPending: bytes of published lines that may await Redis's
        answer; more are dropped (reaching this server only) and counted.
    @ivar dropped: lines not published because of C{maxPending}.
    @ivar unshared: lines said while Redis could not be reached.
    @ivar linkLosses: times the link to Redis was lost once up (each is
        followed by reconnecting).
    """

    _log = Logger()
    name = "chat-redis"

    def __init__(
        self,
        link: RedisLink,
        clock: IReactorTime,
        presenceTTL: float = 15.0,
        timeout: float = 5.0,
        maxPending: int = 4 * 1024 * 1024,
        local: IChatState | None = None,
        prefix: str = scripts.PREFIX,
        serverId: str | None = None,
    ) -> None:
        if presenceTTL <= 0 or timeout <= 0 or maxPending < 1:
            raise ValueError("presenceTTL, timeout and maxPending must be positive")
        self.local: IChatState = local if local is not None else ChatState()
        # What this server does on its own: all of it while Redis is away,
        # and its own part once Redis has agreed.
        self._alone = LocalBroker(self.local)
        self.link = link
        self.clock = clock
        self.presenceTTL = presenceTTL
        self.timeout = timeout
        self.maxPending = maxPending
        self.serverId = serverId or secrets.token_hex(6)
        self._prefix = prefix
        self._sid = self.serverId.encode("ascii")
        self._ttl = max(1, round(presenceTTL * 1000))
        self._up = False
        # Whether members were told that messages reach this server only.
        self._toldDown = False
        # What this server has told Redis (or will, once the link is up):
        # each member's room, as the heartbeat rewrites it, and how many
        # members each room key has here, for its subscription.
        self._claims: dict[IChatMember, str] = {}
        self._roomRefs: dict[str, int] = {}
        self._subscriptions: dict[str, Deferred[Any]] = {}
        self._pending = 0
        self.dropped = 0
        self.unshared = 0
        self.linkLosses = 0
        self._dropReport = ThrottledReport(clock, DROP_LOG_INTERVAL, self._logDropped)
        self._guestNumbers: deque[int] = deque()
        self._reserving = False
        self._fallbackGuests = itertools.count(1)
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = clock
        self._unreachable: Any = None

    # The service.

    def startService(self) -> None:
        super().startService()
        self.link.start(self)
        self._heartbeat.start(self.presenceTTL / 3, now=False)
        # Members are told if Redis cannot be reached at start-up, too.
        self._unreachable = self.clock.callLater(self.timeout, self._notReachedYet)

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        if self._heartbeat.running:
            self._heartbeat.stop()
        self._cancelUnreachable()
        self._dropReport.stop()
        goodbye: Deferred[Any] = succeed(None)
        if self._up:
            keys = [nickKey(member.nick) for member in self._claims]
            goodbye = self._ask(scripts.GOODBYE, [self._sid, *keys])
            goodbye.addErrback(lambda reason: None)
        self._up = False
        return goodbye.addCallback(lambda _: self.link.stop())

    @property
    def up(self) -> bool:
        """Whether the chat is shared through Redis now (not this server's alone)."""
        return self._up

    @property
    def pending(self) -> int:
        """Bytes of published lines awaiting Redis's answer (at most C{maxPending})."""
        return self._pending

    def _notReachedYet(self) -> None:
        self._unreachable = None
        if not self._up and not self._toldDown:
            self._log.warn(
                "chat: Redis at {address} cannot be reached yet; the chat is "
                "this server's alone until it can",
                address=self.link.name,
            )
            self._goneLocal()

    def _cancelUnreachable(self) -> None:
        timer, self._unreachable = self._unreachable, None
        if timer is not None and timer.active():
            timer.cancel()

    # The link.

    def linkReady(self) -> None:
        """Subscribe again and write this server's part; then it is up."""
        self._subscriptions.clear()
        channels = [self._channel("server:", self.serverId)]
        channels += [self._channel("room:", room) for room in self._roomRefs]
        subscribed = [self.link.subscribe(channel) for channel in channels]
        for room, done in zip(self._roomRefs, subscribed[1:], strict=True):
            self._subscriptions[room] = done
        ready = gatherResults([*subscribed, self._sendHeartbeat()], consumeErrors=True)
        ready.addTimeout(self.timeout, self.clock)
        ready.addCallbacks(self._nowUp, self._notUp)

    def _nowUp(self, _: object) -> None:
        if not self.link.up:
            return
        self._cancelUnreachable()
        self._up = True
        # Rooms entered here while this was under way.
        for key in self._roomRefs:
            self._subscribe(key)
        self._log.info(
            "chat: sharing the chat through Redis at {address}", address=self.link.name
        )
        self._reserveGuests()
        if self._toldDown:
            self._toldDown = False
            self._tellEveryone(SHARED_AGAIN)

    def _notUp(self, reason: Failure) -> None:
        self._log.warn(
            "chat: Redis at {address} did not get ready ({reason}); reconnecting",
            address=self.link.name,
            reason=reason.getErrorMessage() or reason.type.__name__,
        )
        self.link.reset()

    def linkLost(self, reason: Failure) -> None:
        """Go on locally, and say so once."""
        self.linkLosses += 1
        self._up = False
        self._subscriptions.clear()
        self._pending = 0
        self._log.warn(
            "chat: lost Redis at {address} ({reason}); reconnecting, the chat "
            "is this server's alone meanwhile",
            address=self.link.name,
            reason=reason.getErrorMessage(),
        )
        if not self._toldDown:
            self._goneLocal()

    def _goneLocal(self) -> None:
        self._toldDown = True
        self._tellEveryone(LOCAL_ONLY)

    def _tellEveryone(self, line: bytes) -> None:
        for room in list(self.local.roomCounts()):
            self.local.broadcast(room, line)

    def messageReceived(self, channel: bytes, payload: bytes) -> None:
        """A line from another server, for a room or for one member here."""
        head, _, line = payload.partition(b"\n")
        if channel.startswith(self._roomChannelPrefix):
            if head != self._sid:
                room = channel[len(self._roomChannelPrefix) :].decode(
                    "utf-8", "replace"
                )
                self.local.broadcast(room, line)
            return
        member = self.local.lookup(_text(head))
        if member is not None:
            member.send(line)

    @property
    def _roomChannelPrefix(self) -> bytes:
        return f"{self._prefix}room:".encode()

    def _channel(self, kind: str, name: str) -> bytes:
        return f"{self._prefix}{kind}{name}".encode()

    def _ask(self, script: bytes, args: list[object]) -> Deferred[Any]:
        """
        Run C{script}; a failure to answer within C{timeout} drops the link,
        which is made again.
        """
        answer = self.link.eval(script, [self._prefix, *args])
        answer.addTimeout(self.timeout, self.clock)
        answer.addErrback(self._failed)
        return answer

    def _failed(self, reason: Failure) -> Failure:
        if not reason.check(NickTaken):
            if self._up:
                self._log.warn(
                    "chat: Redis did not answer ({reason}); reconnecting",
                    reason=reason.getErrorMessage() or reason.type.__name__,
                )
                self.link.reset()
        return reason

    # Subscriptions follow this server's claims.

    def _claim(self, member: IChatMember, room: str) -> Deferred[Any]:
        """Note C{member} in C{room}; fires once its channel is subscribed."""
        self._unclaim(member)
        self._claims[member] = room
        key = room.lower()
        self._roomRefs[key] = self._roomRefs.get(key, 0) + 1
        if not self._up:
            return succeed(None)  # subscribed once the link is up
        subscribed = self._subscribe(key)
        # Each caller waits on its own copy of the outcome.
        waiting: Deferred[Any] = Deferred()
        subscribed.addBoth(lambda result: (waiting.callback(None), result)[1])
        return waiting

    def _subscribe(self, key: str) -> Deferred[Any]:
        """Subscribe to room C{key}'s channel, unless that is done or under way."""
        subscribed = self._subscriptions.get(key)
        if subscribed is None:
            subscribed = self._subscriptions[key] = self.link.subscribe(
                self._channel("room:", key)
            )
            # Subscribing has no reply timeout of its own in txredisapi.
            subscribed.addTimeout(self.timeout, self.clock)
            subscribed.addErrback(self._failed).addErrback(lambda reason: None)
        return subscribed

    def _unclaim(self, member: IChatMember) -> bool:
        room = self._claims.pop(member, None)
        if room is None:
            return False
        key = room.lower()
        left = self._roomRefs[key] - 1
        if left:
            self._roomRefs[key] = left
        else:
            del self._roomRefs[key]
            if self._subscriptions.pop(key, None) is not None and self._up:
                self.link.unsubscribe(self._channel("room:", key)).addErrback(
                    lambda reason: None
                )
        return True

    def _fallBack(
        self, reason: Failure, local: Callable[[], Deferred[_T]]
    ) -> Deferred[_T]:
        """Redis could not do it: do it on this server alone."""
        if reason.check(NickTaken):
            return fail(reason)
        return local()

    # IChatBroker.

    def enter(self, member: IChatMember, room: str) -> Deferred[str]:
        if self.local.lookup(member.nick) is not None:
            return fail(NickTaken(member.nick))
        if not self._up:
            return self._enterHere(member, room)
        nick = member.nick
        subscribed = self._claim(member, room)
        args = [self._sid, self._ttl, nickKey(nick), nick, room.lower(), room]
        answer = self._ask(scripts.ENTER, args)

        def answered(reply: list[Any]) -> Deferred[str]:
            if not int(reply[0]):
                self._unclaim(member)
                raise NickTaken(nick)
            name = _text(reply[1])
            self._claims[member] = name
            return subscribed.addCallback(lambda _: self._enterHere(member, name))

        answer.addCallback(answered)
        answer.addErrback(self._fallBack, lambda: self._enterHere(member, room))
        return answer

    def _enterHere(self, member: IChatMember, room: str) -> Deferred[str]:
        """Enter C{member} here alone (Redis did, or cannot, have its say)."""

        def entered(name: str) -> str:
            self._noteClaim(member, name)
            if not self._up and self._toldDown:
                member.send(LOCAL_ONLY)
            return name

        def refused(reason: Failure) -> Failure:
            # Another member here claimed the same nick meanwhile.
            self._unclaim(member)
            return reason

        return self._alone.enter(member, room).addCallbacks(entered, refused)

    def _noteClaim(self, member: IChatMember, room: str) -> None:
        """C{member} is in C{room} here: claim it, unless that is claimed."""
        if self._claims.get(member, "").lower() == room.lower():
            self._claims[member] = room  # as spelled
        else:
            self._claim(member, room)

    def rename(self, member: IChatMember, nick: str) -> Deferred[None]:
        holder = self.local.lookup(nick)
        if holder is not None and holder is not member:
            return fail(NickTaken(nick))
        old = member.nick
        room = self._claims.get(member)
        if not self._up or room is None:
            return self._alone.rename(member, nick)
        args = [
            self._sid,
            self._ttl,
            nickKey(old),
            old,
            nickKey(nick),
            nick,
            room.lower(),
        ]
        answer = self._ask(scripts.RENAME, args)

        def answered(ok: object) -> Deferred[None]:
            if not int(ok):  # type: ignore[call-overload]
                raise NickTaken(nick)
            if member not in self._claims:
                # It left meanwhile: the nick just claimed goes too.
                self._release(nickKey(nick), nick, "")
                return succeed(None)
            return self._alone.rename(member, nick)

        answer.addCallback(answered)
        answer.addErrback(self._fallBack, lambda: self._alone.rename(member, nick))
        return answer

    def join(self, member: IChatMember, room: str) -> Deferred[tuple[str | None, str]]:
        old = self._claims.get(member)
        if not self._up or old is None:
            return self._moveHere(member, room)
        subscribed = self._claim(member, room)
        args = [self._sid, self._ttl, member.nick, old.lower(), room.lower(), room]
        answer = self._ask(scripts.JOIN, args)

        def answered(name: bytes) -> Deferred[tuple[str | None, str]]:
            spelled = _text(name)
            self._claims[member] = spelled
            return subscribed.addCallback(lambda _: self._moveHere(member, spelled))

        answer.addCallback(answered)
        answer.addErrback(self._fallBack, lambda: self._moveHere(member, room))
        return answer

    def _moveHere(
        self, member: IChatMember, room: str
    ) -> Deferred[tuple[str | None, str]]:
        """Move C{member} here alone (Redis did, or cannot, have its say)."""

        def moved(move: tuple[str | None, str]) -> tuple[str | None, str]:
            self._noteClaim(member, move[1])
            return move

        return self._alone.join(member, room).addCallback(moved)

    def leave(self, member: IChatMember) -> Deferred[None]:
        room = self.local.roomOf(member) or self._claims.get(member, "")
        nick = member.nick
        self.local.leave(member)
        if not self._unclaim(member) or not self._up:
            return succeed(None)
        return self._release(nickKey(nick), nick, room.lower())

    def _release(self, key: str, nick: str, room: str) -> Deferred[None]:
        answer = self._ask(scripts.LEAVE, [self._sid, key, nick, room])
        # The heartbeat rewrites this server's part anyway.
        return answer.addCallbacks(lambda _: None, lambda reason: None)

    def publish(
        self, room: str, line: bytes, exclude: IChatMember | None = None
    ) -> None:
        self.local.broadcast(room, line, exclude)
        if not self._up:
            self.unshared += 1
            return
        if self._pending + len(line) > self.maxPending:
            self.dropped += 1
            self._dropReport.record()
            return
        size = len(line)
        self._pending += size
        sent = self.link.publish(
            self._channel("room:", room.lower()), self._sid + b"\n" + line
        )
        sent.addBoth(self._published, size)

    def _published(self, result: object, size: int) -> None:
        self._pending = max(0, self._pending - size)

    def _logDropped(self, count: int) -> None:
        self._log.warn(
            "chat: Redis is slow: {count} line(s) reached this server only "
            "(more than {maxPending} bytes awaited Redis); {total} in all",
            count=count,
            maxPending=self.maxPending,
            total=self.dropped,
        )

    def members(self, room: str) -> Deferred[list[str]]:
        here = [member.nick for member in self.local.members(room)]
        if not self._up:
            return succeed(here)
        answer = self._ask(scripts.MEMBERS, [room.lower()])

        def answered(nicks: list[bytes]) -> list[str]:
            # This server's own members, whatever Redis has caught up with.
            byKey = {nickKey(nick): nick for nick in here}
            for nick in nicks:
                text = _text(nick)
                byKey.setdefault(nickKey(text), text)
            return list(byKey.values())

        answer.addCallback(answered)
        answer.addErrback(lambda reason: here)
        return answer

    def roomCounts(self) -> Deferred[dict[str, int]]:
        here = self.local.roomCounts()
        if not self._up:
            return succeed(here)
        answer = self._ask(scripts.ROOMS, [])

        def answered(reply: list[Any]) -> dict[str, int]:
            counts = {
                _text(reply[i]): int(reply[i + 1]) for i in range(0, len(reply), 2)
            }
            if not any(room.lower() == LOBBY for room in counts):
                counts[LOBBY] = 0
            return counts

        answer.addCallback(answered)
        answer.addErrback(lambda reason: here)
        return answer

    def sendPrivate(self, nick: str, line: bytes) -> Deferred[str | None]:
        target = self.local.lookup(nick)
        if target is not None:
            target.send(line)
            return succeed(target.nick)
        if not self._up:
            return succeed(None)
        answer = self._ask(scripts.PRIVATE, [nickKey(nick), line])
        answer.addCallback(lambda holder: None if holder is None else _text(holder))
        answer.addErrback(lambda reason: None)
        return answer

    def nextGuestNick(self) -> str:
        """
        A guest nick from a block of numbers reserved in Redis, so servers
        do not hand out the same ones; while there is none, one marked with
        this server's id.
        """
        while True:
            if self._guestNumbers:
                nick = f"guest{self._guestNumbers.popleft()}"
            else:
                nick = f"guest-{self.serverId[:4]}-{next(self._fallbackGuests)}"
            if len(self._guestNumbers) < GUEST_BLOCK // 2:
                self._reserveGuests()
            if self.local.lookup(nick) is None:
                return nick

    def _reserveGuests(self) -> None:
        if self._reserving or not self._up:
            return
        self._reserving = True
        reserved = self.link.execute("INCRBY", self._prefix + "guests", GUEST_BLOCK)
        reserved.addTimeout(self.timeout, self.clock)

        def got(last: bytes | int) -> None:
            end = int(last)
            self._guestNumbers.extend(range(end - GUEST_BLOCK + 1, end + 1))

        def done(result: object) -> None:
            self._reserving = False

        reserved.addCallbacks(got, lambda reason: None)
        reserved.addBoth(done)

    # The heartbeat.

    def _beat(self) -> None:
        if self._up:
            self._sendHeartbeat().addErrback(lambda reason: None)

    def _sendHeartbeat(self) -> Deferred[Any]:
        """Keep this server alive in Redis, and rewrite its part from its claims."""
        rooms: dict[str, tuple[str, list[str]]] = {}
        for member, room in self._claims.items():
            rooms.setdefault(room.lower(), (room, []))[1].append(member.nick)
        args: list[object] = [self._sid, self._ttl, len(rooms)]
        for key, (name, nicks) in rooms.items():
            args += [key, name, len(nicks), *nicks]
        for member in self._claims:
            args += [nickKey(member.nick), member.nick]
        answer = self.link.eval(scripts.HEARTBEAT, [self._prefix, *args])
        answer.addTimeout(self.timeout, self.clock)
        answer.addCallbacks(self._conflicts, self._heartbeatFailed)
        return answer

    def _conflicts(self, nicks: list[bytes]) -> None:
        for raw in nicks:
            member = self.local.lookup(_text(raw))
            if member is None:
                continue
            self._log.warn(
                "chat: {nick} is held on another server too (claimed there "
                "while Redis could not be reached)",
                nick=member.nick,
            )
            member.send(
                encodeNotice(
                    f"your nick {member.nick} was taken on another server "
                    "meanwhile; choose another with /nick"
                )
            )

    def _heartbeatFailed(self, reason: Failure) -> Failure:
        self._log.warn(
            "chat: the heartbeat to Redis failed ({reason}); reconnecting",
            reason=reason.getErrorMessage() or reason.type.__name__,
        )
        self.link.reset()
        return reason
