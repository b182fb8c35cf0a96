"""
Tests for L{twisted_services.clients.editline}: the line being typed, its
history, and where its characters land on a terminal.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_services.clients.editline import EditLine, cursorAt


def typed(*lines: str, historySize: int = 500) -> EditLine:
    """An L{EditLine} after C{lines} were typed and submitted."""
    line = EditLine(historySize=historySize)
    for text in lines:
        line.insert(text)
        line.submit()
    return line


class EditingTests(SynchronousTestCase):
    """L{EditLine} edits at its cursor."""

    def test_insertAtCursor(self) -> None:
        """Text goes in where the cursor is; the cursor moves past it."""
        line = EditLine()
        line.insert("helo")
        line.left()
        line.insert("l")
        self.assertEqual((line.text, line.cursor), ("hello", 4))

    def test_movement(self) -> None:
        """Left and right stop at the ends; home and end go there."""
        line = EditLine()
        line.insert("ab")
        line.right()
        self.assertEqual(line.cursor, 2)
        line.home()
        line.left()
        self.assertEqual(line.cursor, 0)
        line.end()
        self.assertEqual(line.cursor, 2)

    def test_deleting(self) -> None:
        """Backspace, Delete, Ctrl-U and Ctrl-K delete what readline does."""
        line = EditLine()
        line.insert("abcdef")
        line.backspace()
        self.assertEqual(line.text, "abcde")
        line.home()
        line.backspace()
        line.delete()
        self.assertEqual(line.text, "bcde")
        line.right()
        line.right()
        line.killToEnd()
        self.assertEqual(line.text, "bc")
        line.killToStart()
        self.assertEqual((line.text, line.cursor), ("", 0))

    def test_maxLength(self) -> None:
        """Text that would pass the limit is refused whole; up to it is taken."""
        line = EditLine(maxLength=5)
        self.assertTrue(line.insert("abcd"))
        self.assertFalse(line.insert("ef"))
        self.assertTrue(line.insert("e"))
        self.assertFalse(line.insert("f"))
        self.assertEqual(line.text, "abcde")

    def test_submit(self) -> None:
        """Submitting returns the text and starts an empty line."""
        line = EditLine()
        line.insert("hi")
        self.assertEqual(line.submit(), "hi")
        self.assertEqual((line.text, line.cursor), ("", 0))


class HistoryTests(SynchronousTestCase):
    """Up and down walk the submitted lines, and the draft is kept."""

    def test_upAndDown(self) -> None:
        """Up goes to older lines, down back to newer ones and the draft."""
        line = typed("one", "two")
        line.insert("dra")
        line.previous()
        self.assertEqual((line.text, line.cursor), ("two", 3))
        line.previous()
        self.assertEqual(line.text, "one")
        line.previous()
        self.assertEqual(line.text, "one")
        line.next()
        self.assertEqual(line.text, "two")
        line.next()
        self.assertEqual(line.text, "dra")
        line.next()
        self.assertEqual(line.text, "dra")

    def test_blankAndRepeatsNotKept(self) -> None:
        """Blank lines and a repeat of the last line do not go in the history."""
        self.assertEqual(typed("a", " ", "", "a", "b", "a").history, ["a", "b", "a"])

    def test_bounded(self) -> None:
        """Only the newest lines, up to the history size, are kept."""
        line = typed(*[str(n) for n in range(10)], historySize=3)
        self.assertEqual(line.history, ["7", "8", "9"])


class CursorAtTests(SynchronousTestCase):
    """L{cursorAt} knows where a terminal puts the cursor."""

    def test_withinRow(self) -> None:
        """Short text stays on the first row."""
        self.assertEqual(cursorAt("", 10), (0, 0))
        self.assertEqual(cursorAt("> hi", 10), (0, 4))

    def test_wraps(self) -> None:
        """Text longer than a row goes on the next; a full row ends at its start."""
        self.assertEqual(cursorAt("x" * 25, 10), (2, 5))
        self.assertEqual(cursorAt("x" * 20, 10), (2, 0))

    def test_wideCharacters(self) -> None:
        """
        A wide character takes two columns and wraps whole when one is
        left; a combining accent takes none.
        """
        self.assertEqual(cursorAt("\u4f60\u597d", 10), (0, 4))
        self.assertEqual(cursorAt("x" * 9 + "\u4f60", 10), (1, 2))
        self.assertEqual(cursorAt("e\u0301", 10), (0, 1))
