"""
Tests for L{twisted_services.chat.state}: rooms, members and nicks, and the
in-process L{LocalBroker} over them, with members that only record what they
are sent.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from twisted_services.chat.state import (
    LOBBY,
    ChatState,
    IChatBroker,
    IChatMember,
    IChatState,
    LocalBroker,
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


def joined(state: IChatState, *nicks: str, room: str = LOBBY) -> list[Member]:
    """New members with C{nicks}, joined to C{room}."""
    members = [Member(nick) for nick in nicks]
    for member in members:
        state.join(member, room)
    return members


class InterfaceTests(SynchronousTestCase):
    """L{ChatState} provides L{IChatState}; the test member L{IChatMember}."""

    def test_interfaces(self) -> None:
        """Each object fully provides its interface."""
        self.assertTrue(verifyObject(IChatState, ChatState()))
        self.assertTrue(verifyObject(IChatMember, Member("a")))
        self.assertTrue(verifyObject(IChatBroker, LocalBroker()))


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


class LookAlikeTests(SynchronousTestCase):
    """Nicks that only look different are one nick to the state."""

    def test_joinTaken(self) -> None:
        """A newcomer whose nick looks like a member's is refused."""
        state = ChatState()
        state.join(Member("alice"), LOBBY)
        self.assertRaises(NickTaken, state.join, Member("aIice"), LOBBY)
        self.assertRaises(NickTaken, state.join, Member("A1ICE"), LOBBY)

    def test_renameTaken(self) -> None:
        """A rename to a look-alike of another's nick is refused."""
        state = ChatState()
        state.join(Member("b0b"), LOBBY)
        carol = Member("carol")
        state.join(carol, LOBBY)
        self.assertRaises(NickTaken, state.rename, carol, "BOB")
        self.assertEqual(carol.nick, "carol")

    def test_lookupAndLeave(self) -> None:
        """A look-alike finds the member; leaving frees the nick for it."""
        state = ChatState()
        alice = Member("alice")
        state.join(alice, LOBBY)
        self.assertIs(state.lookup("ALlCE"), alice)
        state.leave(alice)
        state.join(Member("aIice"), LOBBY)


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


class LocalBrokerTests(SynchronousTestCase):
    """
    L{LocalBroker}: the chat is its L{ChatState}, and every answer has
    already fired when the call returns.
    """

    def test_defaultState(self) -> None:
        """Without a state the broker keeps a new L{ChatState}, with the lobby."""
        broker = LocalBroker()
        self.assertIsInstance(broker.local, ChatState)
        self.assertEqual(broker.local.roomCounts(), {LOBBY: 0})

    def test_givenState(self) -> None:
        """A state given is the one the broker keeps."""
        state = ChatState()
        self.assertIs(LocalBroker(state).local, state)

    def test_enter(self) -> None:
        """Entering puts the member in the room and answers the room's name."""
        broker = LocalBroker()
        [alice] = joined(broker.local, "alice", room="#Games")
        bob = Member("bob")
        self.assertEqual(self.successResultOf(broker.enter(bob, "#GAMES")), "#Games")
        self.assertEqual(broker.local.members("#games"), [alice, bob])
        self.assertIs(broker.local.lookup("BOB"), bob)

    def test_enterTaken(self) -> None:
        """A nick someone holds, in any case, fails the entry: nothing changes."""
        broker = LocalBroker()
        joined(broker.local, "alice")
        intruder = Member("ALICE")
        self.failureResultOf(broker.enter(intruder, "#games"), NickTaken)
        self.assertIsNone(broker.local.roomOf(intruder))
        self.assertEqual(broker.local.roomCounts(), {LOBBY: 1})

    def test_rename(self) -> None:
        """Renaming answers once the nick is the member's."""
        broker = LocalBroker()
        [guest] = joined(broker.local, "guest1")
        self.assertIsNone(self.successResultOf(broker.rename(guest, "alice")))
        self.assertEqual(guest.nick, "alice")
        self.assertIs(broker.local.lookup("alice"), guest)

    def test_renameTaken(self) -> None:
        """Another member's nick fails the rename; the nick is unchanged."""
        broker = LocalBroker()
        alice, guest = joined(broker.local, "alice", "guest2")
        self.failureResultOf(broker.rename(guest, "Alice"), NickTaken)
        self.assertEqual(guest.nick, "guest2")
        self.assertIs(broker.local.lookup("alice"), alice)

    def test_join(self) -> None:
        """Joining answers the room left and the room joined, as it is spelled."""
        broker = LocalBroker()
        alice, bob = joined(broker.local, "alice", "bob")
        broker.join(alice, "#Games")
        self.assertEqual(
            self.successResultOf(broker.join(bob, "#GAMES")), (LOBBY, "#Games")
        )
        self.assertEqual(broker.local.members("#games"), [alice, bob])

    def test_leave(self) -> None:
        """Leaving frees room and nick; leaving again is harmless."""
        broker = LocalBroker()
        [alice] = joined(broker.local, "alice", room="#games")
        self.successResultOf(broker.leave(alice))
        self.successResultOf(broker.leave(alice))
        self.successResultOf(broker.leave(Member("never")))
        self.assertIsNone(broker.local.lookup("alice"))
        self.assertEqual(broker.local.roomCounts(), {LOBBY: 0})

    def test_publish(self) -> None:
        """
        A published line reaches this server's members of the room, but the
        excluded one, before C{publish} returns.
        """
        broker = LocalBroker()
        members = joined(broker.local, "alice", "bob", "carol")
        joined(broker.local, "dave", room="#games")
        broker.publish(LOBBY, b"x\r\n", exclude=members[0])
        self.assertEqual([m.received for m in members], [[], [b"x\r\n"], [b"x\r\n"]])

    def test_members(self) -> None:
        """A room's members are answered as nicks; an unknown room has none."""
        broker = LocalBroker()
        joined(broker.local, "alice", "Bob")
        joined(broker.local, "carol", room="#games")
        self.assertEqual(
            self.successResultOf(broker.members("LOBBY")), ["alice", "Bob"]
        )
        self.assertEqual(self.successResultOf(broker.members("#nowhere")), [])

    def test_roomCounts(self) -> None:
        """Every room with how many are in it."""
        broker = LocalBroker()
        joined(broker.local, "a", "b")
        joined(broker.local, "c", room="#games")
        self.assertEqual(
            self.successResultOf(broker.roomCounts()), {LOBBY: 2, "#games": 1}
        )

    def test_sendPrivate(self) -> None:
        """A private line reaches its nick's holder, whose spelling is answered."""
        broker = LocalBroker()
        alice, bob = joined(broker.local, "alice", "Bob")
        self.assertEqual(
            self.successResultOf(broker.sendPrivate("BOB", b"x\r\n")), "Bob"
        )
        self.assertEqual(bob.received, [b"x\r\n"])
        self.assertEqual(alice.received, [])

    def test_sendPrivateNoSuchNick(self) -> None:
        """A nick no one holds answers L{None} and sends nothing."""
        broker = LocalBroker()
        [alice] = joined(broker.local, "alice")
        self.assertIsNone(self.successResultOf(broker.sendPrivate("bob", b"x\r\n")))
        self.assertEqual(alice.received, [])
