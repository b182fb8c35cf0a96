"""
What a supervisor and its workers say to each other, over two pipes.

From a worker, one JSON object a line on its report pipe: its log events,
as C{twisted.logger}'s C{eventAsJSON} writes them, so that they reach
wherever the supervisor logs (its C{--logfile}, the journal), and
L{SERVING}, once every listener of the worker serves.

To a worker, on its standard input: L{RETIRE}, one line, which asks it to
stop accepting and then to stop as on SIGTERM; and the end of the pipe, the
supervisor being gone, which asks it to stop at once, so that no worker
outlives its supervisor holding the ports.

Both ways are lines, so a request and its answer fit here too: a
supervisor's C{--metrics} asks each worker for its metrics with
L{metricsRequest} on its standard input, and the worker answers with one
control line, L{encodeMetrics}: its metric families as JSON samples (no
text format to parse back), which the supervisor merges (see
L{twisted_services.server.workers.metrics}).
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.logger import eventAsJSON, eventFromJSON

SERVING = {"control": "serving"}
RETIRE = b"retire\n"
METRICS = "metrics"

# Longest line a worker reads from its supervisor.
MAX_REQUEST = 64

# Longest report line read: longer ones (a runaway log event) are dropped.
MAX_LINE = 1024 * 1024


def encodeControl(message: dict[str, str]) -> bytes:
    """One control line, such as L{SERVING}."""
    return json.dumps(message).encode("ascii") + b"\n"


def encodeEvent(event: dict[str, Any]) -> bytes:
    """One log event, as a line."""
    return eventAsJSON(event).encode("utf-8") + b"\n"


def metricsRequest(requestId: int) -> bytes:
    """The line asking a worker for its metrics, answered with C{requestId}."""
    return f"{METRICS} {requestId}\n".encode("ascii")


def parseMetricsRequest(line: bytes) -> int | None:
    """The id of a L{metricsRequest} line, or C{None} for any other line."""
    words = line.split()
    if len(words) == 2 and words[0] == METRICS.encode("ascii") and words[1].isdigit():
        return int(words[1])
    return None


def encodeMetrics(requestId: int, families: list[dict[str, Any]]) -> bytes:
    """A worker's answer to L{metricsRequest}: its families, as data."""
    record = {"control": METRICS, "id": requestId, "families": families}
    return json.dumps(record, separators=(",", ":")).encode("ascii") + b"\n"


def decodeReport(line: bytes) -> tuple[str | None, dict[str, Any]]:
    """
    A report line read back: C{(control, record)} for a control message,
    C{(None, event)} for a log event.

    @raise ValueError: for a line that is neither.
    """
    text = line.decode("utf-8")
    record = json.loads(text)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    control = record.get("control")
    if isinstance(control, str):
        return control, record
    return None, eventFromJSON(text)


def decodeLine(line: bytes) -> tuple[str | None, dict[str, Any] | None]:
    """
    A report line read back: C{(control, None)} for a control message,
    C{(None, event)} for a log event.

    @raise ValueError: for a line that is neither.
    """
    control, record = decodeReport(line)
    return (control, None) if control is not None else (None, record)


class LineSplitter:
    """
    Splits a byte stream into lines, none longer than L{MAX_LINE}: the rest
    of a longer one is skipped, and counted in L{dropped}.
    """

    def __init__(self, maxLine: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._skipping = False
        self._maxLine = maxLine
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The lines C{data} completes."""
        self._buffer += data
        lines = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False
            else:
                lines.append(line)
        if len(self._buffer) > self._maxLine:
            if not self._skipping:
                self.dropped += 1
            self._skipping = True
            self._buffer.clear()
        return lines


class Reporter:
    """
    A worker's end of its report pipe: writes whole lines, blocking, so that
    a log event is never lost nor interleaved, even one logged as the
    process exits.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def send(self, line: bytes) -> None:
        """Write C{line}; a supervisor that is gone makes this a no-op."""
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            pass

    def __call__(self, event: dict[str, Any]) -> None:
        """An observer for C{twisted.logger}: send C{event}."""
        self.send(encodeEvent(event))

    def serving(self) -> None:
        """Say that every listener serves."""
        self.send(encodeControl(SERVING))
