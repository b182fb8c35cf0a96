"""
Integration tests: the real C{twistd -n chat} in a subprocess, several raw
loopback clients talking to it at once.

Cross-client ordering is made deterministic by waiting for each effect
before the next step; that something did I{not} arrive is shown by the next
line a client gets being a later marker. Every read has a deadline, every
loop a bound; nothing sleeps.
"""

from __future__ import annotations

import signal
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.chat.sockets import LineClient
from tests.support.twistd import Twistd, startTwistd
from tests.support.waiting import polling

LOOPBACK = ["--port", "0", "--interface", "127.0.0.1"]
# Tests that send quickly must not meet flood control.
FAST = ["--rate", "100000", "--burst", "100000"]
WELCOME = "*** welcome, you are {} in lobby; type /help for commands"


class ChatIntegrationTestCase(SynchronousTestCase):
    """Starting C{twistd -n chat} and connecting clients to it."""

    def startChat(self, *arguments: str) -> Twistd:
        self.twistd = startTwistd(self, "chat", [*LOOPBACK, *arguments])
        return self.twistd

    def connect(self, receiveBuffer: int | None = None) -> LineClient:
        client = LineClient.connect(
            self.twistd.listener().loopbackAddress, receiveBuffer
        )
        self.addCleanup(client.close)
        return client

    def guest(self, guest: str, *others: LineClient) -> LineClient:
        """Connect as C{guest}; each of C{others} (in the lobby) sees it join."""
        client = self.connect()
        client.expect(WELCOME.format(guest))
        for other in others:
            other.expect(f"*** {guest} has joined")
        return client

    def join(self, guest: str, nick: str, *others: LineClient) -> LineClient:
        """
        Connect as C{guest}, rename to C{nick}; each of C{others} (in the
        lobby) sees both announcements.
        """
        client = self.connect()
        client.expect(WELCOME.format(guest))
        client.send(f"/nick {nick}")
        client.expect(f"*** you are now known as {nick}")
        for other in others:
            other.expect(
                f"*** {guest} has joined", f"*** {guest} is now known as {nick}"
            )
        return client

    def carolInGames(self) -> tuple[LineClient, LineClient, LineClient]:
        """
        Start chat; alice and bob stay in the lobby, carol moves to
        C{#games} and both see her go.
        """
        self.startChat()
        alice = self.join("guest1", "alice")
        bob = self.join("guest2", "bob", alice)
        carol = self.join("guest3", "carol", alice, bob)
        carol.send("/join #games")
        carol.expect("*** you joined #games")
        alice.expect("*** carol has left (joined #games)")
        bob.expect("*** carol has left (joined #games)")
        return alice, bob, carol


class ConversationTests(ChatIntegrationTestCase):
    """Three clients, two rooms, private messages."""

    def test_twoRooms(self) -> None:
        """Room lines reach exactly the rest of the sender's room, in order."""
        alice, bob, carol = self.carolInGames()

        alice.send("hi bob")
        bob.expect("<alice> hi bob")
        alice.send("//join is not a command")
        bob.expect("<alice> /join is not a command")
        carol.send("anyone here?")  # alone in #games: nobody gets it
        carol.send("/who")
        carol.expect("*** in #games: carol")

        bob.send("/join #games")
        bob.expect("*** you joined #games")
        carol.expect("*** bob has joined")
        alice.expect("*** bob has left (joined #games)")

        carol.send("hi bob")
        bob.expect("<carol> hi bob")
        bob.send("/me waves")
        bob.expect("* bob waves")
        carol.expect("* bob waves")
        alice.send("/rooms")
        alice.expect("*** rooms: #games (2), lobby (1)")
        bob.send("/who")
        bob.expect("*** in #games: bob, carol")
        carol.send("/who")
        carol.expect("*** in #games: bob, carol")

    def test_privateMessage(self) -> None:
        """C{/msg} reaches its target in any room, and no one else."""
        alice, bob, carol = self.carolInGames()

        alice.send("/msg carol psst")
        alice.expect("-> *carol* psst")
        carol.expect("*alice* psst")
        alice.send("/msg bob just you")
        alice.expect("-> *bob* just you")
        bob.expect("*alice* just you")
        alice.send("/msg nobody hello?")
        alice.expect("! no such nick")
        # Had either private line gone to the room, it would come first.
        alice.send("to the room")
        bob.expect("<alice> to the room")
        bob.send("/msg carol done")
        carol.expect("*bob* done")


class HostileClientTests(ChatIntegrationTestCase):
    """What one hostile client sends does not reach or hurt the others."""

    def setUp(self) -> None:
        self.startChat(*FAST)
        self.alice = self.join("guest1", "alice")
        self.bob = self.join("guest2", "bob", self.alice)
        self.mallory = self.guest("guest3", self.alice, self.bob)

    def assertStillTalking(self) -> None:
        """Alice and bob still talk; mallory still hears them."""
        self.alice.send("still fine?")
        self.bob.expect("<alice> still fine?")
        self.mallory.expect("<alice> still fine?")
        self.bob.send("yes")
        self.alice.expect("<bob> yes")
        self.mallory.expect("<bob> yes")

    def test_megabyteWithoutNewline(self) -> None:
        """
        A 1 MB line gets its sender one C{! line too long}, reaches no one,
        and the sender's next line goes through.
        """
        self.mallory.sendRaw(b"A" * (1024 * 1024))
        self.mallory.expect("! line too long")
        self.assertStillTalking()
        self.mallory.sendRaw(b"A" * 1000 + b"\nback\n")
        self.alice.expect("<guest3> back")
        self.bob.expect("<guest3> back")
        self.assertStillTalking()  # and no second notice came before

    def test_invalidUTF8(self) -> None:
        """Invalid UTF-8 reaches the others as U+FFFD; nothing breaks."""
        self.mallory.send(b"caf\xe9 \xff\xfe ok")
        self.alice.expect("<guest3> caf\ufffd \ufffd\ufffd ok")
        self.bob.expect("<guest3> caf\ufffd \ufffd\ufffd ok")
        self.mallory.send(b"\xc3\x28")
        self.alice.expect("<guest3> \ufffd(")
        self.bob.expect("<guest3> \ufffd(")
        self.assertStillTalking()

    def test_escapeSequences(self) -> None:
        """Escape sequences and controls are stripped before anyone sees them."""
        self.mallory.send(b"\x1b[2J\x1b]0;pwned\x07hi \x1b[31mred\x1b[0m\x07\x08\r\n")
        self.alice.expect("<guest3> hi red")
        self.bob.expect("<guest3> hi red")
        # A lone escape and an 8-bit CSI, as valid UTF-8.
        self.mallory.send("x\x1b \u009b1mz".encode())
        self.alice.expect("<guest3> xz")
        self.bob.expect("<guest3> xz")
        self.assertStillTalking()


class SlowReaderTests(ChatIntegrationTestCase):
    """
    Fast readers take any burst the limits allow; a client that never reads
    is cut off within the send timeout, and nobody else waits for it.
    """

    def readMessages(self, client: LineClient, howMany: int) -> list[str]:
        """The next C{howMany} room lines, skipping server notices."""
        got: list[str] = []
        for _ in polling(20.0, f"{howMany} lines", howMany * 2 + 200):
            if len(got) == howMany:
                return got
            line = client.readLine()
            if not line.startswith("*** "):
                got.append(line)
        return got  # polling() raises first

    def test_busyRoomKeepsFastReaders(self) -> None:
        """
        Three readers with large receive buffers; fourteen others each send
        one burst of 20 lines of 4,000 bytes (inside the default --burst and
        --max-line): every reader gets all 280 lines, and stays connected.
        """
        self.startChat()
        readers = [self.connect(receiveBuffer=4 << 20) for _ in range(3)]
        senders = [self.connect() for _ in range(14)]
        for number, client in enumerate(readers + senders, start=1):
            client.waitFor(WELCOME.format(f"guest{number}"))
        for number, sender in enumerate(senders, start=4):
            sender.sendRaw(
                b"".join(
                    f"{number:02d} {line:02d} ".encode() + b"x" * 3994 + b"\n"
                    for line in range(20)
                )
            )
        for reader in readers:
            got = self.readMessages(reader, 14 * 20)
            expected = {
                f"<guest{number}> {number:02d} {line:02d} " + "x" * 3994
                for number in range(4, 18)
                for line in range(20)
            }
            self.assertEqual(set(got), expected)
        readers[0].send("/who")
        self.assertTrue(
            readers[0].waitFor(
                "*** in lobby: "
                + ", ".join(sorted((f"guest{n}" for n in range(1, 18)), key=str.lower))
            )
            is not None
        )
        self.assertNotIn("is not reading", self.twistd.log())

    def test_stalledReaderDisconnected(self) -> None:
        """
        A client that stops reading is cut off within --send-timeout of its
        output piling up past --max-buffer, and logged; the reader gets every
        line throughout.
        """
        self.startChat(
            *FAST,
            "--max-buffer",
            "65536",
            "--send-timeout",
            "1",
            "--max-queue",
            "67108864",
        )
        alice = self.join("guest1", "alice")
        bob = self.join("guest2", "bob", alice)
        slow = self.connect(receiveBuffer=4096)
        alice.expect("*** guest3 has joined")
        bob.expect("*** guest3 has joined")

        batch = 64
        payload = "x" * 1000
        sent = 0
        departure = "*** guest3 has left (connection lost)"
        departed = False
        started = time.monotonic()
        for _ in polling(10.0, "disconnecting the client that does not read", 5000):
            if "is not reading" in self.twistd.log():
                break
            alice.sendRaw(
                b"".join(f"{sent + n} {payload}\n".encode() for n in range(batch))
            )
            # Every line, in order; the departure may come between any two.
            expected = [f"<alice> {sent + n} {payload}" for n in range(batch)]
            while expected:
                line = bob.readLine()
                if line == departure and not departed:
                    departed = True
                else:
                    self.assertEqual(line, expected.pop(0))
            sent += batch
        # The kernel's buffers take a few megabytes before the server's
        # queue grows; then one second of --send-timeout.
        self.assertLess(time.monotonic() - started, 6.0)
        if not departed:
            bob.expect(departure)
        alice.expect(departure)
        alice.send("after")
        bob.expect("<alice> after")
        self.assertTrue(slow.closedByPeer())
        self.twistd.waitForLog(
            r"guest3 .* is not reading: more than 65536 bytes unsent for 1.0 seconds"
        )


class ShutdownTests(ChatIntegrationTestCase):
    """SIGTERM says goodbye to every client, then exits cleanly."""

    def test_sigterm(self) -> None:
        """
        Each client gets C{* server shutting down}, then EOF; twistd shuts
        down without an error (exiting 0, or re-raising SIGTERM).
        """
        self.startChat()
        alice = self.join("guest1", "alice")
        bob = self.join("guest2", "bob", alice)
        status = self.twistd.stop(signal.SIGTERM)
        output = self.twistd.log()
        self.assertIn(status, (0, -signal.SIGTERM), output)
        self.assertIn("Server Shut Down.", output)
        self.assertNotIn("Traceback", output)
        for client in (alice, bob):
            # No departures are announced during shutdown.
            client.expect("*** server shutting down")
            self.assertTrue(client.closedByPeer())


class EmptyLineFloodTests(ChatIntegrationTestCase):
    """
    Bare newlines cost no line token, and a flood of them is held back by the
    input budget alone: nobody else waits for it. (How fast the others are
    answered meanwhile is bench/'s to measure, not a test's.)
    """

    # More than a loopback connection's kernel buffers hold, so that a
    # flooder the server kept reading from could never be refused.
    MAX_FLOOD = 64 << 20

    def floodUntilRefused(self, flooder: LineClient, chunk: bytes) -> int:
        """
        Send bare newlines until the server stops taking them; the bytes
        taken. Fails if it takes more than L{MAX_FLOOD}.
        """
        offered = 0
        for _ in polling(20.0, "the server holding a flooder back", 100_000):
            try:
                offered += flooder.socket.send(chunk)
            except BlockingIOError:
                return offered
            if offered > self.MAX_FLOOD:
                break
        raise AssertionError(f"{offered} bytes of newlines taken, none refused")

    def test_othersAnsweredUnderFlood(self) -> None:
        """
        Two clients flood bare newlines until the server stops reading them;
        meanwhile, and while they keep offering more, another member's 100
        C{/who} commands are each answered, in order. The flooders are held
        back, neither told to slow down nor cut off. The line limits are
        raised just enough for those 100 commands; the flooders' input
        budget grows with them.
        """
        self.startChat("--rate", "20", "--burst", "100")
        alice = self.join("guest1", "alice")
        flooders = [self.connect(), self.connect()]
        for number, flooder in enumerate(flooders, start=2):
            flooder.waitFor(WELCOME.format(f"guest{number}"))
            flooder.socket.setblocking(False)
        alice.waitFor("*** guest3 has joined")
        chunk = b"\n" * 65536
        offered = [self.floodUntilRefused(flooder, chunk) for flooder in flooders]
        for _ in range(100):
            for flooder in flooders:
                try:
                    flooder.socket.send(chunk)
                except BlockingIOError:
                    pass  # the server is not reading it: that is the point
            alice.send("/who")
            alice.expect("*** in lobby: alice, guest2, guest3")
        # The last /who named both flooders: still connected.
        self.assertGreater(min(offered), 64 * 1024)
        for flooder in flooders:
            try:
                told = flooder.socket.recv(65536)  # non-blocking: what is here
            except BlockingIOError:
                told = b""
            self.assertNotIn(b"slow down", told)
        self.assertNotIn("Traceback", self.twistd.log())


class ChurnTests(ChatIntegrationTestCase):
    """One host connecting and disconnecting in a loop."""

    def test_churnBounded(self) -> None:
        """
        A client that connects and disconnects in a loop is refused past
        its address's limits (logged, throttled), and the lobby gets a
        bounded number of notices, not two per connection.
        """
        self.startChat("--notice-rate", "1", "--notice-burst", "5")
        alice = self.join("guest1", "alice")
        started = time.monotonic()
        address = self.twistd.listener().loopbackAddress
        attempts = 0
        for _ in polling(10.0, "200 connections", 200):
            client = LineClient.connect(address)
            try:
                client.readLine()  # a welcome, or a refusal
            finally:
                client.close()
            attempts += 1
            if attempts == 200:
                break
        alice.send("/who")
        noticed = alice.waitFor("*** in lobby: alice")
        elapsed = time.monotonic() - started
        # The burst (alice's own arrival took one), then one a second.
        self.assertLessEqual(len(noticed), 5 + elapsed + 1, noticed)
        self.assertTrue(all(line.startswith("*** ") for line in noticed), noticed)
        log = self.twistd.waitForLog(r"refused \d+ connection\(s\)")
        self.assertIn("connecting too often from your address", log)
        self.assertLessEqual(log.count("chat: refused"), 1 + elapsed / 10)


class TextTests(ChatIntegrationTestCase):
    """Invisible text, look-alike nicks and forged notices."""

    def setUp(self) -> None:
        self.startChat()
        self.alice = self.join("guest1", "alice")
        self.mallory = self.guest("guest2", self.alice)

    def test_invisibleStripped(self) -> None:
        """Invisible characters are gone; a line of fillers is not delivered."""
        self.mallory.send("p\u200ba\u00ady\ufeffpal\U000e0041\u2063")
        self.alice.expect("<guest2> paypal")
        self.mallory.send("\u3164\u3164\u3164")
        self.mallory.send("\u115f\u200d\uffa0")
        self.mallory.send("marker")
        self.alice.expect("<guest2> marker")

    def test_lookAlikeNick(self) -> None:
        """C{aIice} (capital i) is refused while C{alice} is online."""
        self.mallory.send("/nick aIice")
        self.mallory.expect("! nick aIice is taken")
        self.mallory.send("/nick al1ce")
        self.mallory.expect("! nick al1ce is taken")

    def test_cannotForgeDeparture(self) -> None:
        """C{/me} cannot make a line that looks like the server's departure."""
        self.mallory.send("/me has left (connection lost)")
        self.alice.expect("* guest2 has left (connection lost)")
        self.mallory.close()
        self.alice.expect("*** guest2 has left (connection lost)")


class TutorialClientTests(ChatIntegrationTestCase):
    """A socket-tutorial client: no line endings, quits with bye or exit."""

    def test_hintAndBye(self) -> None:
        """
        Text with no line ending gets one hint after a couple of seconds;
        C{/bye} quits.
        """
        self.startChat()
        alice = self.join("guest1", "alice")
        tutorial = self.guest("guest2", alice)
        tutorial.sendRaw(b"hello")
        started = time.monotonic()
        tutorial.expect("! end each line with a newline")
        self.assertGreater(time.monotonic() - started, 1.5)
        tutorial.sendRaw(b"\n/bye\n")
        alice.expect("<guest2> hello", "*** guest2 has left (quit)")
        tutorial.expect("*** bye")
        self.assertTrue(tutorial.closedByPeer())

    def test_exit(self) -> None:
        """C{/exit} quits too."""
        self.startChat()
        tutorial = self.guest("guest1")
        tutorial.send("/exit")
        tutorial.expect("*** bye")
        self.assertTrue(tutorial.closedByPeer())
