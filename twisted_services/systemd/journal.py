"""
Log output for systemd's journal, as a C{twistd --logger}:

    twistd -n --pidfile= --logger=twisted_services.systemd.journal.observer echo

Under systemd (C{JOURNAL_STREAM} set: stdout is connected to journald) every
line goes to stdout without twistd's timestamp, since journald adds its own,
and starts with a syslog priority prefix (C{<3>} for errors, C{<6>} for
information) that journald turns into the entry's priority, so that
C{journalctl -p err} finds the errors. A traceback continues on further lines,
each with the same prefix, so that journald keeps them at that priority.

Anywhere else the output is twistd's usual timestamped text on stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    eventAsText,
    textFileLogObserver,
)

# syslog priorities (sd-daemon.h's SD_ERR and friends); critical shares
# error's, the level journalctl -p err and the unit docs speak of.
PRIORITIES = {
    LogLevel.critical: 3,
    LogLevel.error: 3,
    LogLevel.warn: 4,
    LogLevel.info: 6,
    LogLevel.debug: 7,
}


def priority(event: LogEvent) -> int:
    """
    The syslog priority of C{event}: from its C{log_level}, or for a legacy
    event without one, error if it says C{isError}, else info.
    """
    level = event.get("log_level")
    if level in PRIORITIES:
        return PRIORITIES[level]
    return 3 if event.get("isError") else 6


def formatJournalEvent(event: LogEvent) -> str | None:
    """
    C{event} as journal lines: C{<N>[system] text}, no timestamp, and every
    further line (a traceback, a multi-line message) with the same C{<N>}.
    L{None} for an event with nothing to say.
    """
    text = eventAsText(event, includeTimestamp=False)
    if not text:
        return None
    prefix = f"<{priority(event)}>"
    return "".join(f"{prefix}{line}\n" for line in text.splitlines())


def errorLine(text: str, environ: Mapping[str, str] | None = None) -> str:
    """
    C{text} as a start-up error for standard error: with journald's C{<3>}
    prefix under systemd (C{JOURNAL_STREAM} set), so that an exit message
    printed before any log observer runs still counts as an error there.
    """
    if environ is None:
        environ = os.environ
    prefix = f"<{PRIORITIES[LogLevel.error]}>" if environ.get("JOURNAL_STREAM") else ""
    return prefix + text


def journalLogObserver(outFile: IO[Any]) -> ILogObserver:
    """A log observer writing L{formatJournalEvent} lines to C{outFile}."""
    # FileLogObserver flushes after every event.
    return FileLogObserver(outFile, formatJournalEvent)


def observer(environ: Mapping[str, str] | None = None) -> ILogObserver:
    """
    The C{--logger} factory: journal lines on stdout when C{JOURNAL_STREAM}
    says stdout goes to journald, twistd's own format otherwise.

    Called by twistd before it redirects C{sys.stdout} into the log, so the
    observer keeps the real stdout.
    """
    if environ is None:
        environ = os.environ
    if environ.get("JOURNAL_STREAM"):
        return journalLogObserver(sys.stdout)
    return textFileLogObserver(sys.stdout)
