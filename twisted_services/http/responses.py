"""
The bytes the http service answers with, and its access log lines.

Every fixed response (the hello-world route and each error) is built once, as
the bytes before its C{Date} value and the bytes after it; once a second
L{ResponseTable.refresh} splices the new date in and keeps the whole
responses, so answering a request is one dict lookup. A response is named by a
L{ResponseKey}: its L{Kind}, whether the request was C{HEAD} (headers only),
and the L{Connection} header it carries.
"""

from __future__ import annotations

import math
import re
import time
from enum import IntEnum

from twisted_services import __version__

SERVER = f"twisted-services/{__version__}".encode()

TEXT = b"text/plain; charset=utf-8"
JSON = b"application/json"
ALLOWED = b"GET, HEAD"

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
"""The interim response to C{Expect: 100-continue} for a body we will read."""


# IntEnum rather than Enum: a ResponseKey is hashed for every request, and an
# IntEnum member hashes as its int, in C, where an Enum member's hash is a
# Python call.


class Kind(IntEnum):
    """What a request is answered with: its route's response, or an error."""

    HELLO = 1
    HEALTH = 2
    REQUEST_ECHO = 3
    NOT_FOUND = 4
    METHOD_NOT_ALLOWED = 5
    BAD_REQUEST = 6
    PAYLOAD_TOO_LARGE = 7
    HEADERS_TOO_LARGE = 8
    REQUEST_TIMEOUT = 9
    SERVICE_UNAVAILABLE = 10
    URI_TOO_LONG = 11
    VERSION_NOT_SUPPORTED = 12


class Connection(IntEnum):
    """
    The C{Connection} header a response carries: none (HTTP/1.1 persists by
    default), C{keep-alive} (an HTTP/1.0 client asked for it) or C{close}.
    """

    PERSISTENT = 1
    KEEP_ALIVE = 2
    CLOSE = 3


ResponseKey = tuple[Kind, bool, Connection]
"""
A response: its kind, whether it answers C{HEAD} (the same headers, no body),
and its C{Connection} header.
"""

REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Payload Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}

STATUS = {
    Kind.HELLO: 200,
    Kind.HEALTH: 200,
    Kind.REQUEST_ECHO: 200,
    Kind.NOT_FOUND: 404,
    Kind.METHOD_NOT_ALLOWED: 405,
    Kind.BAD_REQUEST: 400,
    Kind.PAYLOAD_TOO_LARGE: 413,
    Kind.HEADERS_TOO_LARGE: 431,
    Kind.REQUEST_TIMEOUT: 408,
    Kind.SERVICE_UNAVAILABLE: 503,
    Kind.URI_TOO_LONG: 414,
    Kind.VERSION_NOT_SUPPORTED: 505,
}
"""The status code of each kind of response."""

SUCCESSES = frozenset({Kind.HELLO, Kind.HEALTH, Kind.REQUEST_ECHO})
"""Kinds that answer a request for a known route with an allowed method."""

BUILT = {Kind.HEALTH: JSON, Kind.REQUEST_ECHO: TEXT}
"""
The kinds whose body changes from request to request, so that they are built
for each (L{ResponseTable.build}), and their C{Content-Type}. Every other
kind is in L{ResponseTable.fixed}.
"""

_CONNECTION_HEADERS = {
    Connection.PERSISTENT: b"",
    Connection.KEEP_ALIVE: b"Connection: keep-alive\r\n",
    Connection.CLOSE: b"Connection: close\r\n",
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
    connection: Connection,
    date: bytes,
    noStore: bool = False,
) -> bytes:
    """
    The status line and headers, through the blank line, of a response: every
    response has C{Server}, C{Date}, C{Content-Type}, C{Content-Length} and
    C{X-Content-Type-Options: nosniff}; a 405 also has C{Allow}, and one
    whose body no cache may keep (C{noStore}) C{Cache-Control: no-store}.
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
            b"Cache-Control: no-store\r\n" if noStore else b"",
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

    @ivar fixed: every response but the L{BUILT} kinds, by L{ResponseKey}.
    @ivar bodyLengths: the body length of each fixed response (0 for those
        to C{HEAD}), by L{ResponseKey}.
    @ivar date: the current C{Date} header value.
    @ivar logTime: the current time in Common Log Format.
    @ivar validFrom: the second the above are for...
    @ivar validUntil: ...and the second after it, when they go stale.
    """

    def __init__(self, message: bytes) -> None:
        self._parts: dict[ResponseKey, tuple[bytes, bytes]] = {}
        self.bodyLengths: dict[ResponseKey, int] = {}
        for kind in Kind:
            if kind in BUILT:
                continue
            status = STATUS[kind]
            body = message if kind is Kind.HELLO else REASONS[status] + b"\n"
            for connection in Connection:
                head = headerBlock(status, TEXT, len(body), connection, _DATE_MARK)
                before, after = head.split(_DATE_MARK)
                for headOnly in (False, True):
                    key = (kind, headOnly, connection)
                    self._parts[key] = (before, after if headOnly else after + body)
                    self.bodyLengths[key] = 0 if headOnly else len(body)
        self.fixed: dict[ResponseKey, bytes] = {}
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
        self.fixed = {
            key: before + date + after for key, (before, after) in self._parts.items()
        }

    def current(self, now: float) -> dict[ResponseKey, bytes]:
        """L{fixed}, refreshed first if C{now} is in another second."""
        if not self.validFrom <= now < self.validUntil:
            self.refresh(now)
        return self.fixed

    def build(
        self,
        contentType: bytes,
        body: bytes,
        connection: Connection,
        headOnly: bool = False,
    ) -> bytes:
        """
        A 200 response with C{body}, for the routes whose body changes from
        request to request, so that no cache may keep it; without the body if
        C{headOnly}.
        """
        head = headerBlock(
            200, contentType, len(body), connection, self.date, noStore=True
        )
        return head if headOnly else head + body


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
