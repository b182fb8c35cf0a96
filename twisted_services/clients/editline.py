"""
The line being typed, as a pure value: its characters, the cursor, a
bounded history, and where on a terminal of a given width each character
lands. L{twisted_services.clients.lineeditor} draws it.
"""

from __future__ import annotations

import unicodedata
from collections import deque

MAX_LENGTH = 4096
"""The longest line, in characters, one may type (the server's default limit)."""

HISTORY_SIZE = 500
"""How many sent lines up and down arrows can bring back."""


def columns(character: str) -> int:
    """How many terminal columns C{character} takes: 0, 1 or 2 (East Asian wide)."""
    if unicodedata.combining(character):
        return 0
    return 2 if unicodedata.east_asian_width(character) in "WF" else 1


def cursorAt(text: str, width: int) -> tuple[int, int]:
    """
    The row and column (from 0) where the cursor stands after C{text} is
    written from the start of a row on a terminal C{width} columns wide.
    A row filled to its end puts the cursor at the start of the next one
    (the renderer makes the terminal agree), and a wide character that does
    not fit wraps whole, as terminals do.
    """
    row = column = 0
    for character in text:
        size = columns(character)
        if column + size > width:
            row, column = row + 1, 0
        column += size
        if column >= width:
            row, column = row + 1, 0
    return row, column


class EditLine:
    """
    A line of text with a cursor, edited the way readline edits, and the
    history of submitted lines: both bounded.
    """

    def __init__(self, maxLength: int = MAX_LENGTH, historySize: int = HISTORY_SIZE):
        self.maxLength = maxLength
        self._characters: list[str] = []
        self.cursor = 0
        self._history: deque[str] = deque(maxlen=historySize)
        # Where up and down stand: len(history) is the line being typed,
        # which is kept aside while one browses.
        self._position = 0
        self._draft = ""

    @property
    def text(self) -> str:
        """What has been typed so far."""
        return "".join(self._characters)

    @property
    def history(self) -> list[str]:
        """The submitted lines up and down can bring back, oldest first."""
        return list(self._history)

    def insert(self, text: str) -> bool:
        """Insert C{text} at the cursor; C{False} (nothing inserted) if too long."""
        if len(self._characters) + len(text) > self.maxLength:
            return False
        self._characters[self.cursor : self.cursor] = text
        self.cursor += len(text)
        return True

    def left(self) -> None:
        self.cursor = max(0, self.cursor - 1)

    def right(self) -> None:
        self.cursor = min(len(self._characters), self.cursor + 1)

    def home(self) -> None:
        self.cursor = 0

    def end(self) -> None:
        self.cursor = len(self._characters)

    def backspace(self) -> None:
        """Delete the character before the cursor."""
        if self.cursor:
            self.cursor -= 1
            del self._characters[self.cursor]

    def delete(self) -> None:
        """Delete the character under the cursor."""
        del self._characters[self.cursor : self.cursor + 1]

    def killToStart(self) -> None:
        """Delete from the start of the line to the cursor (Ctrl-U)."""
        del self._characters[: self.cursor]
        self.cursor = 0

    def killToEnd(self) -> None:
        """Delete from the cursor to the end of the line (Ctrl-K)."""
        del self._characters[self.cursor :]

    def previous(self) -> None:
        """Bring back the line sent before the one shown (up arrow)."""
        if self._position == 0:
            return
        if self._position == len(self._history):
            self._draft = self.text
        self._position -= 1
        self._show(self._history[self._position])

    def next(self) -> None:
        """Go forward in the history, back to the line being typed (down arrow)."""
        if self._position >= len(self._history):
            return
        self._position += 1
        if self._position == len(self._history):
            self._show(self._draft)
        else:
            self._show(self._history[self._position])

    def submit(self) -> str:
        """
        The line as typed, now cleared; a line with text in it is added to
        the history unless it repeats the last one.
        """
        text = self.text
        if text.strip() and (not self._history or self._history[-1] != text):
            self._history.append(text)
        self._characters = []
        self.cursor = 0
        self._position = len(self._history)
        self._draft = ""
        return text

    def _show(self, text: str) -> None:
        self._characters = list(text)
        self.cursor = len(self._characters)
