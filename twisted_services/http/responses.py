"""
The bytes the http service answers with, and its access log lines.

Every fixed response (the hello-world route and each error) is built once, as
the bytes before its C{Date} value and the bytes after it; once a second
L{ResponseTable.refresh} splices the new date in and keeps the whole
responses, so answering a request is a list index. A response is named by an
index into L{ResponseTable.fixed}: its kind (L{HELLO}, L{NOT_FOUND}, ...),
plus L{NO_BODY} for a C{HEAD} request, plus one of L{PERSISTENT},
L{KEEP_ALIVE} or L{CLOSE} for the C{Connection} header.
"""

from __future__ import annotations

import math
import re
import time

from twisted_services import __version__

SERVER = f"twisted-services/{__version__}".encode()

TEXT = b"text/plain; charset=utf-8"
JSON = b"application/json"
ALLOWED = b"GET, HEAD"

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
"""The interim response to C{Expect: 100-continue} for a body we will read."""

# The Connection header a response carries: none (HTTP/1.1 persists by
# default), "keep-alive" (an HTTP/1.0 client asked for it) or "close".
PERSISTENT = 0
KEEP_ALIVE = 1
CLOSE = 2
NO_BODY = 3
"""Added to an index for the response to C{HEAD}: the same headers, no body."""

_SLOT = 6
"""Indexes per kind: three C{Connection} variants, with and without body."""

# Kinds of fixed response, each the first of its _SLOT indexes.
HELLO = 0
NOT_FOUND = 1 * _SLOT
METHOD_NOT_ALLOWED = 2 * _SLOT
BAD_REQUEST = 3 * _SLOT
PAYLOAD_TOO_LARGE = 4 * _SLOT
HEADERS_TOO_LARGE = 5 * _SLOT
REQUEST_TIMEOUT = 6 * _SLOT
SERVICE_UNAVAILABLE = 7 * _SLOT

# Kinds whose body is built for each request; negative, so that
# "kind >= 0" tells a fixed response from these.
HEALTH = -1
REQUEST_ECHO = -2

REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}

STATUS = {
    HELLO: 200,
    HEALTH: 200,
    REQUEST_ECHO: 200,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    BAD_REQUEST: 400,
    PAYLOAD_TOO_LARGE: 413,
    HEADERS_TOO_LARGE: 431,
    REQUEST_TIMEOUT: 408,
    SERVICE_UNAVAILABLE: 503,
}
"""The status code of each kind of response."""

SUCCESSES = frozenset({HELLO, HEALTH, REQUEST_ECHO})
"""Kinds that answer a request for a known route with an allowed method."""

_ERROR_KINDS = [
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    BAD_REQUEST,
    PAYLOAD_TOO_LARGE,
    HEADERS_TOO_LARGE,
    REQUEST_TIMEOUT,
    SERVICE_UNAVAILABLE,
]

_CONNECTION_HEADERS = {
    PERSISTENT: b"",
    KEEP_ALIVE: b"Connection: keep-alive\r\n",
    CLOSE: b"Connection: close\r\n",
}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def httpDate(seconds: float) -> bytes:
    """
    C{seconds} since the epoch as an IMF-fixdate (RFC 9110 section 5.6.7),
    e.g. C{Sun, 06 Nov 1994 08:49:37 GMT}; English names whatever the locale.
    """
    t = time.gmtime(seconds)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} "
        f"{t.tm_year:04d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    ).encode("ascii")


def logTimestamp(seconds: float) -> str:
    """C{seconds} since the epoch as Common Log Format time, in UTC."""
    t = time.gmtime(seconds)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def headerBlock(
    status: int,
    contentType: bytes,
    contentLength: int,
    connection: int,
    date: bytes,
) -> bytes:
    """
    The status line and headers, through the blank line, of a response: every
    response has C{Server}, C{Date}, C{Content-Type}, C{Content-Length} and
    C{X-Content-Type-Options: nosniff}; a 405 also has C{Allow}.

    @param connection: L{PERSISTENT}, L{KEEP_ALIVE} or L{CLOSE}.
    """
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status]),
            b"Server: %s\r\n" % SERVER,
            b"Date: %s\r\n" % date,
            b"Content-Type: %s\r\n" % contentType,
            b"Content-Length: %d\r\n" % contentLength,
            b"X-Content-Type-Options: nosniff\r\n",
            b"Allow: %s\r\n" % ALLOWED if status == 405 else b"",
            _CONNECTION_HEADERS[connection],
            b"\r\n",
        ]
    )


_DATE_MARK = b"\x00date\x00"


class ResponseTable:
    """
    The fixed responses with the current C{Date}, and the time for the
    access log, both rebuilt at most once a second.

    Callers pass the time (from their injected clock) to L{current}, or check
    L{validFrom} and L{validUntil} themselves and call L{refresh}, so this
    object reads no clock of its own.

    @ivar fixed: the fixed responses, indexed by kind + L{NO_BODY} (or 0) +
        connection.
    @ivar bodyLengths: the body length of each fixed response (0 for those
        to C{HEAD}), indexed like L{fixed}.
    @ivar date: the current C{Date} header value.
    @ivar logTime: the current time in Common Log Format.
    @ivar validFrom: the second the above are for...
    @ivar validUntil: ...and the second after it, when they go stale.
    """

    def __init__(self, message: bytes) -> None:
        bodies = {HELLO: message}
        for kind in _ERROR_KINDS:
            bodies[kind] = REASONS[STATUS[kind]] + b"\n"
        self._parts: list[tuple[bytes, bytes]] = []
        self.bodyLengths: list[int] = []
        for kind in sorted(bodies):
            body = bodies[kind]
            for noBody in (0, NO_BODY):
                for connection in (PERSISTENT, KEEP_ALIVE, CLOSE):
                    head = headerBlock(
                        STATUS[kind], TEXT, len(body), connection, _DATE_MARK
                    )
                    before, after = head.split(_DATE_MARK)
                    self._parts.append((before, after + (b"" if noBody else body)))
                    self.bodyLengths.append(0 if noBody else len(body))
        self.fixed: list[bytes] = []
        self.date = b""
        self.logTime = ""
        self.validFrom = math.inf
        self.validUntil = -math.inf

    def refresh(self, now: float) -> None:
        """Rebuild everything for the second C{now} falls in."""
        second = math.floor(now)
        self.validFrom = second
        self.validUntil = second + 1
        self.date = date = httpDate(second)
        self.logTime = logTimestamp(second)
        self.fixed = [before + date + after for before, after in self._parts]

    def current(self, now: float) -> list[bytes]:
        """L{fixed}, refreshed first if C{now} is in another second."""
        if not self.validFrom <= now < self.validUntil:
            self.refresh(now)
        return self.fixed

    def build(
        self,
        contentType: bytes,
        body: bytes,
        connection: int,
        noBody: int = 0,
    ) -> bytes:
        """
        A 200 response with C{body}, for the routes whose body changes from
        request to request; without the body if C{noBody} (L{NO_BODY}).
        """
        head = headerBlock(200, contentType, len(body), connection, self.date)
        return head if noBody else head + body


_UNSAFE = re.compile(rb'[^\x20-\x7e]|["\\]')


def _escapeByte(match: re.Match[bytes]) -> bytes:
    byte = match.group()
    if byte in (b'"', b"\\"):
        return b"\\" + byte
    return b"\\x%02x" % byte[0]


def escapeLogField(value: bytes | None) -> str:
    """
    C{value} for a quoted field of an access log line: C{-} if missing,
    quotes and backslashes escaped, and bytes that are not printable ASCII as
    C{\\xhh}, as Apache does, so no client can forge or break a log line.
    """
    if not value:
        return "-"
    return _UNSAFE.sub(_escapeByte, value).decode("ascii")
