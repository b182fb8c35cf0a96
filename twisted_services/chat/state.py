"""
Who is on the chat and in which room, in two layers:

  - L{IChatState}, L{ChatState}: this server's own members and rooms,
    synchronous and fast, since every line said in a room is fanned out
    through it (L{ChatState.broadcast}).
  - L{IChatBroker}: the chat as a whole, which may span several server
    processes sharing a store (Redis, say: rooms with members on every
    server, pub/sub delivery, nicks claimed atomically and with expiry).
    Whatever may have to ask such a store returns a L{Deferred}, so that
    the reactor never blocks on it, as Twisted's own
    C{twisted.words.iwords.IChatService} does. L{LocalBroker} is the one
    for a single process: its L{Deferred}s have already fired, and
    callbacks added to a fired L{Deferred} run at once, so the protocol
    then behaves, and answers in the same order, as with synchronous calls.

Both know members only as L{IChatMember}s (a nick and a way to be sent a
line) and hold no transport logic. Nicks and room names are ASCII (see
L{twisted_services.chat.text}); nicks are compared by their
L{nickKey} (ignoring case and the look-alikes I, l, 1 and O, 0), room names
case-insensitively; a room keeps the spelling it was created with.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from zope.interface import Attribute, Interface, implementer

from twisted_services.chat.text import nickKey

LOBBY = "lobby"
"""Where every client starts; it exists even when empty."""


class NickTaken(Exception):
    """Another member already has this nick, or one that looks the same."""


class IChatMember(Interface):
    """One client on the chat, as the state sees it."""

    nick = Attribute("The member's nick, as the member spelled it (C{str}).")

    def send(line: bytes) -> None:
        """
        Deliver one line, already encoded and with its line ending. The
        member decides what to do with a line it cannot deliver; this must
        not raise.
        """


class IChatState(Interface):
    """
    This server's members and the rooms they are in, synchronously. Lines
    are sent as pre-encoded C{bytes} so that a message to a room is encoded
    once, whoever receives it.

    The protocol reads it (a member's room) but changes it only through its
    L{IChatBroker}, which keeps it in step with the rest of the chat.
    """

    def join(member: IChatMember, room: str) -> str | None:
        """
        Put C{member} in C{room}, creating the room if there is none by that
        name. A member new to the state is registered under its nick; a
        member already in a room leaves it (and an emptied room other than
        L{LOBBY} disappears).

        @return: the name of the room C{member} left, or L{None} if it was
            new.
        @raise NickTaken: if a new member's nick belongs to another member.
        """

    def leave(member: IChatMember) -> str | None:
        """
        Remove C{member} from its room and free its nick.

        @return: the name of the room it left, or L{None} if it was not in
            the state (it already left).
        """

    def rename(member: IChatMember, nick: str) -> None:
        """
        Give C{member} the nick C{nick} (setting C{member.nick}). A member
        may change the case of its own nick.

        @raise NickTaken: if another member has C{nick}.
        """

    def lookup(nick: str) -> IChatMember | None:
        """The member whose nick is C{nick}, in any room, ignoring case."""

    def roomOf(member: IChatMember) -> str | None:
        """The name of C{member}'s room, or L{None} if it is not in one."""

    def members(room: str) -> list[IChatMember]:
        """The members of C{room} (none if there is no such room)."""

    def roomCounts() -> dict[str, int]:
        """Every room's name and how many members it has."""

    def broadcast(room: str, line: bytes, exclude: IChatMember | None = None) -> None:
        """
        Send the same C{line} to every member of C{room} but C{exclude}
        (usually the sender). A member leaving during the broadcast, for
        example because sending to it disconnected it, is safe.
        """


class _Room:
    """A room's display name and its members, in order of arrival."""

    __slots__ = ("members", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        # A dict, not a set: ordered, and as cheap to add to and remove from.
        self.members: dict[IChatMember, None] = {}


@implementer(IChatState)
class ChatState:
    """
    L{IChatState} in this process's memory.

    @param permanentRooms: rooms that exist even when empty.
    """

    _log = Logger()

    def __init__(self, permanentRooms: Iterable[str] = (LOBBY,)) -> None:
        self._permanent = {name.lower() for name in permanentRooms}
        self._rooms: dict[str, _Room] = {
            name.lower(): _Room(name) for name in permanentRooms
        }
        self._nicks: dict[str, IChatMember] = {}
        self._roomOf: dict[IChatMember, _Room] = {}

    def join(self, member: IChatMember, room: str) -> str | None:
        previous = self._roomOf.get(member)
        if previous is None:
            key = nickKey(member.nick)
            if key in self._nicks:
                raise NickTaken(member.nick)
            self._nicks[key] = member
        else:
            self._removeFrom(previous, member)
        target = self._rooms.get(room.lower())
        if target is None:
            target = self._rooms[room.lower()] = _Room(room)
        target.members[member] = None
        self._roomOf[member] = target
        return None if previous is None else previous.name

    def leave(self, member: IChatMember) -> str | None:
        room = self._roomOf.pop(member, None)
        if room is None:
            return None
        del self._nicks[nickKey(member.nick)]
        self._removeFrom(room, member)
        return room.name

    def rename(self, member: IChatMember, nick: str) -> None:
        key = nickKey(nick)
        holder = self._nicks.get(key)
        if holder is not None and holder is not member:
            raise NickTaken(nick)
        if member in self._roomOf:
            del self._nicks[nickKey(member.nick)]
            self._nicks[key] = member
        member.nick = nick

    def lookup(self, nick: str) -> IChatMember | None:
        return self._nicks.get(nickKey(nick))

    def roomOf(self, member: IChatMember) -> str | None:
        room = self._roomOf.get(member)
        return None if room is None else room.name

    def members(self, room: str) -> list[IChatMember]:
        target = self._rooms.get(room.lower())
        return [] if target is None else list(target.members)

    def roomCounts(self) -> dict[str, int]:
        return {room.name: len(room.members) for room in self._rooms.values()}

    def broadcast(
        self, room: str, line: bytes, exclude: IChatMember | None = None
    ) -> None:
        target = self._rooms.get(room.lower())
        if target is None:
            return
        # A snapshot: sending can disconnect a slow member, which leaves.
        for member in tuple(target.members):
            if member is not exclude:
                try:
                    member.send(line)
                except Exception:
                    # One broken member must not cost the rest the line.
                    self._log.failure(
                        "chat: sending to {nick} failed", nick=member.nick
                    )

    def _removeFrom(self, room: _Room, member: IChatMember) -> None:
        del room.members[member]
        key = room.name.lower()
        if not room.members and key not in self._permanent:
            del self._rooms[key]


class IChatBroker(Interface):
    """
    The chat as a whole: who holds which nick and who is in which room, on
    this server and on any other sharing the chat, and delivery to them.

    Members are this server's L{IChatMember}s; members on other servers
    are known here only by their nicks. Every method that may have to ask
    a shared store returns a L{Deferred}, which fails with L{NickTaken} where
    that is said, and with anything else only if the store cannot be
    reached. Such a broker should give up on a store that does not answer:
    a client's lines wait for the answer to the one before.

    A member's nick and room are claimed in the shared store by L{enter},
    L{rename} and L{join}, and given up by L{leave}; claims of a server that
    dies should expire, and a live one keep them fresh. Other servers'
    lines reach this server's members through L{local}.
    """

    local = Attribute(
        "This server's members and rooms (an L{IChatState}), kept in step "
        "by the broker: a member is in it once L{enter} has fired, in its new "
        "room once L{join} has, and out of it as soon as L{leave} is called."
    )

    def enter(member: IChatMember, room: str) -> Deferred[str]:
        """
        Claim C{member.nick} for C{member}, new to the chat, and put it in
        C{room}, created if there is none by that name: one step, so that no
        one is ever seen holding a nick but in no room.

        @return: a L{Deferred} firing with the room's name as it is spelled
            (by whoever created it), or failing with L{NickTaken} if anyone
            on any server holds the nick.
        """

    def rename(member: IChatMember, nick: str) -> Deferred[None]:
        """
        Claim C{nick} for C{member} in place of its nick, and set
        C{member.nick}. A member may change the case of its own nick.

        @return: a L{Deferred} firing once the nick is C{member}'s, or
            failing with L{NickTaken}, and nothing changed, if another
            member holds it.
        """

    def join(member: IChatMember, room: str) -> Deferred[tuple[str | None, str]]:
        """
        Move C{member} to C{room}, created if there is none by that name; a
        room other than the lobby that this leaves empty disappears.

        @return: a L{Deferred} firing with the name of the room left (or
            L{None}) and the name of the room joined, as it is spelled.
        """

    def leave(member: IChatMember) -> Deferred[None]:
        """
        Take C{member} out of its room and give up its nick, whatever it
        holds: harmless for a member that holds nothing (any more), so that
        it can be called again for a member whose claim was answered after
        its connection was lost. C{member} is sent nothing more.
        """

    def publish(room: str, line: bytes, exclude: IChatMember | None = None) -> None:
        """
        Send C{line} to every member of C{room}, on every server, but
        C{exclude}. This server's members have it before this returns (in
        the order lines are published); for the others nothing is waited
        for, and a failure to reach them is the broker's to log.
        """

    def members(room: str) -> Deferred[list[str]]:
        """The nicks of C{room}'s members on every server (none if no such room)."""

    def roomCounts() -> Deferred[dict[str, int]]:
        """Every room's name and how many members it has on all servers."""

    def sendPrivate(nick: str, line: bytes) -> Deferred[str | None]:
        """
        Send C{line} to the member whose nick is C{nick} (ignoring case),
        on whichever server.

        @return: a L{Deferred} firing with that member's nick as it spells
            it, or with L{None} if no one has the nick.
        """

    def nextGuestNick() -> str:
        """
        A nick for a newcomer that no one on this server is using, and that
        other servers are unlikely to hand out too (L{enter} has the last
        word).
        """


@implementer(IChatBroker)
class LocalBroker:
    """
    L{IChatBroker} for a chat that is one process: its L{ChatState} is the
    whole chat, so every answer is ready at once, as an already-fired
    L{Deferred}, and the protocol's callbacks run before the call returns.

    @param local: the state to keep; a new L{ChatState} if not given.
    """

    def __init__(self, local: IChatState | None = None) -> None:
        self.local: IChatState = local if local is not None else ChatState()
        self._guests = itertools.count(1)

    def enter(self, member: IChatMember, room: str) -> Deferred[str]:
        try:
            self.local.join(member, room)
        except NickTaken as taken:
            return fail(taken)
        return succeed(self.local.roomOf(member) or room)

    def rename(self, member: IChatMember, nick: str) -> Deferred[None]:
        try:
            self.local.rename(member, nick)
        except NickTaken as taken:
            return fail(taken)
        return succeed(None)

    def join(self, member: IChatMember, room: str) -> Deferred[tuple[str | None, str]]:
        try:
            left = self.local.join(member, room)
        except NickTaken as taken:
            # Only a member that already left the chat can get here.
            return fail(taken)
        return succeed((left, self.local.roomOf(member) or room))

    def leave(self, member: IChatMember) -> Deferred[None]:
        self.local.leave(member)
        return succeed(None)

    def publish(
        self, room: str, line: bytes, exclude: IChatMember | None = None
    ) -> None:
        self.local.broadcast(room, line, exclude)

    def members(self, room: str) -> Deferred[list[str]]:
        return succeed([member.nick for member in self.local.members(room)])

    def roomCounts(self) -> Deferred[dict[str, int]]:
        return succeed(self.local.roomCounts())

    def sendPrivate(self, nick: str, line: bytes) -> Deferred[str | None]:
        target = self.local.lookup(nick)
        if target is None:
            return succeed(None)
        target.send(line)
        return succeed(target.nick)

    def nextGuestNick(self) -> str:
        """
        The next of C{guest1}, C{guest2}, ... that no one is using (a client
        may have taken one with C{/nick}).
        """
        while True:
            nick = f"guest{next(self._guests)}"
            if self.local.lookup(nick) is None:
                return nick
