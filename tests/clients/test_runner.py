"""
Tests for L{twisted_services.clients.runner}: the one C{main()} of the
clients, run with a stand-in for C{react} and a log beginner of its own, so
no reactor runs and the global log is untouched.
"""

from __future__ import annotations

import fcntl
import io
import os
import sys
import warnings
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, NoReturn

from twisted.logger import LogBeginner, Logger, LogPublisher
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from twisted_services import __version__
from twisted_services.clients.runner import (
    USAGE_ERROR,
    VERSION,
    ClientOptions,
    logWarningsTo,
    runClient,
)


def assertPrintsVersion(
    testCase: SynchronousTestCase, options: usage.Options, *arguments: str
) -> None:
    """
    Assert that parsing C{arguments} prints C{twisted-services VERSION} (not
    Twisted's version) and exits 0: every client's command line must.
    """
    stdout = io.StringIO()
    testCase.patch(sys, "stdout", stdout)
    with testCase.assertRaises(SystemExit) as raised:
        options.parseOptions(list(arguments))
    testCase.assertEqual(raised.exception.code, 0)
    testCase.assertEqual(stdout.getvalue(), f"twisted-services {__version__}\n")


class Options(ClientOptions):
    """A client's command line: C{[--loud] WORD}."""

    synopsis = "Usage: python -m example [--loud] WORD"
    optFlags = [["loud", "l", "Shout."]]

    def parseArgs(self, word: str) -> None:
        self["word"] = word

    def postOptions(self) -> None:
        if not self["word"].isalpha():
            raise usage.UsageError(f"bad word {self['word']!r}")


async def client(reactor: object, options: Options) -> None:
    """A client body; the stand-in for C{react} never calls it."""


class FakeReact:
    """Stands in for C{react}: records its call and exits as C{react} would."""

    def __init__(self, status: int = 0, during: Callable[[], None] = lambda: None):
        self.calls: list[tuple[Any, list[Any]]] = []
        self._status = status
        self._during = during

    def __call__(self, main: Any, argv: list[Any]) -> NoReturn:
        self.calls.append((main, argv))
        self._during()
        raise SystemExit(self._status)


def logBeginner() -> tuple[LogBeginner, LogPublisher]:
    """
    A L{LogBeginner} of its own, so that tests leave the global log alone,
    and the publisher to log to it through.
    """
    publisher = LogPublisher()
    beginner = LogBeginner(
        publisher,
        io.StringIO(),
        SimpleNamespace(stdout=io.StringIO(), stderr=io.StringIO()),
        SimpleNamespace(showwarning=warnings.showwarning),
    )
    return beginner, publisher


class RunClientTests(SynchronousTestCase):
    """L{runClient} parses, begins logging and runs the client."""

    def setUp(self) -> None:
        self.stderr = io.StringIO()
        self.stdout = io.StringIO()
        self.patch(sys, "stderr", self.stderr)
        self.patch(sys, "stdout", self.stdout)
        self.beginner, self.publisher = logBeginner()

    def runMain(
        self,
        argv: list[str] | None,
        react: FakeReact,
        descriptors: tuple[int, ...] = (),
    ) -> int | str | None:
        """Run L{runClient} on C{argv}; the exit status."""
        with self.assertRaises(SystemExit) as raised:
            runClient(
                "example",
                Options(),
                client,
                argv,
                descriptors=descriptors,
                run=react,
                logBeginner=self.beginner,
            )
        return raised.exception.code

    def test_runsClient(self) -> None:
        """The client runs under C{react} with the parsed options, its status kept."""
        react = FakeReact(status=3)
        self.assertEqual(self.runMain(["--loud", "hello"], react), 3)
        [(main, [options])] = react.calls
        self.assertIs(main, client)
        self.assertEqual((options["word"], options["loud"]), ("hello", 1))
        self.assertEqual(self.stderr.getvalue(), "")

    def test_argvDefault(self) -> None:
        """Without C{argv} the arguments are C{sys.argv[1:]}."""
        self.patch(sys, "argv", ["example", "world"])
        react = FakeReact()
        self.assertEqual(self.runMain(None, react), 0)
        self.assertEqual(react.calls[0][1][0]["word"], "world")

    def test_usageError(self) -> None:
        """
        A usage error is one line naming the program, then the synopsis, on
        standard error; the status is 2 and nothing runs.
        """
        react = FakeReact()
        self.assertEqual(self.runMain(["123"], react), USAGE_ERROR)
        self.assertEqual(USAGE_ERROR, 2)
        self.assertEqual(
            self.stderr.getvalue(),
            "example: bad word '123'\nUsage: python -m example [--loud] WORD\n",
        )
        self.assertEqual(react.calls, [])

    def test_getoptError(self) -> None:
        """An unknown option is a usage error like any other."""
        self.assertEqual(self.runMain(["--quiet", "hello"], FakeReact()), USAGE_ERROR)
        self.assertTrue(self.stderr.getvalue().startswith("example: "))

    def test_version(self) -> None:
        """C{--version} prints this project's version and exits 0 without running."""
        react = FakeReact()
        self.assertEqual(self.runMain(["--version"], react), 0)
        self.assertEqual(self.stdout.getvalue(), f"twisted-services {__version__}\n")
        self.assertEqual(react.calls, [])

    def test_warningsLogged(self) -> None:
        """Once running, warnings and errors are logged to standard error."""

        def logSome() -> None:
            log = Logger(namespace="example", observer=self.publisher)
            log.info("all is well")
            log.warn("careful: {what}", what="ice")

        self.runMain(["hello"], FakeReact(during=logSome))
        self.assertIn("careful: ice", self.stderr.getvalue())
        self.assertNotIn("all is well", self.stderr.getvalue())

    def test_fileFlagsRestored(self) -> None:
        """The descriptors' file flags are put back after the client ran."""
        readEnd, writeEnd = os.pipe()
        self.addCleanup(os.close, readEnd)
        self.addCleanup(os.close, writeEnd)
        before = fcntl.fcntl(readEnd, fcntl.F_GETFL)

        def makeNonBlocking() -> None:
            os.set_blocking(readEnd, False)
            self.assertNotEqual(fcntl.fcntl(readEnd, fcntl.F_GETFL), before)

        self.runMain(["hello"], FakeReact(during=makeNonBlocking), (readEnd,))
        self.assertEqual(fcntl.fcntl(readEnd, fcntl.F_GETFL), before)


class LogWarningsToTests(SynchronousTestCase):
    """L{logWarningsTo} logs only what goes wrong."""

    def test_levels(self) -> None:
        """Events from warn up reach the stream; debug and info do not."""
        beginner, publisher = logBeginner()
        stream = io.StringIO()
        logWarningsTo(stream, beginner)
        log = Logger(namespace="example", observer=publisher)
        log.debug("debug line")
        log.info("info line")
        log.warn("warn line")
        log.error("error line")
        log.critical("critical line")
        text = stream.getvalue()
        for line in ["warn line", "error line", "critical line"]:
            self.assertIn(line, text)
        for line in ["debug line", "info line"]:
            self.assertNotIn(line, text)


class ClientOptionsTests(SynchronousTestCase):
    """L{ClientOptions} says this project's version, not Twisted's."""

    def test_version(self) -> None:
        """C{--version} writes C{twisted-services VERSION} and exits 0."""
        assertPrintsVersion(self, Options(), "--version")
        self.assertEqual(VERSION, f"twisted-services {__version__}")

    def test_help(self) -> None:
        """The help text describes C{--version} as this project's."""
        self.assertIn("twisted-services version", str(Options()))
        self.assertNotIn("Twisted version", str(Options()))
