"""
An input line on a terminal that output never splits, with history, on
C{twisted.conch.insults}: the terminal is put in raw mode and its keys are
parsed by conch's L{insults.ServerProtocol} on C{twisted.internet.stdio}, as
C{twisted.conch.stdio} does for the manhole.

conch's own L{twisted.conch.recvline.HistoricRecvLine} does not fit a chat
client: it takes only ASCII (UTF-8 bytes are "unhandled keys"), keeps an
unbounded line and history, clears the screen when it starts, and moves the
cursor a column at a time, which goes wrong once the line wraps. So the line
and its history are an L{EditLine}, and every change redraws the whole
input line from its first row: it is short, and a redraw is always right.

Output goes above the input line: the input is erased, the output written
and the input drawn again below it, so what is being typed is never split.
"""

from __future__ import annotations

import codecs
import os
import signal
import termios
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from twisted.conch.insults import insults
from twisted.internet.interfaces import IReactorCore
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from twisted_services.clients.editline import EditLine, cursorAt
from twisted_services.clients.terminal import FinishingStandardIO

_ERASE_BELOW = b"\r\x1b[J"
_BELL = b"\x07"


def _up(rows: int) -> bytes:
    return b"\x1b[%dA" % rows if rows else b""


def _down(rows: int) -> bytes:
    return b"\x1b[%dB" % rows if rows else b""


def _right(columns: int) -> bytes:
    return b"\x1b[%dC" % columns if columns else b""


def stdioIsTerminal() -> bool:
    """Whether a person types at us: standard input and output are a terminal."""
    return (
        os.isatty(0) and os.isatty(1) and os.environ.get("TERM", "") not in ("", "dumb")
    )


def terminalSize(fd: int = 1) -> tuple[int, int]:
    """The terminal's columns and rows (80 by 24 if it does not say)."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 80, 24
    return size.columns or 80, size.lines or 24


@contextmanager
def rawTerminal(fd: int = 0) -> Iterator[None]:
    """
    Put the terminal in raw mode (every key comes to us at once, nothing is
    echoed or turned into a signal) and restore its settings afterwards.
    """
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextmanager
def onResize(reactor: IReactorCore, resized: Callable[[], None]) -> Iterator[None]:
    """
    Call C{resized} in the reactor thread whenever the terminal window
    changes size (SIGWINCH), until the block ends.
    """

    def handler(signum: int, frame: Any) -> None:
        reactor.callFromThread(resized)  # type: ignore[attr-defined]

    previous = signal.signal(signal.SIGWINCH, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


class EditorStandardIO(FinishingStandardIO, insults.ServerProtocol):
    """
    conch's key parser on standard I/O, which can also flush and close
    (L{FinishingStandardIO.finish}).
    """

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        insults.ServerProtocol.connectionLost(self, reason)
        self.stdioClosed()


class LineEditor(insults.TerminalProtocol):
    """
    An input line at the bottom of the terminal, edited with the usual keys
    (arrows, Home/End, Backspace/Delete, Ctrl-A/E/U/K), up and down for the
    history, Enter to submit. L{showAbove} prints a line above it.
    Subclasses say what a submitted line does (L{lineTyped}) and what ends
    the input (L{endOfInput}: Ctrl-D on an empty line, or Ctrl-C).
    """

    prompt = "> "

    def __init__(self, line: EditLine | None = None, width: int = 80) -> None:
        self.line = line if line is not None else EditLine()
        self.width = width
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        # The row of the input line the cursor is on, counted from its first.
        self._row = 0
        self._drawn = False
        self._keys: dict[Any, Callable[[], None]] = {}

    def connectionMade(self) -> None:
        terminal = self.terminal
        line = self.line
        self._keys = {
            terminal.LEFT_ARROW: line.left,
            terminal.RIGHT_ARROW: line.right,
            terminal.HOME: line.home,
            terminal.END: line.end,
            terminal.DELETE: line.delete,
            terminal.UP_ARROW: line.previous,
            terminal.DOWN_ARROW: line.next,
            b"\x01": line.home,
            b"\x02": line.left,
            b"\x05": line.end,
            b"\x06": line.right,
            b"\x08": line.backspace,
            b"\x7f": line.backspace,
            b"\x0b": line.killToEnd,
            b"\x0e": line.next,
            b"\x10": line.previous,
            b"\x15": line.killToStart,
            b"\x0c": lambda: None,  # Ctrl-L: just redraw
        }
        self._drawn = True
        self._redraw(b"")

    def lineTyped(self, line: str) -> None:
        """A line was submitted with Enter."""

    def endOfInput(self) -> None:
        """The user is done: Ctrl-D on an empty line, or Ctrl-C."""

    def terminalSize(self, width: int, height: int) -> None:
        """The window changed size: lay the input line out again."""
        self.width = max(width, 2)
        self._redraw(b"")

    def keystrokeReceived(self, keyID: Any, modifier: Any) -> None:
        if modifier is not None:
            return  # Alt-something: nothing of ours
        if keyID in (b"\r", b"\n"):
            self._submit()
        elif keyID == b"\x04" and not self.line.text:
            self.endOfInput()
        elif keyID == b"\x04":
            self._edit(self.line.delete)
        elif keyID == b"\x03":
            self.endOfInput()
        elif keyID in self._keys:
            self._edit(self._keys[keyID])
        elif isinstance(keyID, bytes) and len(keyID) == 1 and keyID >= b" ":
            # One byte of typed text (conch names other keys, b"[F1]").
            text = self._decoder.decode(keyID)
            if text:
                self._redraw(b"" if self.line.insert(text) else _BELL)

    def unhandledControlSequence(self, seq: bytes) -> None:
        """Keys we have no use for (F-keys, Page Up, ...) are ignored."""

    def showAbove(self, text: str) -> None:
        """Print C{text} (one line, no controls) above the input line."""
        output = text.encode("utf-8", "replace") + b"\r\n"
        if not self._drawn:
            self.terminal.write(output)
            return
        self.terminal.write(_up(self._row) + _ERASE_BELOW + output)
        self._row = 0
        self._redraw(b"")

    def erase(self) -> None:
        """Take the input line off the screen for good (before exiting)."""
        if self._drawn:
            self._drawn = False
            self.terminal.write(_up(self._row) + _ERASE_BELOW)
            self._row = 0

    def _edit(self, change: Callable[[], None]) -> None:
        change()
        self._redraw(b"")

    def _submit(self) -> None:
        if not self.line.text.strip():
            self.line.submit()
            self._redraw(b"")
            return
        # The typed line stays on the screen as a record of what was sent;
        # a new, empty input line starts below it.
        text = self.prompt + self.line.text
        endRow, endColumn = cursorAt(text, self.width)
        self.terminal.write(
            _down(endRow - self._row) + (b"\r\n" if endColumn else b"\r")
        )
        self._row = 0
        self.lineTyped(self.line.submit())
        self._redraw(b"")

    def _redraw(self, prefix: bytes) -> None:
        if not self._drawn:
            return
        text = self.prompt + self.line.text
        endRow, endColumn = cursorAt(text, self.width)
        row, column = cursorAt(
            self.prompt + self.line.text[: self.line.cursor], self.width
        )
        self.terminal.write(
            prefix
            + _up(self._row)
            + _ERASE_BELOW
            + text.encode("utf-8")
            # A row filled to its last column leaves the cursor there, not on
            # the next row as cursorAt counts: go there.
            + (b"\r\n" if endRow and not endColumn else b"")
            + _up(endRow - row)
            + b"\r"
            + _right(column)
        )
        self._row = row


def sizeWatcher(editor: LineEditor, fd: int = 1) -> Callable[[], None]:
    """What to call on SIGWINCH: tell C{editor} the terminal's new size."""

    def resized() -> None:
        editor.terminalSize(*terminalSize(fd))

    return resized
