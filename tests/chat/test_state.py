"""
Tests for L{twisted_services.chat.state}: rooms, members and nicks, with
members that only record what they are sent.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from twisted_services.chat.state import (
    LOBBY,
    ChatState,
    IChatMember,
    IChatState,
    NickTaken,
)


@implementer(IChatMember)
class Member:
    """A member that records the lines it is sent."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.received: list[bytes] = []

    def send(self, line: bytes) -> None:
        self.received.append(line)


class LeavingMember(Member):
    """A member that leaves the state the first time it is sent a line."""

    def __init__(self, nick: str, state: ChatState) -> None:
        super().__init__(nick)
        self.state = state

    def send(self, line: bytes) -> None:
        super().send(line)
        self.state.leave(self)


class BrokenMember(Member):
    """A member whose C{send} raises."""

    def send(self, line: bytes) -> None:
        raise RuntimeError("broken")


def joined(state: ChatState, *nicks: str, room: str = LOBBY) -> list[Member]:
    """New members with C{nicks}, joined to C{room}."""
    members = [Member(nick) for nick in nicks]
    for member in members:
        state.join(member, room)
    return members


class InterfaceTests(SynchronousTestCase):
    """L{ChatState} provides L{IChatState}; the test member L{IChatMember}."""

    def test_interfaces(self) -> None:
        """Both objects fully provide their interfaces."""
        self.assertTrue(verifyObject(IChatState, ChatState()))
        self.assertTrue(verifyObject(IChatMember, Member("a")))


class JoinTests(SynchronousTestCase):
    """L{ChatState.join} adds members and moves them between rooms."""

    def test_newMember(self) -> None:
        """A new member is in its room, findable by nick, and joined from nowhere."""
        state = ChatState()
        alice = Member("alice")
        self.assertIsNone(state.join(alice, LOBBY))
        self.assertEqual(state.roomOf(alice), LOBBY)
        self.assertEqual(state.members(LOBBY), [alice])
        self.assertIs(state.lookup("alice"), alice)

    def test_nickTakenCaseInsensitively(self) -> None:
        """A new member cannot register a nick another has, in any case."""
        state = ChatState()
        joined(state, "alice")
        self.assertRaises(NickTaken, state.join, Member("ALICE"), "#other")
        self.assertEqual(state.members("#other"), [])

    def test_move(self) -> None:
        """Joining another room leaves the old one and returns its name."""
        state = ChatState()
        [alice, bob] = joined(state, "alice", "bob")
        self.assertEqual(state.join(alice, "#games"), LOBBY)
        self.assertEqual(state.members(LOBBY), [bob])
        self.assertEqual(state.members("#games"), [alice])
        self.assertIs(state.lookup("alice"), alice)

    def test_roomsCaseInsensitive(self) -> None:
        """A room is found in any case and keeps its first spelling."""
        state = ChatState()
        [alice, bob] = joined(state, "alice", "bob")
        state.join(alice, "#Games")
        state.join(bob, "#GAMES")
        self.assertEqual(state.roomOf(bob), "#Games")
        self.assertEqual(state.members("#games"), [alice, bob])

    def test_emptiedRoomDisappears(self) -> None:
        """The last member out of a room removes it; the lobby stays."""
        state = ChatState()
        [alice] = joined(state, "alice")
        state.join(alice, "#games")
        self.assertEqual(state.roomCounts(), {LOBBY: 0, "#games": 1})
        state.join(alice, "#chess")
        self.assertEqual(state.roomCounts(), {LOBBY: 0, "#chess": 1})

    def test_permanentRooms(self) -> None:
        """The rooms given to the constructor exist even when empty."""
        state = ChatState(permanentRooms=["hall", "#news"])
        self.assertEqual(state.roomCounts(), {"hall": 0, "#news": 0})


class LeaveTests(SynchronousTestCase):
    """L{ChatState.leave} removes a member and frees its nick."""

    def test_leave(self) -> None:
        """Leaving returns the room and frees the nick for someone else."""
        state = ChatState()
        [alice] = joined(state, "alice", room="#games")
        self.assertEqual(state.leave(alice), "#games")
        self.assertIsNone(state.lookup("alice"))
        self.assertIsNone(state.roomOf(alice))
        self.assertEqual(state.roomCounts(), {LOBBY: 0})
        joined(state, "Alice")

    def test_leaveTwice(self) -> None:
        """Leaving again is harmless and returns L{None}."""
        state = ChatState()
        [alice] = joined(state, "alice")
        state.leave(alice)
        self.assertIsNone(state.leave(alice))


class RenameTests(SynchronousTestCase):
    """L{ChatState.rename} keeps nicks unique, ignoring case."""

    def test_rename(self) -> None:
        """The new nick finds the member, the old one nothing."""
        state = ChatState()
        [guest] = joined(state, "guest1")
        state.rename(guest, "alice")
        self.assertEqual(guest.nick, "alice")
        self.assertIs(state.lookup("ALICE"), guest)
        self.assertIsNone(state.lookup("guest1"))

    def test_taken(self) -> None:
        """Another member's nick, in any case, is refused and nothing changes."""
        state = ChatState()
        [alice, guest] = joined(state, "alice", "guest2")
        self.assertRaises(NickTaken, state.rename, guest, "Alice")
        self.assertEqual(guest.nick, "guest2")
        self.assertIs(state.lookup("alice"), alice)

    def test_ownNickInAnotherCase(self) -> None:
        """A member may change the case of its own nick."""
        state = ChatState()
        [alice] = joined(state, "alice")
        state.rename(alice, "Alice")
        self.assertEqual(alice.nick, "Alice")
        self.assertIs(state.lookup("alice"), alice)


class QueryTests(SynchronousTestCase):
    """Lookups, member lists and room counts."""

    def test_lookupAnyRoom(self) -> None:
        """Nicks are found whatever room their member is in."""
        state = ChatState()
        [bob] = joined(state, "bob", room="#games")
        self.assertIs(state.lookup("BoB"), bob)
        self.assertIsNone(state.lookup("carol"))

    def test_membersOfUnknownRoom(self) -> None:
        """A room that does not exist has no members."""
        self.assertEqual(ChatState().members("#nowhere"), [])

    def test_roomCounts(self) -> None:
        """Every room with its number of members."""
        state = ChatState()
        joined(state, "a", "b")
        joined(state, "c", room="#games")
        self.assertEqual(state.roomCounts(), {LOBBY: 2, "#games": 1})


class BroadcastTests(SynchronousTestCase):
    """L{ChatState.broadcast} sends one line to a room."""

    def test_sameBytesToRoomButExcluded(self) -> None:
        """Everyone in the room but the sender gets the very same bytes."""
        state = ChatState()
        [alice, bob, carol] = joined(state, "alice", "bob", "carol")
        [dave] = joined(state, "dave", room="#games")
        line = b"<alice> hi\r\n"
        state.broadcast(LOBBY, line, exclude=alice)
        self.assertEqual(alice.received, [])
        self.assertIs(bob.received[0], line)
        self.assertIs(carol.received[0], line)
        self.assertEqual(dave.received, [])

    def test_everyone(self) -> None:
        """Without C{exclude} every member gets the line."""
        state = ChatState()
        members = joined(state, "a", "b")
        state.broadcast("LOBBY", b"x\r\n")
        self.assertEqual([m.received for m in members], [[b"x\r\n"]] * 2)

    def test_unknownRoom(self) -> None:
        """Broadcasting to a room that does not exist does nothing."""
        ChatState().broadcast("#nowhere", b"x\r\n")

    def test_memberLeavingDuringBroadcast(self) -> None:
        """A member that leaves while being sent to does not stop the rest."""
        state = ChatState()
        leaver = LeavingMember("leaver", state)
        state.join(leaver, LOBBY)
        [after] = joined(state, "after")
        state.broadcast(LOBBY, b"x\r\n")
        self.assertEqual(after.received, [b"x\r\n"])
        self.assertEqual(state.members(LOBBY), [after])

    def test_brokenMember(self) -> None:
        """A member whose C{send} raises is logged and the rest get the line."""
        state = ChatState()
        broken = BrokenMember("broken")
        state.join(broken, LOBBY)
        [after] = joined(state, "after")
        state.broadcast(LOBBY, b"x\r\n")
        self.assertEqual(after.received, [b"x\r\n"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
