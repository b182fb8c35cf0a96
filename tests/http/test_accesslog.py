"""
Tests for L{twisted_services.http.accesslog}: the buffered access log writer,
on a L{Clock}, writing to real files and pipes through its thread.
"""

from __future__ import annotations

import os
import threading

from hypothesis import given, settings, strategies
from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.support.files import temporaryDirectory
from twisted_services.http.accesslog import (
    FIELD_CACHE_LONGEST,
    FIELD_CACHE_SIZE,
    FLUSH_INTERVAL,
    AccessLineFormatter,
    AccessLog,
)
from twisted_services.http.responses import escapeLogField
from twisted_services.server.listeners import StartupFailed
from twisted_services.server.reopening import IReopenable


def line(number: int) -> bytes:
    return b'127.0.0.1 - - [x] "GET /%d HTTP/1.1" 200 11 "-" "-"\n' % number


class AccessLogTests(SynchronousTestCase):
    """Lines are buffered, flushed on size, on a timer and on close."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.path = str(temporaryDirectory(self) / "access.log")

    def started(self, **kwargs: object) -> AccessLog:
        log = AccessLog(self.clock, self.path, **kwargs)  # type: ignore[arg-type]
        log.startService()
        self.addCleanup(log.close)
        return log

    def contents(self, path: str | None = None) -> bytes:
        with open(path or self.path, "rb") as file:
            return file.read()

    def test_reopenable(self) -> None:
        """It is an L{IReopenable} service, for SIGHUP."""
        self.assertTrue(verifyObject(IReopenable, AccessLog(self.clock)))

    def test_flushOnSize(self) -> None:
        """Lines wait until C{flushSize} bytes are waiting, then go at once."""
        log = self.started(flushSize=len(line(0)) * 3)
        log.write(line(0))
        log.write(line(1))
        self.assertEqual(log.buffered, 2 * len(line(0)))
        log.write(line(2))
        self.assertEqual(log.buffered, 0)

    def test_flushOnTimer(self) -> None:
        """A line waits at most C{flushInterval} seconds."""
        log = self.started()
        log.write(line(0))
        self.clock.advance(FLUSH_INTERVAL - 0.01)
        self.assertEqual(log.buffered, len(line(0)))
        self.clock.advance(0.01)
        self.assertEqual(log.buffered, 0)

    def test_closeLosesNothing(self) -> None:
        """Every line written before close is in the file, whole and in order."""
        log = self.started(maxPending=64 * 1024 * 1024)
        lines = [line(n) for n in range(20000)]
        for each in lines:
            log.write(each)
        log.close()
        self.assertEqual(self.contents(), b"".join(lines))
        self.assertEqual(log.dropped, 0)

    def test_reopen(self) -> None:
        """After logrotate renames the file, L{reopen} writes to a new one."""
        log = self.started()
        log.write(line(0))
        os.rename(self.path, self.path + ".1")
        log.reopen()
        log.write(line(1))
        log.close()
        self.assertEqual(self.contents(self.path + ".1"), line(0))
        self.assertEqual(self.contents(), line(1))

    def test_reopenFailsWritesOn(self) -> None:
        """A file that cannot be reopened is logged; lines go to the old one."""
        log = self.started()
        os.rename(self.path, self.path + ".1")
        os.chmod(os.path.dirname(self.path), 0o500)
        self.addCleanup(os.chmod, os.path.dirname(self.path), 0o700)
        if os.access(os.path.dirname(self.path), os.W_OK):
            self.skipTest("running as root: the directory stays writable")
        with capturedLogs() as events:
            log.reopen()
            log.write(line(1))
            log.close()
        self.assertIn("could not reopen", formatEvent(events[0]))
        self.assertEqual(self.contents(self.path + ".1"), line(1))

    def test_behindDropsAndCounts(self) -> None:
        """
        A consumer slower than the lines (a pipe nobody reads): up to
        C{maxPending} bytes wait, later lines are dropped and counted, and
        one throttled log line says so; the lines that do arrive are whole.
        """
        readEnd, writeEnd = os.pipe()
        self.addCleanup(os.close, readEnd)
        log = AccessLog(
            self.clock,
            f"/proc/self/fd/{writeEnd}",
            flushSize=4096,
            maxPending=16 * 1024,
        )
        log.startService()
        os.close(writeEnd)
        lines = [line(n) for n in range(5000)]  # about 270 KB
        with capturedLogs() as events:
            for each in lines:
                log.write(each)
            # The pipe (64 KiB) and maxPending hold far less than that.
            self.assertGreater(log.dropped, 2000)
            received: list[bytes] = []
            reader = threading.Thread(
                target=lambda: received.extend(
                    iter(lambda: os.read(readEnd, 65536), b"")
                )
            )
            reader.start()
            log.close()
            reader.join(10.0)
        got = b"".join(received).splitlines(keepends=True)
        self.assertEqual(len(got) + log.dropped, len(lines))
        # Whole lines, in order; which ones were dropped depends on when the
        # writer thread ran.
        numbers = [int(each.split(b"/")[1].split(b" ")[0]) for each in got]
        self.assertEqual([line(n) for n in numbers], got)
        self.assertEqual(numbers, sorted(set(numbers)))
        behind = "http: the access log is behind; dropped {} line(s)"
        self.assertEqual(
            [formatEvent(event) for event in events],
            [behind.format(1), behind.format(log.dropped - 1)],
        )


TIME = "06/Nov/1994:08:49:37 +0000"


class AccessLineFormatterTests(SynchronousTestCase):
    """
    L{AccessLineFormatter} writes Combined Log Format lines, escaping each
    field as L{escapeLogField} does, from what it remembers when it can.
    """

    def test_line(self) -> None:
        """Host, time, request line, status, size, referer and user agent."""
        formatter = AccessLineFormatter()
        self.assertEqual(
            formatter.line(
                b"127.0.2.7", TIME, b"GET", b"/?q=1", "1.1", 200, 11, b"r", b"curl"
            ),
            b'127.0.2.7 - - [06/Nov/1994:08:49:37 +0000] "GET /?q=1 HTTP/1.1" '
            b'200 11 "r" "curl"\n',
        )

    def test_noRequestLine(self) -> None:
        """Without a complete request line (no method) the request is C{-}."""
        formatter = AccessLineFormatter()
        self.assertEqual(
            formatter.line(b"::1", TIME, None, b"/x", "", 400, 0, None, None),
            b'::1 - - [06/Nov/1994:08:49:37 +0000] "-" 400 - "-" "-"\n',
        )

    @settings(max_examples=300, deadline=None)
    @given(
        method=strategies.sampled_from([b"GET", b"HEAD", b"M-SEARCH"])
        | strategies.binary(max_size=8),
        url=strategies.binary(max_size=40),
        version=strategies.sampled_from(["1.1", "1.0", "2.0"]) | strategies.text(),
        referer=strategies.none() | strategies.binary(max_size=20),
        agent=strategies.none() | strategies.binary(max_size=20),
        repeats=strategies.integers(1, 3),
    )
    def test_sameAsEscapingTheWholeLine(
        self,
        method: bytes,
        url: bytes,
        version: str,
        referer: bytes | None,
        agent: bytes | None,
        repeats: int,
    ) -> None:
        """
        Escaping the request line piece by piece, from memory or not, gives
        what escaping it whole gives: no field can forge another.
        """
        formatter = AccessLineFormatter()
        requestLine = (
            method + b" " + url + b" HTTP/" + version.encode("utf-8", "surrogateescape")
        )
        quoted = [escapeLogField(each) for each in (requestLine, referer, agent)]
        expected = (
            f'127.0.0.1 - - [{TIME}] "{quoted[0]}" 200 11 "{quoted[1]}" "{quoted[2]}"\n'
        ).encode("ascii")
        for _ in range(repeats):
            line = formatter.line(
                b"127.0.0.1", TIME, method, url, version, 200, 11, referer, agent
            )
            self.assertEqual(line, expected)

    def test_memoryBounded(self) -> None:
        """
        At most L{FIELD_CACHE_SIZE} escaped fields are remembered, none
        longer than L{FIELD_CACHE_LONGEST}, however many distinct ones come.
        """
        formatter = AccessLineFormatter()
        for number in range(FIELD_CACHE_SIZE * 3):
            formatter.line(
                b"127.0.0.1",
                TIME,
                b"GET",
                b"/%d" % number,
                str(number),
                200,
                11,
                b"x" * (FIELD_CACHE_LONGEST + 1 + number),
                None,
            )
        self.assertLessEqual(len(formatter._escaped), FIELD_CACHE_SIZE)
        self.assertLessEqual(len(formatter._versions), FIELD_CACHE_SIZE)
        self.assertTrue(
            all(len(each) <= FIELD_CACHE_LONGEST for each in formatter._escaped)
        )


class UnopenableFileTests(SynchronousTestCase):
    """A log file that cannot be opened stops start-up cleanly."""

    def test_startupFails(self) -> None:
        """
        Opening happens at privileged start; failing there logs one critical
        line and raises L{StartupFailed}, which ends twistd with status 1 and
        no traceback (and reaches daemon mode's launching command).
        """
        path = os.path.join(temporaryDirectory(self), "missing", "access.log")
        accessLog = AccessLog(Clock(), path)
        with capturedLogs() as events:
            with self.assertRaises(StartupFailed) as raised:
                accessLog.privilegedStartService()
        expected = f"http: cannot open access log {path!r}: No such file or directory"
        self.assertEqual(str(raised.exception), expected)
        self.assertEqual(raised.exception.code, 1)
        self.assertEqual([formatEvent(e) for e in events], [expected])
