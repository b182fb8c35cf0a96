"""
The http service's access log, written the way nginx writes its own: lines
collect in memory and go out in large writes (when C{flushSize} bytes are
waiting, every C{flushInterval} seconds, and when the service stops), never
one log event per request.

The writes happen in a thread of the log's own, in order, so neither a slow
pipe (stdout read by journald or a terminal) nor a slow disk can block the
reactor; file descriptor 1 stays blocking, as twistd's own log writing to
stdout expects. What waits for that thread is bounded by C{maxPending}:
past it lines are dropped and counted, and a throttled log line says so.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from typing import Protocol

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorCore, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from twisted_services.core.reporting import ThrottledReport
from twisted_services.http.responses import escapeLogField
from twisted_services.server.listeners import StartupFailed
from twisted_services.server.reopening import IReopenable

FLUSH_SIZE = 64 * 1024
"""Bytes of lines that make a write at once, without waiting for the timer."""

FLUSH_INTERVAL = 0.5
"""Seconds a line waits at most before it is handed to the writer."""

MAX_PENDING = 1024 * 1024
"""
Bytes of lines waiting to be written past which new lines are dropped: about
half a second of lines at 40,000 requests a second. More would let a reader
that stalls (or clients that pipeline and never read, each answer logged)
pin that much memory.
"""

DROP_REPORT_INTERVAL = 10.0
"""Seconds between two log lines about dropped access log lines."""

STOP_TIMEOUT = 5.0
"""Seconds stopping waits for the writer to write what is left."""


# Every byte a log field may hold as it is: printable ASCII but the quote
# and the backslash (as escapeLogField has it).
_SAFE = bytes(byte for byte in range(0x20, 0x7F) if byte not in b'"\\')

FIELD_CACHE_SIZE = 1024
FIELD_CACHE_LONGEST = 256
"""
How many escaped fields an L{AccessLineFormatter} remembers, and the longest
it remembers: at most 256 KiB.
"""


_LINE = b'%s - - [%s] "%s %s HTTP/%s" %d %s "%s" "%s"\n'
_NO_REQUEST_LINE = b'%s - - [%s] "-" %d %s "%s" "%s"\n'


class AccessLineFormatter:
    """
    Formats access log lines, remembering what it escaped lately: the same
    targets, methods and user agents come again and again, and the log time
    changes once a second.

    It runs on the reactor for every request, so a line is one C{%} format
    over fields looked up in that memory, with no call per field for what
    was seen before.
    """

    def __init__(self) -> None:
        self._escaped: dict[bytes, bytes] = {}
        self._versions: dict[str, bytes] = {}
        self._time = ""
        self._timeBytes = b""

    def _escape(self, value: bytes) -> bytes:
        """
        C{value} escaped as L{escapeLogField} does (but an empty one is left
        empty: it may be a piece of the request line), as bytes.
        """
        escaped = self._escaped.get(value)
        if escaped is None:
            if value.translate(None, _SAFE):
                escaped = escapeLogField(value).encode("ascii")
            else:
                escaped = value
            if len(value) <= FIELD_CACHE_LONGEST:
                if len(self._escaped) >= FIELD_CACHE_SIZE:
                    self._escaped.clear()
                self._escaped[value] = escaped
        return escaped

    def _version(self, version: str) -> bytes:
        """C{version} as escaped bytes; the few there are, remembered."""
        escaped = self._versions.get(version)
        if escaped is None:
            escaped = self._escape(version.encode("utf-8", "surrogateescape"))
            if len(self._versions) < FIELD_CACHE_SIZE:
                self._versions[version] = escaped
        return escaped

    def line(
        self,
        host: bytes,
        time: str,
        method: bytes | None,
        url: bytes,
        version: str,
        status: int,
        size: int,
        referer: bytes | None,
        agent: bytes | None,
    ) -> bytes:
        """
        One line of Combined Log Format, newline included. The request line
        is C{method}, C{url} and C{version} as received, or C{-} if
        C{method} is L{None} (the line was not complete).
        """
        if time is not self._time:
            self._time = time
            self._timeBytes = time.encode("ascii")
        escaped = self._escaped.get
        escape = self._escape
        sizeField = b"%d" % size if size else b"-"
        refererField = (escaped(referer) or escape(referer)) if referer else b"-"
        agentField = (escaped(agent) or escape(agent)) if agent else b"-"
        if method is None:
            return _NO_REQUEST_LINE % (
                host,
                self._timeBytes,
                status,
                sizeField,
                refererField,
                agentField,
            )
        return _LINE % (
            host,
            self._timeBytes,
            (escaped(method) or escape(method)) if method else b"",
            (escaped(url) or escape(url)) if url else b"",
            self._versions.get(version) or self._version(version),
            status,
            sizeField,
            refererField,
            agentField,
        )


class LineSink(Protocol):
    """Where L{HTTPProtocol} writes its access log lines: an L{AccessLog}."""

    def write(self, line: bytes) -> None: ...


_REOPEN = object()
_STOP = object()


class _Writer:
    """
    The thread that writes, in order, what L{AccessLog} hands it: blocks of
    bytes, or the commands to reopen the file or to stop.
    """

    _log = Logger()

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._fd = self._open()
        self._queue: deque[object] = deque()
        self._ready = threading.Condition()
        self.pending = 0
        # Started with the first line: a service that logs nothing (as in
        # the tests of its options) has no thread.
        self._thread: threading.Thread | None = None

    def _open(self) -> int:
        if self._path is None:
            return 1
        return os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def put(self, item: object, size: int = 0) -> None:
        if self._thread is None:
            if item is _STOP:
                self._close()
                return
            self._thread = threading.Thread(
                target=self._run, name="http-access-log", daemon=True
            )
            self._thread.start()
        with self._ready:
            self._queue.append(item)
            self.pending += size
            self._ready.notify()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _close(self) -> None:
        if self._path is not None:
            os.close(self._fd)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                item = self._queue.popleft()
            if item is _STOP:
                self._close()
                return
            if item is _REOPEN:
                self._reopen()
                continue
            assert isinstance(item, bytes)
            self._write(item)
            with self._ready:
                self.pending -= len(item)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            self._log.error(
                "http: could not write the access log: {error}", error=error
            )

    def _reopen(self) -> None:
        if self._path is None:
            return
        try:
            fd = self._open()
        except OSError as error:
            self._log.error(
                "http: could not reopen the access log {path}: {error}; "
                "writing on to the old file",
                path=self._path,
                error=error,
            )
            return
        os.close(self._fd)
        self._fd = fd


@implementer(IReopenable)
class AccessLog(Service):
    """
    Buffered access log lines, to C{path} or, if it is L{None}, to stdout
    (the journal, under systemd). L{reopen} opens C{path} again by name, for
    log rotation.

    @ivar dropped: lines dropped so far because the writer was behind.
    @ivar buffered: bytes of lines waiting for the next flush.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        path: str | None = None,
        flushSize: int = FLUSH_SIZE,
        flushInterval: float = FLUSH_INTERVAL,
        maxPending: int = MAX_PENDING,
    ) -> None:
        self.path = path
        self._reactor = reactor
        self._flushSize = flushSize
        self._maxPending = maxPending
        self._lines: list[bytes] = []
        self.buffered = 0
        self._writer: _Writer | None = None
        self._timer = LoopingCall(self.flush)
        self._timer.clock = reactor
        self._flushInterval = flushInterval
        self._drops = ThrottledReport(reactor, DROP_REPORT_INTERVAL, self._logDropped)
        self.dropped = 0
        self._closeScheduled = False

    def privilegedStartService(self) -> None:
        """
        Open the file while twistd still has its privileges (a log under
        C{/var/log} may be writable only by root).
        """
        super().privilegedStartService()
        self._openWriter()

    def startService(self) -> None:
        """
        Open the file (or take stdout) if not open yet, start the writer and
        the timer, and close once the reactor has shut down: the connections
        drain in the shutdown's "before" phase, and their last lines count too.
        """
        super().startService()
        self._openWriter()
        if not self._timer.running:
            self._timer.start(self._flushInterval, now=False)
        if not self._closeScheduled and IReactorCore.providedBy(self._reactor):
            self._closeScheduled = True
            self._reactor.addSystemEventTrigger("after", "shutdown", self.close)

    def _openWriter(self) -> None:
        """
        Open the file once; a file that cannot be opened stops start-up with
        one line, as a port that cannot be bound does.
        """
        if self._writer is not None:
            return
        try:
            self._writer = _Writer(self.path)
        except OSError as error:
            reason = error.strerror or str(error)
            self._log.critical(
                "http: cannot open access log {path!r}: {reason}",
                path=self.path,
                reason=reason,
            )
            raise StartupFailed(
                f"http: cannot open access log {self.path!r}: {reason}"
            ) from None

    def close(self) -> None:
        """
        Write every line logged so far and wait (at most L{STOP_TIMEOUT}
        seconds) until it is written: no line is lost on SIGTERM.
        """
        if self._timer.running:
            self._timer.stop()
        self.flush()
        self._drops.stop()
        writer = self._writer
        if writer is not None:
            self._writer = None
            writer.put(_STOP)
            writer.join(STOP_TIMEOUT)

    def write(self, line: bytes) -> None:
        """Log C{line} (which ends with a newline), or drop it if behind."""
        writer = self._writer
        if writer is None or writer.pending + self.buffered > self._maxPending:
            self.dropped += 1
            self._drops.record()
            return
        self._lines.append(line)
        self.buffered += len(line)
        if self.buffered >= self._flushSize:
            self.flush()

    def flush(self) -> None:
        """Hand the lines waiting to the writer."""
        if not self._lines or self._writer is None:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        self.buffered = 0
        self._writer.put(data, len(data))

    def reopen(self) -> None:
        """Write what is waiting, then open C{path} again by name."""
        self.flush()
        if self._writer is not None:
            self._writer.put(_REOPEN)

    def _logDropped(self, count: int) -> None:
        self._log.warn(
            "http: the access log is behind; dropped {count} line(s)",
            count=count,
        )
