"""
Tests for L{twisted_services.clients.lineeditor}: the editor on conch's key
parser over a fake transport, its output shown on an in-memory terminal
emulator, so the tests read the screen a person would see.
"""

from __future__ import annotations

from twisted.conch.insults import insults
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.clients.screen import Screen
from twisted_services.clients.editline import EditLine
from twisted_services.clients.lineeditor import LineEditor

UP = b"\x1b[A"
DOWN = b"\x1b[B"
LEFT = b"\x1b[D"


class Editor(LineEditor):
    """A L{LineEditor} that records what it is told."""

    def __init__(self, width: int, line: EditLine | None = None) -> None:
        super().__init__(line, width=width)
        self.typed: list[str] = []
        self.ended = 0

    def lineTyped(self, line: str) -> None:
        self.typed.append(line)

    def endOfInput(self) -> None:
        self.ended += 1


class Session:
    """An L{Editor} on conch's key parser, shown on a L{Screen}."""

    def __init__(self, width: int = 80, line: EditLine | None = None) -> None:
        self.editor = Editor(width, line)
        self.transport = StringTransport()
        insults.ServerProtocol(lambda: self.editor).makeConnection(self.transport)
        self.screen = Screen(width, 24)
        self._show()

    def _show(self) -> None:
        self.screen.feed(self.transport.value())
        self.transport.clear()

    def keys(self, data: bytes) -> Session:
        """Type C{data} (as the terminal sends it)."""
        self.editor.terminal.dataReceived(data)
        self._show()
        return self

    def output(self, text: str) -> Session:
        """Print a line above the input."""
        self.editor.showAbove(text)
        self._show()
        return self

    def rows(self) -> list[str]:
        """The rows that have something on them."""
        return [row for row in self.screen.rows() if row]


class LineEditorTests(SynchronousTestCase):
    """L{LineEditor} keeps one input line that output never splits."""

    def test_prompt(self) -> None:
        """An empty input line, its prompt and the cursor after it, at once."""
        session = Session()
        self.assertEqual(session.rows(), [">"])
        self.assertEqual(session.screen.cursor(), (2, 0))

    def test_typeAndSubmit(self) -> None:
        """
        Enter hands over the line; it stays on the screen and a new input
        line starts below it.
        """
        session = Session().keys(b"hello\r")
        self.assertEqual(session.editor.typed, ["hello"])
        self.assertEqual(session.rows(), ["> hello", ">"])
        self.assertEqual(session.screen.cursor(), (2, 1))

    def test_blankNotKept(self) -> None:
        """Enter on an empty line hands over nothing and leaves no row behind."""
        session = Session().keys(b"\r  \r")
        self.assertEqual(session.editor.typed, [])
        self.assertEqual(session.rows(), [">"])

    def test_outputAboveInput(self) -> None:
        """
        A line printed while one is half typed goes whole on its own row,
        and the input is drawn again below it with the cursor where it was.
        """
        session = Session().keys(b"partial li" + LEFT + LEFT)
        session.output("<bob> message while alice is typing")
        self.assertEqual(
            session.rows(), ["<bob> message while alice is typing", "> partial li"]
        )
        self.assertEqual(session.screen.cursor(), (10, 1))
        session.keys(b"X\r")
        self.assertEqual(session.editor.typed, ["partial Xli"])

    def test_wrappedInput(self) -> None:
        """
        An input line longer than the terminal is wide wraps, and output
        above it leaves no piece of it behind.
        """
        session = Session(width=20).keys(b"a" * 30)
        self.assertEqual(session.rows(), ["> " + "a" * 18, "a" * 12])
        session.keys(LEFT * 15)
        self.assertEqual(session.screen.cursor(), (17, 0))
        session.output("<bob> hi").output("<carol> yo")
        self.assertEqual(
            session.rows(), ["<bob> hi", "<carol> yo", "> " + "a" * 18, "a" * 12]
        )
        self.assertEqual(session.screen.cursor(), (17, 2))

    def test_fullRow(self) -> None:
        """
        Input that fills its row exactly puts the cursor on the next row,
        and output above it still leaves the input whole.
        """
        session = Session(width=10).keys(b"12345678")
        self.assertEqual(session.screen.cursor(), (0, 1))
        session.output("note")
        self.assertEqual(session.rows(), ["note", "> 12345678"])
        self.assertEqual(session.screen.cursor(), (0, 2))
        session.keys(b"9\r")
        self.assertEqual(session.rows(), ["note", "> 12345678", "9", ">"])

    def test_editingKeys(self) -> None:
        """Arrows, Home/End (and Ctrl-A/E), Backspace and Delete edit the line."""
        session = Session().keys(b"helo" + LEFT + b"l\x01\x1b[3~H\x05!\x7f\x7f\r")
        self.assertEqual(session.editor.typed, ["Hell"])

    def test_history(self) -> None:
        """Up and down bring back what was sent, and then the draft."""
        session = Session().keys(b"first\rsecond\rdraft")
        session.keys(UP + UP)
        self.assertEqual(session.rows()[-1], "> first")
        session.keys(DOWN + DOWN)
        self.assertEqual(session.rows()[-1], "> draft")
        session.keys(UP + b"!\r")
        self.assertEqual(session.editor.typed, ["first", "second", "second!"])

    def test_utf8(self) -> None:
        """Characters typed in UTF-8, even split across reads, arrive whole."""
        typed = "caf\u00e9 \u4f60".encode()
        session = Session().keys(typed[:4]).keys(typed[4:8]).keys(typed[8:])
        session.keys(LEFT + b"\x7f\r")
        self.assertEqual(session.editor.typed, ["caf\u00e9\u4f60"])

    def test_tooLong(self) -> None:
        """Past the longest line the terminal beeps and nothing goes in."""
        session = Session(line=EditLine(maxLength=3)).keys(b"abc")
        session.editor.keystrokeReceived(b"d", None)
        self.assertIn(b"\x07", session.transport.value())
        session.keys(b"\r")
        self.assertEqual(session.editor.typed, ["abc"])

    def test_endOfInput(self) -> None:
        """Ctrl-D on an empty line or Ctrl-C ends input; Ctrl-D on text deletes."""
        session = Session().keys(b"ab\x01\x04")
        self.assertEqual((session.editor.ended, session.rows()), (0, ["> b"]))
        session.keys(b"\x03")
        self.assertEqual(session.editor.ended, 1)
        session.keys(b"\x04\r")
        self.assertEqual(session.editor.ended, 1)
        session.keys(b"\x04")
        self.assertEqual(session.editor.ended, 2)

    def test_otherKeysIgnored(self) -> None:
        """Function keys, Alt-keys and other controls change nothing."""
        session = Session().keys(b"a\x1bOP\x1b[5~\x1bx\x07\x1a\tb\r")
        self.assertEqual(session.editor.typed, ["ab"])

    def test_resize(self) -> None:
        """A narrower window lays the input line out again."""
        session = Session().keys(b"a" * 12)
        session.editor.terminalSize(10, 24)
        session.screen.buffer.width = 10
        session.output("x")
        self.assertEqual(session.rows()[-3:], ["x", "> aaaaaaaa", "aaaa"])

    def test_erase(self) -> None:
        """Before exiting the input line is taken off; later output is plain."""
        session = Session(width=20).keys(b"a" * 30)
        session.editor.erase()
        session._show()
        session.output("* bye")
        self.assertEqual(session.rows(), ["* bye"])
