"""
The one C{main()} of the command-line clients.

Every client parses its C{usage.Options} the same way (a usage error is one
line on standard error, the synopsis, and exit status 2), logs only what
goes wrong (to standard error, from level warn up: nothing is logged while
all is well), and runs its coroutine under L{react}, which exits with the
status the coroutine chose. Standard I/O makes the descriptors it uses
non-blocking, and a terminal shares them with the shell that started us, so
their file flags are put back on the way out.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from twisted.internet.task import react
from twisted.logger import (
    FilteringLogObserver,
    LogBeginner,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python import usage

from twisted_services import __version__
from twisted_services.clients.terminal import restoringFileFlags

USAGE_ERROR = 2
"""The exit status for a bad command line."""

VERSION = f"twisted-services {__version__}"
"""What C{--version} prints."""


class ClientOptions(usage.Options):
    """
    The base of every client's command line: C{--version} names this
    project's version (C{usage.Options} would print Twisted's).
    """

    def opt_version(self) -> NoReturn:
        """Display the twisted-services version and exit."""
        sys.stdout.write(VERSION + "\n")
        sys.stdout.flush()
        raise SystemExit(0)


def logWarningsTo(stderr: TextIO, logBeginner: LogBeginner = globalLogBeginner) -> None:
    """
    Log events of level warn and above to C{stderr}, and nothing else: a
    client says nothing of its own unless something goes wrong.
    """
    logBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(stderr),
                [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
            )
        ],
        redirectStandardIO=False,
    )


def runClient(
    program: str,
    options: usage.Options,
    client: Callable[..., Any],
    argv: Sequence[str] | None = None,
    *,
    descriptors: Sequence[int] = (0, 1, 2),
    run: Callable[..., NoReturn] = react,
    logBeginner: LogBeginner = globalLogBeginner,
) -> NoReturn:
    """
    Parse C{argv} into C{options}, then run C{client(reactor, options)} under
    C{run} and exit with its status.

    @param program: the name that starts every usage error (C{echo: ...}).
    @param client: the client's body, a coroutine function (or one returning
        a L{Deferred}) that exits through L{SystemExit} to fail.
    @param argv: the arguments, by default C{sys.argv[1:]}.
    @param descriptors: the file descriptors whose flags are put back after
        (all three standard ones: on a terminal they share their flags).
    @param run: L{react}, or a stand-in for tests.
    @param logBeginner: where logging begins, or a stand-in for tests.
    @raise SystemExit: always: status 2 for a bad command line (and 0 after
        C{--help} or C{--version}), else whatever C{run} exits with.
    """
    stderr = sys.stderr
    try:
        options.parseOptions(sys.argv[1:] if argv is None else list(argv))
    except usage.UsageError as error:
        stderr.write(f"{program}: {error}\n{options.synopsis}\n")
        raise SystemExit(USAGE_ERROR) from None
    logWarningsTo(stderr, logBeginner)
    with restoringFileFlags(descriptors):
        run(client, [options])
