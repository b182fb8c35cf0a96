"""
Who is on the chat server and in which room, behind L{IChatState}.

The state knows members only as L{IChatMember}s (a nick and a way to be sent
a line) and holds no transport logic, so an implementation backed by a
shared store (Redis, say) can replace L{ChatState} and let several server
processes share rooms and nicks, without touching the protocol.

Nicks and room names are ASCII (see L{twisted_services.chat.text}) and are
compared case-insensitively; a room keeps the spelling it was created with.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.logger import Logger
from zope.interface import Attribute, Interface, implementer

LOBBY = "lobby"
"""Where every client starts; it exists even when empty."""


class NickTaken(Exception):
    """Another member already has this nick (compared case-insensitively)."""


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
    The rooms and their members. Lines are sent as pre-encoded C{bytes} so
    that a message to a room is encoded once, whoever receives it.
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
            key = member.nick.lower()
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
        del self._nicks[member.nick.lower()]
        self._removeFrom(room, member)
        return room.name

    def rename(self, member: IChatMember, nick: str) -> None:
        key = nick.lower()
        holder = self._nicks.get(key)
        if holder is not None and holder is not member:
            raise NickTaken(nick)
        if member in self._roomOf:
            del self._nicks[member.nick.lower()]
            self._nicks[key] = member
        member.nick = nick

    def lookup(self, nick: str) -> IChatMember | None:
        return self._nicks.get(nick.lower())

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
