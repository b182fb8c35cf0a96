"""
Tests for L{twisted_services.chat.protocol}: several clients joined to one
L{ChatFactory} on fake transports, with a L{Clock} for time, and with a
broker that answers only when told, as a shared store would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, TypeVar

from hypothesis import given, settings, strategies
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.logger import LogEvent, LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.chat.test_text import isSafe
from twisted_services.chat.member import ChatMember
from twisted_services.chat.protocol import (
    CLOSE_GRACE,
    HINT_DELAY,
    ChatFactory,
    ChatProtocol,
    Refused,
)
from twisted_services.chat.state import (
    ChatState,
    IChatBroker,
    IChatMember,
    LocalBroker,
    NickTaken,
)
from twisted_services.server.connections import REFUSAL_LOG_INTERVAL
from twisted_services.testing import connect, peerAddress


class LingeringTransport(StringTransportWithDisconnection):
    """
    A transport whose client never takes its last lines: closing gracefully
    does not end the connection, only aborting does.
    """

    def loseConnection(self) -> None:
        self.disconnecting = True

    def abortConnection(self) -> None:
        self.disconnected = True
        StringTransportWithDisconnection.loseConnection(self)


class LateLossTransport(StringTransportWithDisconnection):
    """
    A transport that, like a reactor's, reports an abort's connection loss
    later rather than from inside C{abortConnection}.
    """

    def abortConnection(self) -> None:
        self.disconnected = True


_T = TypeVar("_T")


@implementer(IChatBroker)
class LaterBroker:
    """
    A broker as a shared store would be, at its slowest: no call is acted on
    until the test answers it (L{answerNext}, L{answerAll}), in the order
    the calls were made. It acts on a L{LocalBroker}; nicks in C{elsewhere}
    are held on other servers. L{leave} and L{publish} act at once, as the
    interface says they do on this server.
    """

    def __init__(self) -> None:
        self._inner = LocalBroker()
        self.local = self._inner.local
        self.elsewhere: set[str] = set()
        self._calls: list[tuple[Callable[[], Deferred[Any]], Deferred[Any]]] = []

    @property
    def waiting(self) -> int:
        """How many calls are not answered yet."""
        return len(self._calls)

    def answerNext(self, failure: BaseException | None = None) -> None:
        """
        Act on the oldest call and answer it; or, given C{failure}, fail it
        without acting, as a store that cannot be reached would.
        """
        act, answer = self._calls.pop(0)
        if failure is None:
            act().chainDeferred(answer)
        else:
            answer.errback(failure)

    def answerAll(self) -> None:
        """Answer every call, including those the answers lead to."""
        while self._calls:
            self.answerNext()

    def _later(self, act: Callable[[], Deferred[_T]]) -> Deferred[_T]:
        answer: Deferred[_T] = Deferred()
        self._calls.append((act, answer))
        return answer

    def _claiming(self, nick: str, act: Callable[[], Deferred[_T]]) -> Deferred[_T]:
        def claim() -> Deferred[_T]:
            if nick.lower() in self.elsewhere:
                return fail(NickTaken(nick))
            return act()

        return self._later(claim)

    def enter(self, member: IChatMember, room: str) -> Deferred[str]:
        return self._claiming(member.nick, lambda: self._inner.enter(member, room))

    def rename(self, member: IChatMember, nick: str) -> Deferred[None]:
        return self._claiming(nick, lambda: self._inner.rename(member, nick))

    def join(self, member: IChatMember, room: str) -> Deferred[tuple[str | None, str]]:
        return self._later(lambda: self._inner.join(member, room))

    def leave(self, member: IChatMember) -> Deferred[None]:
        return self._inner.leave(member)

    def publish(
        self, room: str, line: bytes, exclude: IChatMember | None = None
    ) -> None:
        self._inner.publish(room, line, exclude)

    def members(self, room: str) -> Deferred[list[str]]:
        return self._later(lambda: self._inner.members(room))

    def nextGuestNick(self) -> str:
        return self._inner.nextGuestNick()

    def roomCounts(self) -> Deferred[dict[str, int]]:
        return self._later(self._inner.roomCounts)

    def sendPrivate(self, nick: str, line: bytes) -> Deferred[str | None]:
        return self._later(lambda: self._inner.sendPrivate(nick, line))


class Client:
    """
    One chat client on a fake transport: L{send} lines, read the L{lines}
    it has been sent since last asked.
    """

    def __init__(
        self,
        factory: ChatFactory,
        transport: StringTransportWithDisconnection | None = None,
    ) -> None:
        protocol, transport = connect(factory, transport=transport)
        self.protocol = protocol
        self.transport = transport

    def send(self, *lines: str | bytes) -> None:
        """Send each of C{lines} with an LF, one C{dataReceived} each."""
        for line in lines:
            data = line.encode() if isinstance(line, str) else line
            self.protocol.dataReceived(data + b"\n")

    def lines(self) -> list[str]:
        """The lines received since the last call, without their CRLF."""
        data = self.transport.value()
        self.transport.clear()
        if not data:
            return []
        assert data.endswith(b"\r\n"), data
        return data.decode("utf-8").split("\r\n")[:-1]

    @property
    def connected(self) -> bool:
        return bool(self.transport.connected)

    @property
    def member(self) -> ChatMember:
        return self.protocol.member


def chatFactory(**kwargs: object) -> tuple[ChatFactory, Clock]:
    """A L{ChatFactory} with C{kwargs} on a fresh L{Clock}, and that clock."""
    clock = Clock()
    return ChatFactory(clock, **kwargs), clock  # type: ignore[arg-type]


def clients(factory: ChatFactory, *nicks: str) -> list[Client]:
    """
    A connected client per nick, named with C{/nick} unless the nick is the
    guest name it got, with everything they were sent so far read.
    """
    connected = [Client(factory) for _ in nicks]
    for client, nick in zip(connected, nicks, strict=True):
        if client.member.nick != nick:
            client.send(f"/nick {nick}")
    drain(*connected)
    return connected


def drain(*readers: Client) -> None:
    """Read and forget what each of C{readers} was sent so far."""
    for reader in readers:
        reader.lines()


def guests(factory: ChatFactory, howMany: int) -> list[Client]:
    """
    C{howMany} connected clients under their guest nicks, with everything
    they were sent so far read: unlike L{clients}, no line spent on C{/nick}.
    """
    connected = [Client(factory) for _ in range(howMany)]
    for client in connected:
        client.lines()
    return connected


def laterChat(
    *nicks: str, **kwargs: object
) -> tuple[ChatFactory, LaterBroker, list[Client]]:
    """
    A factory with C{kwargs} on a L{LaterBroker}, with a client per nick,
    entered and named (every call answered), and everything they were sent
    so far read.
    """
    broker = LaterBroker()
    factory, _ = chatFactory(broker=broker, **kwargs)
    connected = []
    for nick in nicks:
        client = Client(factory)
        broker.answerAll()
        if client.member.nick != nick:
            client.send(f"/nick {nick}")
            broker.answerAll()
        connected.append(client)
    drain(*connected)
    return factory, broker, connected


def messages(events: Sequence[LogEvent]) -> list[str]:
    """The formatted text of captured log events."""
    return [formatEvent(event) for event in events]


class ConnectTests(SynchronousTestCase):
    """What a newcomer and the lobby see when a client connects."""

    def test_welcome(self) -> None:
        """The newcomer is told its guest nick, its room and about /help."""
        factory, _ = chatFactory()
        self.assertEqual(
            Client(factory).lines(),
            ["*** welcome, you are guest1 in lobby; type /help for commands"],
        )

    def test_lobbySeesJoin(self) -> None:
        """The lobby is told of the newcomer, who is not told of itself."""
        factory, _ = chatFactory()
        [first] = clients(factory, "guest1")
        second = Client(factory)
        self.assertEqual(first.lines(), ["*** guest2 has joined"])
        self.assertEqual(
            second.lines(),
            ["*** welcome, you are guest2 in lobby; type /help for commands"],
        )

    def test_guestsNumberedPerFactory(self) -> None:
        """Each server process (factory) numbers its guests from 1."""
        first, _ = chatFactory()
        second, _ = chatFactory()
        Client(first)
        self.assertEqual(Client(first).member.nick, "guest2")
        self.assertEqual(Client(second).member.nick, "guest1")

    def test_guestNickSkipsTakenNick(self) -> None:
        """A guest number someone took with /nick is skipped."""
        factory, _ = chatFactory()
        clients(factory, "guest2")
        self.assertEqual(Client(factory).member.nick, "guest3")

    def test_memberIsStreamingProducer(self) -> None:
        """Each member is its own transport's streaming producer."""
        factory, _ = chatFactory()
        client = Client(factory)
        self.assertIs(client.transport.producer, client.member)
        self.assertTrue(client.transport.streaming)
        self.assertTrue(verifyObject(IPushProducer, client.member))
        self.assertTrue(verifyObject(IChatMember, client.member))

    def test_connectLogged(self) -> None:
        """A connection is logged with the peer and the guest nick."""
        factory, _ = chatFactory()
        with capturedLogs() as events:
            connect(factory, IPv4Address("TCP", "127.0.2.5", 4000))
        self.assertIn(
            "chat: tcp:127.0.2.5:4000 connected as guest1, in lobby", messages(events)
        )


class MessageTests(SynchronousTestCase):
    """Plain lines go to the rest of the sender's room."""

    def test_deliveredToOthers(self) -> None:
        """The others in the room see C{<nick> text}; the sender sees nothing."""
        factory, _ = chatFactory()
        alice, bob, carol = clients(factory, "alice", "bob", "carol")
        alice.send("hello")
        self.assertEqual(alice.lines(), [])
        self.assertEqual(bob.lines(), ["<alice> hello"])
        self.assertEqual(carol.lines(), ["<alice> hello"])

    def test_otherRoomsDoNotSee(self) -> None:
        """A line stays in its room."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        bob.send("/join #games")
        bob.lines()
        alice.send("hello")
        self.assertEqual(bob.lines(), [])

    def test_sameBytesToEveryone(self) -> None:
        """A line is encoded once: every recipient is written the same bytes."""
        factory, _ = chatFactory()
        alice, *others = clients(factory, "alice", "b", "c", "d")
        written: list[bytes] = []
        for other in others:
            other.transport.write = written.append  # type: ignore[method-assign]
        alice.send("hi")
        self.assertEqual(len(written), 3)
        self.assertTrue(all(data is written[0] for data in written))

    def test_doubleSlash(self) -> None:
        """A line starting with C{//} sends a line starting with C{/}."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("//etc/passwd", "//")
        self.assertEqual(bob.lines(), ["<alice> /etc/passwd", "<alice> /"])

    def test_emptyLinesIgnored(self) -> None:
        """Empty and blank lines are not delivered and get no reply."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("", "\r", "   ", "\x1b[0m")
        self.assertEqual(alice.lines(), [])
        self.assertEqual(bob.lines(), [])

    def test_crlf(self) -> None:
        """A CRLF line ending is accepted and the CR is not delivered."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.protocol.dataReceived(b"hello\r\nworld\r\n")
        self.assertEqual(bob.lines(), ["<alice> hello", "<alice> world"])

    def test_linesAcrossChunks(self) -> None:
        """Lines split across reads arrive whole, several per read too."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        for chunk in [b"he", b"llo\r", b"\nwor", b"ld\none\ntwo\n"]:
            alice.protocol.dataReceived(chunk)
        self.assertEqual(
            bob.lines(),
            ["<alice> hello", "<alice> world", "<alice> one", "<alice> two"],
        )


class NickTests(SynchronousTestCase):
    """C{/nick NAME}."""

    def test_nick(self) -> None:
        """The actor is told its new nick; its room sees the change."""
        factory, _ = chatFactory()
        guest, bob, elsewhere = clients(factory, "guest1", "bob", "carol")
        elsewhere.send("/join #games")
        drain(guest, bob, elsewhere)
        guest.send("/nick alice")
        self.assertEqual(guest.lines(), ["*** you are now known as alice"])
        self.assertEqual(bob.lines(), ["*** guest1 is now known as alice"])
        self.assertEqual(elsewhere.lines(), [])
        self.assertEqual(guest.member.nick, "alice")

    def test_takenCaseInsensitively(self) -> None:
        """A nick someone has, in any case, is refused."""
        factory, _ = chatFactory()
        alice, guest = clients(factory, "alice", "guest2")
        guest.send("/nick ALICE")
        self.assertEqual(guest.lines(), ["! nick ALICE is taken"])
        self.assertEqual(alice.lines(), [])
        self.assertEqual(guest.member.nick, "guest2")

    def test_takenLookAlike(self) -> None:
        """
        A nick that only looks like someone's (capital i for l, zero for O)
        is refused; a private message to it reaches the holder.
        """
        factory, _ = chatFactory()
        alice, bob, guest = clients(factory, "alice", "bob", "guest3")
        guest.send("/nick aIice", "/nick B0B", "/nick a1ice")
        self.assertEqual(
            guest.lines(),
            ["! nick aIice is taken", "! nick B0B is taken", "! nick a1ice is taken"],
        )
        self.assertEqual(guest.member.nick, "guest3")
        bob.send("/msg aIice hi")
        self.assertEqual(alice.lines(), ["*bob* hi"])

    def test_ownNickNewCase(self) -> None:
        """A member may change the case of its own nick."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/nick Alice")
        self.assertEqual(alice.lines(), ["*** you are now known as Alice"])
        self.assertEqual(bob.lines(), ["*** alice is now known as Alice"])

    def test_sameNick(self) -> None:
        """Taking the nick one has is confirmed and not announced."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/nick alice")
        self.assertEqual(alice.lines(), ["*** you are now known as alice"])
        self.assertEqual(bob.lines(), [])

    def test_usage(self) -> None:
        """No nick, or more than one word, is a usage error."""
        factory, _ = chatFactory()
        [guest] = clients(factory, "guest1")
        guest.send("/nick", "/nick a b", "/nick   ")
        self.assertEqual(guest.lines(), ["! usage: /nick NAME"] * 3)
        self.assertEqual(guest.member.nick, "guest1")

    def test_invalid(self) -> None:
        """Non-ASCII, punctuation or over 32 characters are refused."""
        factory, _ = chatFactory()
        [guest] = clients(factory, "guest1")
        guest.send("/nick zoë", "/nick a.b", "/nick #x", "/nick " + "a" * 33)
        self.assertEqual(
            guest.lines(), ["! invalid nick: 1-32 letters, digits, _ or -"] * 4
        )
        guest.send("/nick " + "a" * 32)
        self.assertEqual(guest.lines(), ["*** you are now known as " + "a" * 32])

    def test_nickLogged(self) -> None:
        """A nick change is logged with the old and new nick."""
        factory, _ = chatFactory()
        [guest] = clients(factory, "guest1")
        with capturedLogs() as events:
            guest.send("/nick alice")
        [line] = messages(events)
        self.assertTrue(line.startswith("chat: guest1 (tcp:127.0.0.1:"), line)
        self.assertTrue(line.endswith(") is now known as alice"), line)


class MeTests(SynchronousTestCase):
    """C{/me ACTION}."""

    def test_me(self) -> None:
        """Room and actor alike see C{* nick ACTION}."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/me waves at everyone")
        self.assertEqual(alice.lines(), ["* alice waves at everyone"])
        self.assertEqual(bob.lines(), ["* alice waves at everyone"])

    def test_usage(self) -> None:
        """C{/me} with no action is a usage error and tells no one."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/me", "/me  ")
        self.assertEqual(alice.lines(), ["! usage: /me ACTION"] * 2)
        self.assertEqual(bob.lines(), [])


class WhoTests(SynchronousTestCase):
    """C{/who}."""

    def test_who(self) -> None:
        """The room's members, sorted ignoring case, and only the room's."""
        factory, _ = chatFactory()
        carol, _, _, dave = clients(factory, "carol", "Bob", "alice", "dave")
        dave.send("/join #games")
        carol.lines()
        carol.send("/who")
        self.assertEqual(carol.lines(), ["*** in lobby: alice, Bob, carol"])
        dave.lines()
        dave.send("/who")
        self.assertEqual(dave.lines(), ["*** in #games: dave"])

    def test_usage(self) -> None:
        """C{/who} takes no argument."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/who lobby")
        self.assertEqual(alice.lines(), ["! usage: /who"])


class JoinTests(SynchronousTestCase):
    """C{/join ROOM}."""

    def test_join(self) -> None:
        """The actor, the room it left and the room it joined are each told."""
        factory, _ = chatFactory()
        alice, bob, carol = clients(factory, "alice", "bob", "carol")
        carol.send("/join #games")
        drain(alice, bob, carol)
        alice.send("/join #games")
        self.assertEqual(alice.lines(), ["*** you joined #games"])
        self.assertEqual(bob.lines(), ["*** alice has left (joined #games)"])
        self.assertEqual(carol.lines(), ["*** alice has joined"])

    def test_messagesFollowMember(self) -> None:
        """After joining, the member talks with the new room, not the old."""
        factory, _ = chatFactory()
        alice, bob, carol = clients(factory, "alice", "bob", "carol")
        alice.send("/join #games")
        carol.send("/join #games")
        for client in (alice, bob, carol):
            client.lines()
        alice.send("gg")
        self.assertEqual(bob.lines(), [])
        self.assertEqual(carol.lines(), ["<alice> gg"])

    def test_alreadyThere(self) -> None:
        """Joining one's own room, in any case, is an error."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/join lobby", "/join #games")
        alice.lines()
        alice.send("/join #GAMES")
        self.assertEqual(alice.lines(), ["! you are already in #games"])

    def test_existingRoomKeepsItsName(self) -> None:
        """Joining a room in another case joins it under its own name."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/join #Games")
        bob.lines()
        bob.send("/join #GAMES")
        self.assertEqual(bob.lines(), ["*** you joined #Games"])

    def test_usage(self) -> None:
        """No room, or more than one word, is a usage error."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/join", "/join a b")
        self.assertEqual(alice.lines(), ["! usage: /join ROOM"] * 2)

    def test_invalid(self) -> None:
        """Bad characters or over 32 characters are refused."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/join a.b", "/join #jeux-vidéo", "/join " + "r" * 33)
        self.assertEqual(
            alice.lines(),
            ["! invalid room name: 1-32 letters, digits, _, - or #"] * 3,
        )
        self.assertEqual(factory.state.roomOf(alice.member), "lobby")

    def test_emptiedRoomDisappears(self) -> None:
        """A room goes when its last member leaves; the lobby stays."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/join #games", "/join #chess", "/rooms")
        self.assertEqual(alice.lines()[-1], "*** rooms: #chess (1), lobby (0)")

    def test_joinLogged(self) -> None:
        """Moving between rooms is logged."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        with capturedLogs() as events:
            alice.send("/join #games")
        [line] = messages(events)
        self.assertTrue(line.endswith("moved from lobby to #games"), line)


class RoomsTests(SynchronousTestCase):
    """C{/rooms}."""

    def test_rooms(self) -> None:
        """Every room, sorted, with its number of members."""
        factory, _ = chatFactory()
        alice, _, _ = clients(factory, "alice", "bob", "carol")
        alice.send("/join #games")
        alice.lines()
        alice.send("/rooms")
        self.assertEqual(alice.lines(), ["*** rooms: #games (1), lobby (2)"])

    def test_usage(self) -> None:
        """C{/rooms} takes no argument."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/rooms all")
        self.assertEqual(alice.lines(), ["! usage: /rooms"])


class MsgTests(SynchronousTestCase):
    """C{/msg NICK TEXT}."""

    def test_acrossRooms(self) -> None:
        """The target, in any room, and no one else gets the private line."""
        factory, _ = chatFactory()
        alice, bob, carol = clients(factory, "alice", "bob", "carol")
        bob.send("/join #games")
        drain(alice, bob, carol)
        alice.send("/msg bob meet me in #games")
        self.assertEqual(bob.lines(), ["*alice* meet me in #games"])
        self.assertEqual(alice.lines(), ["-> *bob* meet me in #games"])
        self.assertEqual(carol.lines(), [])

    def test_nickIgnoresCase(self) -> None:
        """The nick is found in any case; the sender sees its real spelling."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "Bob")
        alice.send("/msg BOB  hi  there")
        self.assertEqual(alice.lines(), ["-> *Bob* hi  there"])
        self.assertEqual(bob.lines(), ["*alice* hi  there"])

    def test_noSuchNick(self) -> None:
        """An unknown nick, or something that cannot be a nick, is an error."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/msg nobody hi", "/msg n.b. hi")
        self.assertEqual(alice.lines(), ["! no such nick"] * 2)

    def test_usage(self) -> None:
        """Without both a nick and text C{/msg} is a usage error."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/msg", "/msg bob", "/msg bob   ")
        self.assertEqual(alice.lines(), ["! usage: /msg NICK TEXT"] * 3)
        self.assertEqual(bob.lines(), [])


class QuitTests(SynchronousTestCase):
    """C{/quit [REASON]} and connections that drop."""

    def test_quit(self) -> None:
        """The room sees C{(quit)}, the actor C{* bye}, and the connection closes."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/quit")
        self.assertEqual(bob.lines(), ["*** alice has left (quit)"])
        self.assertEqual(alice.lines(), ["*** bye"])
        self.assertFalse(alice.connected)

    def test_reason(self) -> None:
        """The reason, if any, is shown to the room."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/quit  gone fishing ")
        self.assertEqual(bob.lines(), ["*** alice has left (gone fishing)"])

    def test_nothingAfterQuit(self) -> None:
        """Lines after C{/quit} in the same read are not acted on."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.protocol.dataReceived(b"/quit\nstill here?\n/nick ghost\n")
        self.assertEqual(bob.lines(), ["*** alice has left (quit)"])

    def test_connectionLost(self) -> None:
        """A dropped connection is announced like C{/quit}, once."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.transport.loseConnection()
        self.assertEqual(bob.lines(), ["*** alice has left (connection lost)"])

    def test_nickFreed(self) -> None:
        """A departed member's nick is free and no longer reachable."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/quit")
        bob.lines()
        bob.send("/msg alice hi", "/nick alice")
        self.assertEqual(
            bob.lines(), ["! no such nick", "*** you are now known as alice"]
        )

    def test_quitLeavesNoTimers(self) -> None:
        """A closed connection leaves nothing scheduled."""
        factory, clock = chatFactory(idleTimeout=30)
        [alice] = clients(factory, "alice")
        alice.send("/quit")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_disconnectLogged(self) -> None:
        """Quitting and disconnecting are logged, with the reason."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        with capturedLogs() as events:
            alice.send("/quit tired")
        text = messages(events)
        self.assertTrue(text[0].endswith("quit lobby (tired)"), text)
        self.assertTrue(
            text[1].startswith("chat: alice (tcp:127.0.0.1:")
            and "disconnected (" in text[1],
            text,
        )


class CloseGraceTests(SynchronousTestCase):
    """A client that does not take its last lines is aborted after a grace."""

    def test_quitThenAbort(self) -> None:
        """After C{/quit} the connection closes gracefully, else is aborted."""
        factory, clock = chatFactory()
        alice = Client(factory, LingeringTransport())
        alice.send("/quit")
        self.assertTrue(alice.transport.disconnecting)
        self.assertIsNone(alice.transport.producer)
        self.assertTrue(alice.connected)
        clock.advance(CLOSE_GRACE)
        self.assertTrue(alice.transport.disconnected)
        self.assertFalse(alice.connected)
        self.assertEqual(factory.connections.limit.open, 0)


class HelpTests(SynchronousTestCase):
    """C{/help} and unknown commands."""

    def test_help(self) -> None:
        """Several C{* } lines name every command and the C{//} rule."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/help")
        lines = alice.lines()
        self.assertGreater(len(lines), 5)
        self.assertTrue(all(line.startswith("*** ") for line in lines), lines)
        text = "\n".join(lines)
        for command in ["nick", "me", "who", "join", "rooms", "msg", "quit", "help"]:
            self.assertIn(f"/{command} ", text + " ")
        self.assertIn("//", text)

    def test_helpUsage(self) -> None:
        """C{/help} takes no argument."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/help me")
        self.assertEqual(alice.lines(), ["! usage: /help"])

    def test_unknownCommand(self) -> None:
        """An unknown command gets one line pointing at /help."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/foo bar", "/", "/__init__")
        self.assertEqual(
            alice.lines(),
            [
                "! unknown command /foo; type /help",
                "! unknown command /; type /help",
                "! unknown command /__init__; type /help",
            ],
        )
        self.assertEqual(bob.lines(), [])

    def test_commandsIgnoreCase(self) -> None:
        """Command names are not case-sensitive."""
        factory, _ = chatFactory()
        [guest] = clients(factory, "guest1")
        guest.send("/NICK alice")
        self.assertEqual(guest.lines(), ["*** you are now known as alice"])


class LineLengthTests(SynchronousTestCase):
    """C{--max-line}: over-long lines are dropped, once noticed, harmlessly."""

    def test_longestLineDelivered(self) -> None:
        """A line of exactly C{maxLine} bytes passes, with LF or CRLF."""
        factory, _ = chatFactory(maxLine=20)
        alice, bob = clients(factory, "alice", "bob")
        alice.protocol.dataReceived(b"x" * 20 + b"\n" + b"y" * 20 + b"\r\n")
        self.assertEqual(bob.lines(), ["<alice> " + "x" * 20, "<alice> " + "y" * 20])
        self.assertEqual(alice.lines(), [])

    def test_oneByteOver(self) -> None:
        """One byte over gets one notice and is not delivered."""
        factory, _ = chatFactory(maxLine=20)
        alice, bob = clients(factory, "alice", "bob")
        alice.send(b"x" * 21, b"y" * 20 + b"\r\r")
        self.assertEqual(alice.lines(), ["! line too long"] * 2)
        self.assertEqual(bob.lines(), [])

    def test_connectionStaysUsable(self) -> None:
        """Lines after an over-long one, in the same read, get through."""
        factory, _ = chatFactory(maxLine=20)
        alice, bob = clients(factory, "alice", "bob")
        alice.protocol.dataReceived(b"a" * 100 + b"\nafter\n" + b"b" * 50 + b"\nlast\n")
        self.assertEqual(alice.lines(), ["! line too long"] * 2)
        self.assertEqual(bob.lines(), ["<alice> after", "<alice> last"])
        self.assertTrue(alice.connected)

    def test_nothingAfterQuitPastLongLine(self) -> None:
        """
        Lines after a C{/quit} that followed an over-long line in the same
        read are not acted on either.
        """
        factory, _ = chatFactory(maxLine=20)
        alice, bob = clients(factory, "alice", "bob")
        alice.protocol.dataReceived(
            b"a" * 100 + b"\n/quit\n" + b"b" * 50 + b"\nghost\n"
        )
        self.assertEqual(alice.lines(), ["! line too long", "*** bye"])
        self.assertEqual(bob.lines(), ["*** alice has left (quit)"])

    def test_longLineInPieces(self) -> None:
        """
        A long line arriving in many reads gets exactly one notice and none of
        it is delivered, not even the part after the limit.
        """
        factory, _ = chatFactory(maxLine=20)
        alice, bob = clients(factory, "alice", "bob")
        for _ in range(100):
            alice.protocol.dataReceived(b"0123456789")
        alice.protocol.dataReceived(b"tail\nnext\n")
        self.assertEqual(alice.lines(), ["! line too long"])
        self.assertEqual(bob.lines(), ["<alice> next"])

    def test_megabyteWithoutNewline(self) -> None:
        """A megabyte with no newline is not buffered: the line buffer stays small."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        for _ in range(16):
            alice.protocol.dataReceived(b"z" * 65536)
        self.assertEqual(alice.lines(), ["! line too long"])
        self.assertEqual(bob.lines(), [])
        self.assertLessEqual(len(alice.protocol.clearLineBuffer()), 4097)
        alice.send("", "ok")
        self.assertEqual(bob.lines(), ["<alice> ok"])


class EncodingTests(SynchronousTestCase):
    """Invalid UTF-8: a fallback encoding, or U+FFFD."""

    def test_replacement(self) -> None:
        """Without a fallback, invalid bytes reach others as U+FFFD."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send(b"caf\xe9 \xff!")
        self.assertEqual(bob.lines(), ["<alice> caf\ufffd \ufffd!"])

    def test_fallback(self) -> None:
        """With C{gbk} as fallback, a GBK line reaches others as UTF-8."""
        factory, _ = chatFactory(fallbackEncoding="gbk")
        alice, bob = clients(factory, "alice", "bob")
        alice.send("你好, 世界".encode("gbk"))
        alice.send("ünïcode")
        self.assertEqual(bob.lines(), ["<alice> 你好, 世界", "<alice> ünïcode"])

    def test_fallbackInCommands(self) -> None:
        """Commands are decoded with the fallback too."""
        factory, _ = chatFactory(fallbackEncoding="gbk")
        alice, bob = clients(factory, "alice", "bob")
        alice.send("/msg bob 你好".encode("gbk"))
        self.assertEqual(bob.lines(), ["*alice* 你好"])

    def test_badFallbackRefused(self) -> None:
        """A factory will not take an encoding that does not decode to text."""
        self.assertRaises(ValueError, ChatFactory, Clock(), fallbackEncoding="hex")
        self.assertRaises(ValueError, ChatFactory, Clock(), fallbackEncoding="nope")


class EscapeTests(SynchronousTestCase):
    """No client can drive another's terminal."""

    def test_stripped(self) -> None:
        """Escape sequences and controls are stripped before anyone sees them."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send(
            b"\x1b[2J\x1b[31mred\x1b[0m",
            b"\x1b]0;owned\x07title",
            "\u009b31mc1".encode(),
            b"bell\x07\x08\x7f",
            b"\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
        )
        self.assertEqual(
            bob.lines(),
            [
                "<alice> red",
                "<alice> title",
                "<alice> c1",
                "<alice> bell",
                "<alice> link",
            ],
        )

    def test_strippedInCommands(self) -> None:
        """Private messages and actions are stripped too."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send(b"/msg bob \x1b[5mhi", b"/me \x1b[1mbows")
        self.assertEqual(bob.lines(), ["*alice* hi", "* alice bows"])

    def test_escapeInNick(self) -> None:
        """An escape in a nick is stripped before the nick is checked."""
        factory, _ = chatFactory()
        [guest] = clients(factory, "guest1")
        guest.send(b"/nick \x1b[31mred")
        self.assertEqual(guest.lines(), ["*** you are now known as red"])


class FloodTests(SynchronousTestCase):
    """C{--rate} and C{--burst}: a token bucket per client on the clock."""

    def test_burstThenDropped(self) -> None:
        """Past the burst lines are dropped, with one notice for the episode."""
        factory, _ = chatFactory(rate=1, burst=3)
        alice, bob = guests(factory, 2)
        for index in range(10):
            alice.send(f"line {index}")
        self.assertEqual(
            bob.lines(), ["<guest1> line 0", "<guest1> line 1", "<guest1> line 2"]
        )
        self.assertEqual(alice.lines(), ["! slow down"])

    def test_recovers(self) -> None:
        """Time refills the bucket; a new flood is a new episode, a new notice."""
        factory, clock = chatFactory(rate=2, burst=1)
        alice, bob = guests(factory, 2)
        alice.send("one", "dropped", "dropped")
        clock.advance(0.5)
        alice.send("two", "dropped")
        self.assertEqual(bob.lines(), ["<guest1> one", "<guest1> two"])
        self.assertEqual(alice.lines(), ["! slow down", "! slow down"])

    def test_perClient(self) -> None:
        """One client's flood does not use up another's bucket."""
        factory, _ = chatFactory(rate=1, burst=1)
        alice, bob = guests(factory, 2)
        alice.send("a", "b", "c")
        bob.lines()
        bob.send("hi")
        self.assertEqual(alice.lines(), ["! slow down", "<guest2> hi"])

    def test_commandsCountEmptyLinesFree(self) -> None:
        """Every line takes a token, commands too; empty lines are free."""
        factory, _ = chatFactory(rate=1, burst=3)
        [alice] = guests(factory, 1)
        alice.send("/who", "", "\r", "/rooms", "", "/who", "/help")
        lines = alice.lines()
        self.assertEqual(lines[0], "*** in lobby: guest1")
        self.assertTrue(lines[1].startswith("*** rooms: "), lines)
        self.assertEqual(lines[2:], ["*** in lobby: guest1", "! slow down"])

    def test_overLongLinesNotThrottled(self) -> None:
        """Every over-long line gets its notice, flooded or not."""
        factory, _ = chatFactory(rate=1, burst=1, maxLine=5)
        [alice] = guests(factory, 1)
        alice.send("a", "b", "toolong", "toolong")
        self.assertEqual(
            alice.lines(), ["! slow down", "! line too long", "! line too long"]
        )


class SlowReaderTests(SynchronousTestCase):
    """
    C{--max-buffer}, C{--send-timeout}, C{--max-queue}: a client whose output
    stays queued is cut off, alone; one that drains in time is not.
    """

    def test_burstDoesNotCutOffReader(self) -> None:
        """
        A burst written in one turn, far over C{maxBuffer}, does not cut off
        a reader that drains it (is resumed) within C{sendTimeout}.
        """
        factory, clock = chatFactory(
            maxBuffer=100, sendTimeout=5, rate=1000, burst=1000, idleTimeout=0
        )
        alice, reader = clients(factory, "alice", "reader")
        reader.transport.producer.pauseProducing()
        alice.send(*[f"message number {index}" for index in range(50)])
        clock.advance(4.9)
        reader.transport.producer.resumeProducing()
        clock.advance(10)
        self.assertTrue(reader.connected)
        self.assertEqual(len(reader.lines()), 50)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stalledCutOffAfterTimeout(self) -> None:
        """
        A member paused with more than C{maxBuffer} bytes waiting is aborted
        C{sendTimeout} seconds later, and logged; the others keep receiving.
        """
        factory, clock = chatFactory(
            maxBuffer=100, sendTimeout=5, rate=1000, burst=1000
        )
        alice, slow, carol = clients(factory, "alice", "slow", "carol")
        slow.transport.producer.pauseProducing()
        with capturedLogs() as events:
            alice.send(*[f"message number {index}" for index in range(10)])
            clock.advance(4.9)
            self.assertTrue(slow.connected)
            clock.advance(0.1)
        self.assertTrue(slow.transport.disconnected)
        self.assertFalse(slow.connected)
        self.assertEqual(
            carol.lines(),
            [f"<alice> message number {index}" for index in range(10)]
            + ["*** slow has left (connection lost)"],
        )
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        text = formatEvent(warnings[0])
        self.assertIn("slow (tcp:127.0.0.1:", text)
        self.assertIn("is not reading: more than 100 bytes unsent for 5", text)

    def test_underLimitNotTimed(self) -> None:
        """Up to C{maxBuffer} bytes while paused is fine, for any time."""
        factory, clock = chatFactory(maxBuffer=100, sendTimeout=5)
        alice, slow = clients(factory, "alice", "slow")
        slow.transport.producer.pauseProducing()
        alice.send("x" * 90)
        clock.advance(60)
        self.assertTrue(slow.connected)

    def test_maxQueueAtOnce(self) -> None:
        """Past C{maxQueue} bytes waiting, the member is aborted at once."""
        factory, _ = chatFactory(
            maxBuffer=100, maxQueue=1000, sendTimeout=60, rate=1000, burst=1000
        )
        alice, slow = clients(factory, "alice", "slow")
        slow.transport.producer.pauseProducing()
        with capturedLogs() as events:
            alice.send(*["x" * 90] * 10)
            self.assertTrue(slow.connected)
            alice.send("x" * 90)
        self.assertFalse(slow.connected)
        self.assertIn("more than 1000 bytes queued", messages(events)[-2])

    def test_notPausedNotCounted(self) -> None:
        """A transport that never paused its member is not limited."""
        factory, clock = chatFactory(maxBuffer=100, maxQueue=100)
        alice, reader = clients(factory, "alice", "reader")
        alice.send(*["x" * 90] * 5)
        clock.advance(60)
        self.assertTrue(reader.connected)

    def test_resumeResetsCount(self) -> None:
        """Once the buffer drains and the member is resumed, counting starts over."""
        factory, clock = chatFactory(maxBuffer=100, sendTimeout=5)
        alice, slow = clients(factory, "alice", "slow")
        slow.transport.producer.pauseProducing()
        alice.send("x" * 80)
        slow.transport.producer.resumeProducing()
        slow.transport.producer.pauseProducing()
        alice.send("x" * 80)
        clock.advance(10)
        self.assertTrue(slow.connected)
        alice.send("x" * 20)
        clock.advance(4.9)
        self.assertTrue(slow.connected)
        clock.advance(0.1)
        self.assertFalse(slow.connected)

    def test_pauseDoesNotStopReading(self) -> None:
        """A paused member is still read from: its lines still get through."""
        factory, _ = chatFactory()
        alice, slow = clients(factory, "alice", "slow")
        slow.transport.producer.pauseProducing()
        self.assertEqual(slow.transport.producerState, "producing")
        slow.send("still talking")
        self.assertEqual(alice.lines(), ["<slow> still talking"])

    def test_nothingAfterCutOff(self) -> None:
        """
        The rest of what a client sent in the read that got it cut off is
        not acted on, though its connection is not yet lost.
        """
        factory, _ = chatFactory(maxBuffer=100, maxQueue=100)
        [alice] = clients(factory, "alice")
        slow = Client(factory, LateLossTransport())
        drain(alice, slow)
        slow.transport.producer.pauseProducing()
        slow.protocol.dataReceived(b"/help\nhello\n/nick spam\n")
        self.assertTrue(slow.transport.disconnected)
        self.assertEqual(alice.lines(), [])
        slow.protocol.dataReceived(b"more\n")
        self.assertEqual(alice.lines(), [])
        self.assertEqual(slow.lines(), [])

    def test_ownRepliesCount(self) -> None:
        """What a paused client asks for itself counts against its limit too."""
        factory, clock = chatFactory(
            maxBuffer=1000, sendTimeout=1, rate=1000, burst=1000
        )
        [slow] = clients(factory, "slow")
        slow.transport.producer.pauseProducing()
        slow.send(*["/help"] * 3)
        clock.advance(1)
        self.assertFalse(slow.connected)

    def test_closingCancelsTimer(self) -> None:
        """A member that quits while being timed leaves no timer behind."""
        factory, clock = chatFactory(
            maxBuffer=10, sendTimeout=5, rate=1000, burst=1000, idleTimeout=0
        )
        alice, slow = clients(factory, "alice", "slow")
        slow.transport.producer.pauseProducing()
        alice.send("x" * 90)
        slow.send("/quit")
        self.assertFalse(slow.connected)
        self.assertEqual(clock.getDelayedCalls(), [])


class IdleTimeoutTests(SynchronousTestCase):
    """C{--idle-timeout}: silent clients are told and closed."""

    def test_idleClosed(self) -> None:
        """After the timeout the client is told, closed, and its room told."""
        factory, clock = chatFactory(idleTimeout=30)
        quiet, bob = clients(factory, "quiet", "bob")
        clock.advance(20)
        bob.send("still here")
        clock.advance(10)
        self.assertEqual(
            quiet.lines(), ["<bob> still here", "*** idle too long, closing"]
        )
        self.assertFalse(quiet.connected)
        self.assertTrue(bob.connected)
        self.assertEqual(bob.lines(), ["*** quiet has left (connection lost)"])

    def test_dataResetsTimer(self) -> None:
        """Data from the client starts the timeout again."""
        factory, clock = chatFactory(idleTimeout=30)
        [alice] = clients(factory, "alice")
        clock.advance(29)
        alice.protocol.dataReceived(b"partial")
        clock.advance(29)
        self.assertTrue(alice.connected)
        clock.advance(1)
        self.assertFalse(alice.connected)

    def test_zeroNeverTimesOut(self) -> None:
        """An idle timeout of 0 leaves silent clients connected for ever."""
        factory, clock = chatFactory(idleTimeout=0)
        [alice] = clients(factory, "alice")
        clock.advance(10**9)
        self.assertTrue(alice.connected)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_noTimersLeft(self) -> None:
        """A timed-out connection leaves nothing scheduled."""
        factory, clock = chatFactory(idleTimeout=30)
        clients(factory, "alice")
        clock.advance(30)
        self.assertEqual(clock.getDelayedCalls(), [])


class ConnectionLimitTests(SynchronousTestCase):
    """C{--max-connections}."""

    def test_serverFull(self) -> None:
        """Past the limit a client is told the server is full, and closed."""
        factory, _ = chatFactory(maxConnections=2)
        alice, _ = clients(factory, "alice", "bob")
        protocol, transport = connect(factory)
        self.assertIsInstance(protocol, Refused)
        self.assertEqual(transport.value(), b"! server full, try later\r\n")
        self.assertFalse(transport.connected)
        self.assertEqual(alice.lines(), [])
        self.assertEqual(factory.connections.limit.open, 2)

    def test_closingFreesSlot(self) -> None:
        """When a client leaves, the next one gets in."""
        factory, _ = chatFactory(maxConnections=1)
        [alice] = clients(factory, "alice")
        alice.send("/quit")
        self.assertIsInstance(Client(factory).protocol, ChatProtocol)

    def test_refusalsLogged(self) -> None:
        """Refusals are logged, at most once per interval."""
        factory, clock = chatFactory(maxConnections=1)
        Client(factory)
        with capturedLogs() as events:
            for _ in range(3):
                connect(factory)
            clock.advance(REFUSAL_LOG_INTERVAL)
        self.assertEqual(
            messages(events),
            [
                "chat: refused 1 connection(s): limit of 1 reached",
                "chat: refused 2 connection(s): limit of 1 reached",
            ],
        )


class ShutdownTests(SynchronousTestCase):
    """Draining L{ChatFactory.connections}: every client is told, then closed."""

    def test_everyoneTold(self) -> None:
        """Each client's last line is the shutdown notice; no departures told."""
        factory, _ = chatFactory()
        everyone = clients(factory, "alice", "bob", "carol")
        everyone[2].send("/join #games")
        drain(*everyone)
        done = factory.connections.drain()
        for client in everyone:
            self.assertEqual(client.lines(), ["*** server shutting down"])
            self.assertFalse(client.connected)
        self.assertIsNone(self.successResultOf(done))

    def test_noOneConnects(self) -> None:
        """While shutting down, new connections are refused."""
        factory, _ = chatFactory()
        factory.connections.drain()
        self.assertIsNone(factory.buildProtocol(peerAddress()))

    def test_noClients(self) -> None:
        """With no one connected shutting down is immediate."""
        factory, _ = chatFactory()
        self.successResultOf(factory.connections.drain())

    def test_waitsForClose(self) -> None:
        """The result waits for connections to close, aborting them after a grace."""
        factory, clock = chatFactory()
        lingering = Client(factory, LingeringTransport())
        lingering.lines()
        done = factory.connections.drain()
        self.assertNoResult(done)
        self.assertEqual(lingering.lines(), ["*** server shutting down"])
        clock.advance(CLOSE_GRACE)
        self.assertTrue(lingering.transport.disconnected)
        self.successResultOf(done)

    def test_abortAtOnce(self) -> None:
        """C{abort} drops the connection at once, unsent lines and all."""
        factory, _ = chatFactory()
        lingering = Client(factory, LingeringTransport())
        lingering.protocol.abort()
        self.assertTrue(lingering.transport.disconnected)
        self.assertFalse(lingering.connected)
        self.assertEqual(len(factory.connections), 0)


class RobustnessTests(SynchronousTestCase):
    """Nothing a client sends raises out of the protocol or kills the connection."""

    def test_brokenStateLogged(self) -> None:
        """An error handling a line is logged; the connection goes on."""

        class BrokenState(ChatState):
            def roomCounts(self) -> dict[str, int]:
                raise RuntimeError("broken")

        factory, _ = chatFactory(state=BrokenState())
        [alice] = clients(factory, "alice")
        alice.send("/rooms", "/who")
        self.assertEqual(alice.lines(), ["*** in lobby: alice"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    @settings(max_examples=150, deadline=None)
    @given(
        strategies.lists(
            strategies.one_of(
                strategies.binary(max_size=40),
                strategies.sampled_from(
                    [
                        b"\n",
                        b"\r\n",
                        b"\r",
                        b"\x1b[",
                        b"\x1b]0;",
                        b"\xc2\x9b",
                        b"\xff\xfe",
                        b"/",
                        b"//",
                        b"/nick ",
                        b"/msg peer ",
                        b"/join #",
                        b"/me ",
                        b"x" * 50,
                    ]
                ),
            ),
            max_size=30,
        )
    )
    def test_arbitraryBytes(self, chunks: list[bytes]) -> None:
        """
        Any bytes in any chunking leave the sender connected and working
        (unless it quit) and never put a control character on the peer's
        screen.
        """
        factory, _ = chatFactory(maxLine=40, rate=10**6, burst=10**6)
        fuzzer, peer = clients(factory, "fuzzer", "peer")
        with capturedLogs() as events:
            for chunk in chunks:
                fuzzer.protocol.dataReceived(chunk)
            # End whatever line is still open: it may be a /quit.
            fuzzer.protocol.dataReceived(b"\n")
        self.assertEqual([e for e in events if "log_failure" in e], [])
        for line in peer.lines():
            self.assertTrue(isSafe(line), repr(line))
        if "*** bye" in fuzzer.lines():
            self.assertFalse(fuzzer.connected)
            return
        self.assertTrue(fuzzer.connected)
        fuzzer.send(b"/who")
        self.assertTrue(fuzzer.lines()[-1].startswith("*** in "))

    @settings(max_examples=100, deadline=None)
    @given(
        strategies.binary(max_size=300).map(lambda data: data.replace(b"/", b"")),
        strategies.lists(strategies.integers(min_value=0, max_value=300)),
    )
    def test_chunkingDoesNotMatter(self, data: bytes, cuts: list[int]) -> None:
        """Cut anywhere, the same bytes make the same lines for everyone."""

        def run(chunks: list[bytes]) -> tuple[bytes, bytes]:
            factory, _ = chatFactory(maxLine=16, rate=10**6, burst=10**6)
            sender, peer = clients(factory, "sender", "peer")
            for chunk in chunks:
                sender.protocol.dataReceived(chunk)
            return sender.transport.value(), peer.transport.value()

        bounds = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
        pieces = [data[start:end] for start, end in pairwise(bounds)]
        self.assertEqual(run(pieces), run([data]))


class LaterBrokerTests(SynchronousTestCase):
    """
    A broker whose answers come later: the protocol waits for them, keeps
    the client's lines in order meanwhile, and copes with a client gone by
    the time they come.
    """

    def test_fakeIsABroker(self) -> None:
        """The fake provides the whole interface, as L{LocalBroker} does."""
        self.assertTrue(verifyObject(IChatBroker, LaterBroker()))

    def test_brokerAndState(self) -> None:
        """The factory's state is its broker's; giving another as well is refused."""
        broker = LaterBroker()
        factory, _ = chatFactory(broker=broker)
        self.assertIs(factory.state, broker.local)
        self.assertRaises(
            ValueError, ChatFactory, Clock(), state=ChatState(), broker=broker
        )

    def test_sameConversation(self) -> None:
        """
        Answered after each line, a conversation using every command reads
        the same, line for line, as with the in-process broker.
        """
        script = [
            (0, "/nick alice"),
            (1, "/nick bob"),
            (0, "hello"),
            (1, "/me waves"),
            (2, "/who"),
            (1, "/join #Games"),
            (0, "/rooms"),
            (0, "/msg BOB psst"),
            (1, "/msg nobody x"),
            (2, "/nick ALICE"),
            (0, "/join #games"),
            (1, "/who"),
            (2, "/nick carol"),
            (0, "/quit off now"),
            (2, "/who"),
        ]

        def transcript(broker: LaterBroker | None) -> list[list[str]]:
            factory, _ = chatFactory(broker=broker)
            lines: list[list[str]] = []
            connected = []
            for _ in range(3):
                connected.append(Client(factory))
                if broker is not None:
                    broker.answerAll()
                lines.append([line for each in connected for line in each.lines()])
            for who, line in script:
                connected[who].send(line)
                if broker is not None:
                    broker.answerAll()
                lines.append([line for each in connected for line in each.lines()])
            return lines

        self.assertEqual(transcript(LaterBroker()), transcript(None))

    def test_welcomeWaits(self) -> None:
        """
        A newcomer is welcomed, and its room told, once the broker lets it
        in; meanwhile nothing is read from it.
        """
        factory, broker, [alice] = laterChat("alice")
        newcomer = Client(factory)
        self.assertEqual((newcomer.lines(), alice.lines()), ([], []))
        self.assertEqual(newcomer.transport.producerState, "paused")
        broker.answerNext()
        self.assertEqual(
            newcomer.lines(),
            ["*** welcome, you are guest2 in lobby; type /help for commands"],
        )
        self.assertEqual(alice.lines(), ["*** guest2 has joined"])
        self.assertEqual(newcomer.transport.producerState, "producing")

    def test_linesBeforeWelcome(self) -> None:
        """Lines sent before the welcome are handled after it, in order."""
        factory, broker, [alice] = laterChat("alice")
        newcomer = Client(factory)
        newcomer.send("hi", "/who")
        self.assertEqual(alice.lines(), [])
        broker.answerAll()
        self.assertEqual(alice.lines(), ["*** guest2 has joined", "<guest2> hi"])
        self.assertEqual(
            newcomer.lines(),
            [
                "*** welcome, you are guest2 in lobby; type /help for commands",
                "*** in lobby: alice, guest2",
            ],
        )

    def test_linesWaitForAnswer(self) -> None:
        """
        Lines after a command, in the same read or later ones, wait for its
        answer and are then handled in order: here as the renamed member.
        """
        _, broker, [alice, bob] = laterChat("alice", "bob")
        alice.protocol.dataReceived(b"/nick alicia\nhello\n")
        alice.send("/me waves")
        self.assertEqual((alice.lines(), bob.lines()), ([], []))
        self.assertEqual(alice.transport.producerState, "paused")
        self.assertEqual(broker.waiting, 1)
        broker.answerNext()
        self.assertEqual(
            alice.lines(), ["*** you are now known as alicia", "* alicia waves"]
        )
        self.assertEqual(
            bob.lines(),
            ["*** alice is now known as alicia", "<alicia> hello", "* alicia waves"],
        )
        self.assertEqual(alice.transport.producerState, "producing")

    def test_oneAnswerAtATime(self) -> None:
        """A line that needs the broker waits for the answer to the one before it."""
        _, broker, [alice, bob] = laterChat("alice", "bob")
        alice.send("/who", "/rooms", "after")
        self.assertEqual(broker.waiting, 1)
        broker.answerNext()
        self.assertEqual(alice.lines(), ["*** in lobby: alice, bob"])
        self.assertEqual(bob.lines(), [])
        self.assertEqual(broker.waiting, 1)
        broker.answerNext()
        self.assertEqual(alice.lines(), ["*** rooms: lobby (2)"])
        self.assertEqual(bob.lines(), ["<alice> after"])

    def test_otherClientsGoOn(self) -> None:
        """One client waiting for the broker holds back no one else."""
        _, _, [alice, bob] = laterChat("alice", "bob")
        alice.send("/who")
        bob.send("still here")
        self.assertEqual(alice.lines(), ["<bob> still here"])

    def test_nickTakenElsewhere(self) -> None:
        """A nick held on another server is refused like a local one."""
        _, broker, [alice] = laterChat("alice")
        broker.elsewhere.add("zoe")
        alice.send("/nick Zoe")
        broker.answerNext()
        self.assertEqual(alice.lines(), ["! nick Zoe is taken"])
        self.assertEqual(alice.member.nick, "alice")

    def test_guestNickTakenElsewhere(self) -> None:
        """A guest nick held on another server is skipped for the next one."""
        factory, broker, _ = laterChat()
        broker.elsewhere.update({"guest1", "guest2"})
        newcomer = Client(factory)
        broker.answerAll()
        self.assertEqual(
            newcomer.lines(),
            ["*** welcome, you are guest3 in lobby; type /help for commands"],
        )
        self.assertIs(factory.state.lookup("guest3"), newcomer.member)

    def test_cannotEnter(self) -> None:
        """A broker that cannot let a newcomer in is logged; the newcomer is closed."""
        factory, broker, [alice] = laterChat("alice")
        newcomer = Client(factory)
        broker.answerNext(ConnectionError("store unreachable"))
        self.assertEqual(len(self.flushLoggedErrors(ConnectionError)), 1)
        self.assertFalse(newcomer.connected)
        self.assertEqual((newcomer.lines(), alice.lines()), ([], []))
        self.assertEqual(len(factory.connections), 1)

    def test_failedAnswer(self) -> None:
        """
        A failed answer is logged and its line dropped; the lines after it
        are handled.
        """
        _, broker, [alice, bob] = laterChat("alice", "bob")
        alice.send("/rooms", "next")
        broker.answerNext(ConnectionError("store unreachable"))
        self.assertEqual(len(self.flushLoggedErrors(ConnectionError)), 1)
        self.assertEqual(alice.lines(), [])
        self.assertEqual(bob.lines(), ["<alice> next"])
        self.assertTrue(alice.connected)

    def test_lostBeforeEntering(self) -> None:
        """
        A newcomer gone before the broker let it in leaves no trace: no
        announcement, no member, its nick free.
        """
        factory, broker, [alice] = laterChat("alice")
        newcomer = Client(factory)
        newcomer.transport.loseConnection()
        broker.answerAll()
        self.assertEqual(alice.lines(), [])
        self.assertIsNone(factory.state.lookup("guest2"))
        self.assertEqual(factory.state.roomCounts(), {"lobby": 1})

    def test_lostWhileRenaming(self) -> None:
        """
        A member gone while its new nick was being claimed is announced
        under its old nick, and holds neither nick once the claim is answered.
        """
        factory, broker, [alice, bob] = laterChat("alice", "bob")
        alice.send("/nick alicia", "ignored")
        alice.transport.loseConnection()
        self.assertEqual(bob.lines(), ["*** alice has left (connection lost)"])
        broker.answerAll()
        self.assertEqual(bob.lines(), [])
        self.assertIsNone(factory.state.lookup("alicia"))
        self.assertIsNone(factory.state.lookup("alice"))

    def test_lostWhileJoining(self) -> None:
        """A member gone while joining is left in no room once the join is answered."""
        factory, broker, [alice, bob] = laterChat("alice", "bob")
        alice.send("/join #games")
        alice.transport.loseConnection()
        self.assertEqual(bob.lines(), ["*** alice has left (connection lost)"])
        broker.answerAll()
        self.assertEqual(factory.state.roomCounts(), {"lobby": 1})
        self.assertIsNone(factory.state.lookup("alice"))
        self.assertEqual(bob.lines(), [])

    def test_idleWhileWaiting(self) -> None:
        """
        An answer that comes once its client timed out is not acted on: the
        room is not told of the nick change, and sees the client leave under
        the nick it knew.
        """
        factory, broker, [bob] = laterChat("bob", idleTimeout=30)
        alice = Client(factory, LingeringTransport())
        broker.answerAll()
        drain(alice, bob)
        alice.send("/nick alice")
        factory.clock.advance(20)
        bob.protocol.dataReceived(b"typing")
        factory.clock.advance(10)
        self.assertEqual(alice.lines(), ["*** idle too long, closing"])
        broker.answerAll()
        self.assertEqual(alice.lines(), [])
        self.assertEqual(bob.lines(), ["! end each line with a newline"])
        factory.clock.advance(CLOSE_GRACE)
        self.assertEqual(bob.lines(), ["*** guest2 has left (connection lost)"])
        self.assertIsNone(factory.state.lookup("alice"))

    def test_closingWhileWaiting(self) -> None:
        """
        A client told the server is shutting down is sent nothing more, not
        even the answer it was waiting for; its held lines are dropped, and
        once it is closed it holds no nick.
        """
        factory, broker, _ = laterChat("bob")
        alice = Client(factory, LingeringTransport())
        broker.answerAll()
        alice.lines()
        alice.send("/nick alice", "/nick alicia")
        factory.connections.drain()
        broker.answerAll()
        self.assertEqual(alice.lines(), ["*** server shutting down"])
        self.assertEqual(broker.waiting, 0)
        self.assertTrue(alice.connected)
        factory.clock.advance(CLOSE_GRACE)
        self.assertFalse(alice.connected)
        self.assertIsNone(factory.state.lookup("alice"))
        self.assertIsNone(factory.state.lookup("alicia"))


class InvisibleTextTests(SynchronousTestCase):
    """Invisible and look-alike text does not reach anyone."""

    def test_stripped(self) -> None:
        """Zero-width and format characters are removed from what others see."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("p\u200ba\u00ady\ufeff\u2063pal\U000e0041\u3164")
        self.assertEqual(bob.lines(), ["<alice> paypal"])

    def test_blankAfterStrippingDropped(self) -> None:
        """A line of Hangul fillers and zero-width spaces reaches no one."""
        factory, _ = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.send("\u3164\u3164\u3164", "\u200b \u115f\u1160\uffa0", "/me \u3164")
        self.assertEqual(bob.lines(), [])
        self.assertEqual(alice.lines(), ["! usage: /me ACTION"])


class ServerNoticeTests(SynchronousTestCase):
    """Server notices have a form no user input produces."""

    def test_meCannotForgeDeparture(self) -> None:
        """
        C{/me has left (connection lost)} shows C{* alice ...}; the server's
        own notice of a departure shows C{*** bob ...}.
        """
        factory, _ = chatFactory()
        alice, bob, carol = clients(factory, "alice", "bob", "carol")
        alice.send("/me has left (connection lost)")
        bob.transport.loseConnection()
        self.assertEqual(
            carol.lines(),
            [
                "* alice has left (connection lost)",
                "*** bob has left (connection lost)",
            ],
        )

    @given(strategies.text(max_size=60))
    @settings(max_examples=200, deadline=None)
    def test_noUserLineLooksLikeNotice(self, text: str) -> None:
        """Whatever a user says or does, what others see never starts with ***."""
        factory, _ = chatFactory(rate=1000, burst=1000)
        alice, bob = clients(factory, "alice", "bob")
        alice.send(text.encode("utf-8", "surrogatepass"))
        alice.send(("/me " + text).encode("utf-8", "surrogatepass"))
        alice.send(("/msg bob " + text).encode("utf-8", "surrogatepass"))
        self.assertFalse([line for line in bob.lines() if line.startswith("***")])

    def test_helpSaysSo(self) -> None:
        """C{/help} says how server lines, errors and actions look."""
        factory, _ = chatFactory()
        [alice] = clients(factory, "alice")
        alice.send("/help")
        self.assertIn(
            "*** lines from the server start with ***, errors with !, "
            "and /me actions with * and the nick",
            alice.lines(),
        )


class TutorialClientTests(SynchronousTestCase):
    """Clients that never end their lines, and that quit with exit or bye."""

    def test_hintAfterPartialLine(self) -> None:
        """A partial line left for L{HINT_DELAY} seconds gets one hint."""
        factory, clock = chatFactory()
        alice, bob = clients(factory, "alice", "bob")
        alice.protocol.dataReceived(b"hello")
        clock.advance(HINT_DELAY - 0.1)
        self.assertEqual(alice.lines(), [])
        clock.advance(0.1)
        self.assertEqual(alice.lines(), ["! end each line with a newline"])
        alice.protocol.dataReceived(b" there\nagain")
        clock.advance(HINT_DELAY * 5)
        self.assertEqual(alice.lines(), [])
        self.assertEqual(bob.lines(), ["<alice> hello there"])

    def test_noHintForWholeLines(self) -> None:
        """Lines ended in time, even split across reads, get no hint."""
        factory, clock = chatFactory()
        [alice] = clients(factory, "alice")
        for piece in [b"hel", b"lo\n", b"/wh", b"o\n"]:
            alice.protocol.dataReceived(piece)
            clock.advance(HINT_DELAY / 2)
        clock.advance(HINT_DELAY * 5)
        self.assertEqual(alice.lines(), ["*** in lobby: alice"])

    def test_partialAfterWholeLines(self) -> None:
        """The clock starts from the newest partial line, not the first."""
        factory, clock = chatFactory()
        [alice] = clients(factory, "alice")
        alice.protocol.dataReceived(b"/who\n/wh")
        clock.advance(HINT_DELAY - 0.5)
        alice.protocol.dataReceived(b"o\n/who")
        clock.advance(HINT_DELAY - 0.1)
        self.assertEqual(alice.lines(), ["*** in lobby: alice"] * 2)
        clock.advance(0.1)
        self.assertEqual(alice.lines(), ["! end each line with a newline"])

    def test_noHintWhileLongLineDiscarded(self) -> None:
        """An over-long line already got its notice: no hint on top."""
        factory, clock = chatFactory(maxLine=10)
        [alice] = clients(factory, "alice")
        alice.protocol.dataReceived(b"x" * 100)
        clock.advance(HINT_DELAY * 2)
        self.assertEqual(alice.lines(), ["! line too long"])

    def test_exitAndBye(self) -> None:
        """C{/exit} and C{/bye} quit as C{/quit} does."""
        for command in ["/exit", "/bye", "/BYE see you"]:
            factory, _ = chatFactory()
            alice, bob = clients(factory, "alice", "bob")
            alice.send(command)
            self.assertEqual(alice.lines(), ["*** bye"])
            self.assertFalse(alice.connected)
            reason = command.partition(" ")[2] or "quit"
            self.assertEqual(bob.lines(), [f"*** alice has left ({reason})"])


class CountingProtocol(ChatProtocol):
    """A L{ChatProtocol} that counts the lines it frames."""

    framed = 0

    def completeLineReceived(self, line: bytes) -> None:
        self.framed += 1
        super().completeLineReceived(line)


class InputBudgetTests(SynchronousTestCase):
    """
    Input is budgeted per connection before framing, at what C{--rate} and
    C{--burst} allow at C{--max-line}; empty lines are skipped cheaply.
    """

    def test_emptyLinesSkippedBeforeFraming(self) -> None:
        """Two megabytes of bare newlines frame a handful of lines, not millions."""
        factory, _ = chatFactory()
        factory.protocol = CountingProtocol
        alice, bob = clients(factory, "alice", "bob")
        for _ in range(32):
            alice.protocol.dataReceived(b"\n" * 65536)
        alice.protocol.dataReceived(b"\r\n\r\n\nhi\n\n\r\n")
        self.assertLessEqual(alice.protocol.framed, 2 * 33 + 1)
        self.assertEqual(bob.lines(), ["<alice> hi"])
        self.assertEqual(alice.lines(), [])

    def test_legalBurstNotHeld(self) -> None:
        """A full burst of longest lines in one read does not stop reading."""
        factory, _ = chatFactory(maxLine=4096, burst=20)
        alice, bob = guests(factory, 2)
        alice.protocol.dataReceived(b"".join([b"x" * 4096 + b"\r\n"] * 20))
        self.assertEqual(alice.transport.producerState, "producing")
        self.assertEqual(len(bob.lines()), 20)

    def test_floodHeldUntilRefilled(self) -> None:
        """
        Past the budget the client is not read from until the budget is
        paid off, then read again; everything already read was handled.
        """
        factory, clock = chatFactory(maxLine=98, rate=1, burst=10)
        [alice] = guests(factory, 1)
        # The budget: 1,000 bytes at once, 100 a second.
        alice.protocol.dataReceived(b"x" * 1499 + b"\n")
        self.assertEqual(alice.transport.producerState, "paused")
        clock.advance(4.9)
        self.assertEqual(alice.transport.producerState, "paused")
        clock.advance(0.1)
        self.assertEqual(alice.transport.producerState, "producing")
        self.assertEqual(alice.lines(), ["! line too long"])

    def test_budgetAndBrokerHolds(self) -> None:
        """
        Reading resumes only once neither the budget nor a broker answer
        holds it, whichever is released first.
        """
        factory, broker, [alice, _] = laterChat(
            "alice", "bob", maxLine=98, rate=1, burst=10
        )
        alice.protocol.dataReceived(b"/who\n" + b"\n" * 1000)
        self.assertEqual(alice.transport.producerState, "paused")
        broker.answerAll()
        self.assertEqual(alice.transport.producerState, "paused")
        factory.clock.advance(1)
        self.assertEqual(alice.transport.producerState, "producing")
        self.assertEqual(alice.lines(), ["*** in lobby: alice, bob"])

    def test_closingCancelsRefill(self) -> None:
        """A client held back that disconnects leaves no timer behind."""
        factory, clock = chatFactory(maxLine=98, rate=1, burst=10, idleTimeout=0)
        [alice] = clients(factory, "alice")
        alice.protocol.dataReceived(b"x" * 5000)
        alice.transport.loseConnection()
        self.assertEqual(clock.getDelayedCalls(), [])


class ChurnTests(SynchronousTestCase):
    """
    Join and leave churn: per-address limits on connections, and arrival and
    departure notices limited per room.
    """

    def test_tooManyFromOneAddress(self) -> None:
        """Past C{maxPerAddress} connections an address is told so, and closed."""
        factory, _ = chatFactory(maxPerAddress=2)
        peer = IPv4Address("TCP", "127.0.2.7", 1)
        first, _ = connect(factory, peer)
        connect(factory, peer)
        protocol, transport = connect(factory, peer)
        self.assertIsInstance(protocol, Refused)
        self.assertEqual(
            transport.value(),
            b"! too many connections from your address, try later\r\n",
        )
        self.assertFalse(transport.connected)
        # Other addresses are not affected, and a closed one frees a slot.
        self.assertIsInstance(connect(factory)[0], ChatProtocol)
        first.transport.loseConnection()
        self.assertIsInstance(connect(factory, peer)[0], ChatProtocol)

    def test_connectingTooOften(self) -> None:
        """Past the connection burst an address waits for the rate."""
        factory, clock = chatFactory(connectRate=1, connectBurst=3)
        peer = IPv4Address("TCP", "127.0.2.7", 1)
        for _ in range(3):
            protocol, transport = connect(factory, peer)
            transport.loseConnection()
        protocol, transport = connect(factory, peer)
        self.assertIsInstance(protocol, Refused)
        self.assertEqual(
            transport.value(),
            b"! connecting too often from your address, try later\r\n",
        )
        clock.advance(1)
        self.assertIsInstance(connect(factory, peer)[0], ChatProtocol)

    def test_churnNoticesBounded(self) -> None:
        """
        A client connecting and leaving in a loop gives the lobby at most
        the notice burst, then one summary, however long it goes on.
        """
        factory, clock = chatFactory(
            noticeRate=1, noticeBurst=4, connectRate=1000, connectBurst=1000
        )
        [alice] = clients(factory, "alice")
        for _ in range(200):
            _, transport = connect(factory)
            transport.loseConnection()
        lines = alice.lines()
        # Its own arrival took one of the four.
        self.assertEqual(len(lines), 3, lines)
        clock.advance(10)
        self.assertEqual(
            alice.lines(), ["*** 397 more arrival(s) and departure(s) not shown"]
        )
