"""
Tests for L{twisted_services.systemd.journal}: journal lines with syslog priority
prefixes and no timestamps, and twistd's own format elsewhere.
"""

from __future__ import annotations

import io
import sys

from twisted.logger import FileLogObserver, Logger, LogLevel, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.systemd.journal import (
    errorLine,
    formatJournalEvent,
    journalLogObserver,
    observer,
    priority,
)


def logged(emit: object) -> str:
    """What L{journalLogObserver} writes for the events C{emit(log)} logs."""
    out = io.StringIO()
    publisher = LogPublisher(journalLogObserver(out))
    emit(Logger(namespace="demo", observer=publisher))  # type: ignore[operator]
    return out.getvalue()


class ErrorLineTests(SynchronousTestCase):
    """L{errorLine} marks a start-up error for journald, and only there."""

    def test_underSystemd(self) -> None:
        """With C{JOURNAL_STREAM} set the line gets the error priority C{<3>}."""
        self.assertEqual(errorLine("boom", {"JOURNAL_STREAM": "8:1234"}), "<3>boom")

    def test_elsewhere(self) -> None:
        """Elsewhere the line is left as it is."""
        self.assertEqual(errorLine("boom", {}), "boom")


class PriorityTests(SynchronousTestCase):
    """L{priority} maps Twisted's log levels to syslog priorities."""

    def test_levels(self) -> None:
        """Critical and error are 3, warn 4, info 6, debug 7."""
        self.assertEqual(
            [priority({"log_level": level}) for level in LogLevel.iterconstants()],
            [7, 6, 4, 3, 3],
        )

    def test_legacy(self) -> None:
        """An event without a level is an error if it says so, else info."""
        self.assertEqual(priority({"isError": 1}), 3)
        self.assertEqual(priority({}), 6)


class JournalFormatTests(SynchronousTestCase):
    """L{journalLogObserver} writes journal lines."""

    def test_prefixes(self) -> None:
        """Each level's line starts with its priority, then the system."""
        output = logged(
            lambda log: [
                log.debug("d"),
                log.info("listening on {port}", port=8888),
                log.warn("w"),
                log.error("e"),
                log.critical("c"),
            ]
        )
        self.assertEqual(
            output.splitlines(),
            [
                "<7>[demo#debug] d",
                "<6>[demo#info] listening on 8888",
                "<4>[demo#warn] w",
                "<3>[demo#error] e",
                "<3>[demo#critical] c",
            ],
        )

    def test_noTimestamp(self) -> None:
        """No timestamp: journald adds its own."""
        output = logged(lambda log: log.info("hello"))
        self.assertTrue(output.startswith("<6>[demo#info] hello"), output)
        self.assertNotRegex(output, r"\d{4}-\d\d-\d\d")

    def test_traceback(self) -> None:
        """A failure's traceback follows, every line with the same prefix."""

        def fail(log: Logger) -> None:
            try:
                1 / 0  # noqa: B018
            except ZeroDivisionError:
                log.failure("while {doing}", doing="dividing")

        lines = logged(fail).splitlines()
        self.assertEqual(lines[0], "<3>[demo#critical] while dividing")
        self.assertEqual(lines[1], "<3>Traceback (most recent call last):")
        self.assertEqual(lines[-1], "<3>builtins.ZeroDivisionError: division by zero")
        self.assertGreater(len(lines), 3)
        self.assertTrue(all(line.startswith("<3>") for line in lines), lines)

    def test_multilineMessage(self) -> None:
        """A message with line breaks keeps its priority on every line."""
        output = logged(lambda log: log.warn("one\ntwo"))
        self.assertEqual(output, "<4>[demo#warn] one\n<4>two\n")

    def test_nothingToSay(self) -> None:
        """An event with no format and no failure writes nothing."""
        self.assertIsNone(formatJournalEvent({"log_level": LogLevel.info}))

    def test_flushed(self) -> None:
        """Each event is flushed at once, so lines reach journald as they happen."""

        class Counting(io.StringIO):
            flushes = 0

            def flush(self) -> None:
                self.flushes += 1

        out = Counting()
        LogPublisher(journalLogObserver(out))(
            {"log_format": "x", "log_level": LogLevel.info}
        )
        self.assertEqual(out.flushes, 1)


class ObserverTests(SynchronousTestCase):
    """L{observer}, the C{--logger} factory, chooses the format by environment."""

    def setUp(self) -> None:
        self.out = io.StringIO()
        self.patch(sys, "stdout", self.out)

    def emit(self) -> str:
        """Log one info event to the chosen observer; return its output."""
        chosen = observer(self.environ)
        Logger(namespace="demo", observer=LogPublisher(chosen)).info("hello")
        return self.out.getvalue()

    def test_journal(self) -> None:
        """With C{JOURNAL_STREAM}, journal lines go to stdout."""
        self.environ = {"JOURNAL_STREAM": "8:12345"}
        self.assertEqual(self.emit(), "<6>[demo#info] hello\n")

    def test_fallback(self) -> None:
        """Without it, twistd's usual timestamped lines go to stdout."""
        self.environ: dict[str, str] = {}
        self.assertIsInstance(observer(self.environ), FileLogObserver)
        self.assertRegex(self.emit(), r"^\d{4}-\d\d-\d\dT\S+ \[demo#info\] hello\n$")

    def test_keepsStdout(self) -> None:
        """
        The observer keeps the stdout it was made with: twistd replaces
        C{sys.stdout} after calling the factory.
        """
        self.environ = {"JOURNAL_STREAM": "8:12345"}
        chosen = observer(self.environ)
        self.patch(sys, "stdout", io.StringIO())
        chosen({"log_format": "hello", "log_level": LogLevel.info})
        self.assertEqual(self.out.getvalue(), "<6>[-#info] hello\n")
