"""
One request as the parser reports it: L{Request}, made when its first byte
is parsed and dropped once it is answered.
"""

from __future__ import annotations

from twisted_services.http.responses import Connection, Kind
from twisted_services.http.strict import validHost

HEAD_OVERHEAD = 17
"""
The least a request line and the blank line after the headers add to a head
beyond the URL (C{"GET  HTTP/1.1\\r\\n"} and C{"\\r\\n"}), so that a head size
counted from the parser's callbacks never exceeds the real size.
"""

HEADER_OVERHEAD = 3
"""What each header adds to the head beyond its name and value: C{:} and CRLF."""

# Looked up once: Kind.HELLO on the enum costs about 0.1 µs in Python 3.11,
# and a Request is made for every request.
_HELLO = Kind.HELLO
_PERSISTENT = Connection.PERSISTENT

# The lengths of the header names _noteHeader looks at, so that a header none
# of them can be costs one set lookup.
_NOTED_LENGTHS = frozenset(
    len(name)
    for name in [
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"connection",
        b"user-agent",
        b"referer",
    ]
)


class Request:
    """
    What the protocol knows of the request it is parsing: its target and
    headers as they arrive, and, once the head is complete, how it is to be
    answered.

    A plain class with C{__slots__}, not a dataclass: one is made per request,
    and this is the cheapest record to make.

    @ivar url: the request target, as much of it as has arrived.
    @ivar headSize: the size of the head so far, never more than its real
        size (see L{HEAD_OVERHEAD}).
    @ivar headerLines: each header's name, then its value, as received.
    @ivar headStart: when the first read that ended inside this head arrived,
        from which the head is timed; L{None} while no read has.
    @ivar headFed: the bytes of the reads this head spans, counted from
        C{headStart}'s read when the head began it, else from the next.
    @ivar headComplete: whether the parser has seen the whole head, so that
        L{kind}, L{headOnly} and L{connection} are set.
    @ivar kind: how the request is answered.
    @ivar headOnly: a C{HEAD} request, answered without a body.
    @ivar connection: what the answer says of the connection, and so whether
        it closes after.
    @ivar hosts: how many C{Host} header lines it has.
    @ivar hostValid: whether each of them is a valid C{Host}.
    @ivar bodySize: the bytes of body read so far, decoded.
    @ivar bodyStart: when the read that completed the head ended with the
        body unfinished, from which the body is timed; L{None} until then.
    @ivar bodyFed: the wire bytes of the reads the body spans after that one.
    @ivar inChunkHeader: whether the parser is in a chunk's size line (with
        its extensions), where no callback reports progress.
    @ivar chunkHeaderFed: the wire bytes of the reads that chunk header
        spans after the one it began in; -1 in the read it began in.
    @ivar contentLength: its C{Content-Length}, or 0.
    @ivar chunked: whether its body is chunked.
    @ivar expectContinue: whether it sent C{Expect: 100-continue}.
    @ivar connectionHeader: whether it sent a C{Connection} header.
    @ivar userAgent: its C{User-Agent}, for the access log.
    @ivar referer: its C{Referer}, for the access log.
    @ivar method: its method, once the head is complete (for the access log).
    @ivar version: its HTTP version, such as C{"1.1"}, likewise.
    """

    __slots__ = (
        "bodyFed",
        "bodySize",
        "bodyStart",
        "chunkHeaderFed",
        "chunked",
        "connection",
        "connectionHeader",
        "contentLength",
        "expectContinue",
        "headComplete",
        "headFed",
        "headOnly",
        "headSize",
        "headStart",
        "headerLines",
        "hostValid",
        "hosts",
        "inChunkHeader",
        "kind",
        "method",
        "referer",
        "url",
        "userAgent",
        "version",
    )

    def __init__(self) -> None:
        self.url = b""
        self.headSize = HEAD_OVERHEAD
        self.headerLines: list[bytes] = []
        self.headStart: float | None = None
        self.headFed = 0
        self.headComplete = False
        self.kind = _HELLO
        self.headOnly = False
        self.connection = _PERSISTENT
        self.hosts = 0
        self.hostValid = True
        self.bodySize = 0
        self.bodyStart: float | None = None
        self.bodyFed = 0
        self.inChunkHeader = False
        self.chunkHeaderFed = -1
        self.contentLength = 0
        self.chunked = False
        self.expectContinue = False
        self.connectionHeader = False
        self.userAgent: bytes | None = None
        self.referer: bytes | None = None
        self.method = b""
        self.version = ""

    def addHeader(self, name: bytes, value: bytes) -> None:
        """Keep a header for the echo, and note what it means for us."""
        lines = self.headerLines
        lines.append(name)
        lines.append(value)
        if len(name) in _NOTED_LENGTHS:
            self._noteHeader(name.lower(), value)

    def _noteHeader(self, name: bytes, value: bytes) -> None:
        """Remember what a header means for routing, framing and the log."""
        if name == b"host":
            self.hosts += 1
            if not validHost(value):
                self.hostValid = False
        elif name == b"content-length":
            # llhttp has checked that it is digits, and not given twice.
            self.contentLength = int(value)
        elif name == b"transfer-encoding":
            # llhttp only lets a request through with chunked last.
            self.chunked = True
        elif name == b"expect":
            self.expectContinue = value.strip().lower() == b"100-continue"
        elif name == b"connection":
            self.connectionHeader = True
        elif name == b"user-agent":
            self.userAgent = value
        elif name == b"referer":
            self.referer = value

    def line(self, method: bytes, version: str) -> bytes:
        """The request line, as received, from the parser's C{method} and C{version}."""
        return method + b" " + self.url + b" HTTP/" + version.encode("ascii")

    def echo(self, line: bytes) -> bytes:
        """The body C{GET /request} answers with: C{line}, then each header."""
        lines = self.headerLines
        return b"".join(
            [
                line + b"\n",
                *[
                    lines[index] + b": " + lines[index + 1] + b"\n"
                    for index in range(0, len(lines), 2)
                ],
            ]
        )
