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
supervisor's C{--metrics} can ask each worker for its exposition on its
standard input and read it back as a control line, summing or labelling
them by worker, without a listener of the workers' own.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.logger import eventAsJSON, eventFromJSON

SERVING = {"control": "serving"}
RETIRE = b"retire\n"

# Longest report line read: longer ones (a runaway log event) are dropped.
MAX_LINE = 1024 * 1024


def encodeControl(message: dict[str, str]) -> bytes:
    """One control line, such as L{SERVING}."""
    return json.dumps(message).encode("ascii") + b"\n"


def encodeEvent(event: dict[str, Any]) -> bytes:
    """One log event, as a line."""
    return eventAsJSON(event).encode("utf-8") + b"\n"


def decodeLine(line: bytes) -> tuple[str | None, dict[str, Any] | None]:
    """
    A report line read back: C{(control, None)} for a control message,
    C{(None, event)} for a log event.

    @raise ValueError: for a line that is neither.
    """
    text = line.decode("utf-8")
    record = json.loads(text)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    control = record.get("control")
    if isinstance(control, str):
        return control, None
    return None, eventFromJSON(text)


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
