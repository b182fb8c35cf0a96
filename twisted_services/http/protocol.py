"""
The http service: a minimal, fast, correct HTTP/1.1 responder for a handful
of fixed routes.

C{GET /} answers with a message, C{GET /health} with counters as JSON and
C{GET /request} with the request's own line and headers as plain text; C{HEAD}
works on each. Requests are parsed by C{httptools} (llhttp, Node.js's parser)
fed from L{HTTPProtocol.dataReceived}: nothing here parses HTTP by hand.

Speed is the point, so the per-request path is short. One parser per
connection serves every keep-alive request on it; fixed responses are
prebuilt bytes from a L{ResponseTable} whose C{Date} is re-spliced once a
second; the responses to the requests in one read go out in one write; a
connection has at most one timer, rescheduled only when it fires or when a
request head spans reads; and with the access log off there is no logging
call per request.

Hostile clients are bounded: a head larger than C{maxHeaderSize} gets 431, a
body larger than C{maxBody} 413, a head not complete C{headerTimeout}
seconds after its first byte 408 however slowly it trickles in, and a client
that pipelines requests without reading the responses stops being read (the
protocol is its transport's streaming producer). After an error response the
connection closes and nothing more it sends is parsed.

Stopping is graceful (the factory's L{ConnectionTracker} drains every
L{HTTPProtocol}): idle connections close once what was written is sent, a
request under way is answered with C{Connection: close}, and what is left
after C{shutdownTimeout} is aborted.
"""

from __future__ import annotations

import json
import math

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpRequestParser,
    parse_url,
)
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IProtocolNegotiationFactory,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_services.http.responses import (
    BAD_REQUEST,
    CLOSE,
    CONTINUE,
    HEADERS_TOO_LARGE,
    HEALTH,
    HELLO,
    JSON,
    KEEP_ALIVE,
    METHOD_NOT_ALLOWED,
    NO_BODY,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    PERSISTENT,
    REQUEST_ECHO,
    REQUEST_TIMEOUT,
    SERVICE_UNAVAILABLE,
    STATUS,
    SUCCESSES,
    TEXT,
    ResponseTable,
    escapeLogField,
)
from twisted_services.server.connections import ConnectionTracker, TrackingFactory

CLOSE_GRACE = 3.0
"""
Seconds a closing connection has for its last response to go out and for the
client to close its side, before it is aborted.
"""

SHUTDOWN_TIMEOUT = 5.0
"""
Seconds a stopping server gives the requests under way to be answered and
their responses sent, before it aborts the connections left.
"""

ROUTES = {b"/": HELLO, b"/health": HEALTH, b"/request": REQUEST_ECHO}
"""Each path the service answers, and the kind of response it gets."""

ACCESS_LOG_FORMAT = (
    '{host} - - [{requestTime}] "{request}" {status} {size} "{referer}" "{agent}"'
)
"""Combined Log Format, with each part a field of the log event."""

# Where a connection is in its current request.
_BETWEEN = 0
_IN_HEAD = 1
_IN_BODY = 2

# The lengths of the header names _noteHeader looks at, so that a header none
# of them can be (Host, above all) costs one set lookup.
_NOTED_LENGTHS = frozenset(
    len(name)
    for name in [
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"connection",
        b"user-agent",
        b"referer",
    ]
)

# The least a request line and the blank line after the headers add to a
# head beyond the URL ("GET  HTTP/1.1\r\n" and "\r\n"), and each header beyond
# its name and value (":" and "\r\n"), so the head size counted from the
# parser's callbacks never exceeds the real size.
_HEAD_OVERHEAD = 17
_HEADER_OVERHEAD = 3


class _Stop(Exception):
    """
    Raised from a parser callback to stop parsing what is left of a read:
    the connection is closing. C{httptools} turns it into
    L{HttpParserCallbackError}.
    """


def routeOf(url: bytes) -> int:
    """
    The kind of response a request target gets from its path: its route's,
    or L{NOT_FOUND}. The query string does not count; an absolute URL
    (C{http://host/path}) is routed by its path.
    """
    if url[:1] == b"/":
        path = url.split(b"?", 1)[0].split(b"#", 1)[0]
    else:
        try:
            parsed = parse_url(url)
        except HttpParserError:
            return NOT_FOUND
        if not parsed.schema or not parsed.host:
            return NOT_FOUND
        path = parsed.path or b"/"
    return ROUTES.get(path, NOT_FOUND)


@implementer(IHalfCloseableProtocol, IPushProducer)
class HTTPProtocol(Protocol):
    """
    One HTTP/1.x connection: requests in, responses out in request order.

    The C{on_*} methods are C{httptools}' callbacks, which it finds by these
    names; it calls them from L{dataReceived}, in order, as a read is parsed.

    As its transport's streaming producer it stops reading from a client
    that is not reading its responses, so a pipelining client cannot make
    the server buffer without limit.

    The head's size is counted two ways, both never more than the real size:
    from the callbacks (the URL as it arrives, each header once complete),
    and, for a head spread over several reads, as those reads (less what
    preceded the head in its first read, when a request came before it).
    Past C{maxHeaderSize} either way it gets a 431, so the parser holds at
    most one read more than the limit.
    """

    _log = Logger()
    factory: HTTPFactory

    _closing = False
    _draining = False
    _paused = False
    _state = _BETWEEN
    _timer: IDelayedCall | None = None
    _timerAt = math.inf
    _headStart: float | None = None
    _headFed = 0
    _bodySize = 0
    _kind = HELLO
    _noBody = 0
    _connection = PERSISTENT
    _url = b""
    _headSize = 0

    # Set only by _noteHeader, and reset only when it has set one (_noted).
    _noted = False
    _contentLength = 0
    _chunked = False
    _expectContinue = False
    _connectionHeader = False
    _userAgent: bytes | None = None
    _referer: bytes | None = None

    def connectionMade(self) -> None:
        factory = self.factory
        factory.connections.opened(self)
        self._clock = factory.clock
        self._responses = factory.responses
        self._maxBody = factory.maxBody
        self._maxHeaderSize = factory.maxHeaderSize
        self._headerTimeout = factory.headerTimeout
        self._idleTimeout = factory.idleTimeout
        self._logging = factory.accessLog
        self._peerHost = "-"
        if self._logging:
            peer = self.transport.getPeer()
            if isinstance(peer, (IPv4Address, IPv6Address)):
                self._peerHost = peer.host
        # Half-closing lets the client read the last response before it sees
        # the connection close. A TLS transport only proxies this method to
        # the TCP connection under it, which would skip TLS's own close, so it
        # must be the transport's own.
        self._canHalfClose = hasattr(type(self.transport), "loseWriteConnection")
        self._out: list[bytes] = []
        self._headerLines: list[bytes] = []
        self._parser = HttpRequestParser(self)
        self._feed = self._parser.feed_data
        now = self._clock.seconds()
        self._lastActivity = now
        self.transport.registerProducer(self, True)
        if self._idleTimeout:
            self._scheduleAt(now + self._idleTimeout, now)

    def dataReceived(self, data: bytes) -> None:
        """
        Parse C{data}, answering every request it completes, and send the
        answers in one write. Nothing C{data} holds can raise out of here.
        """
        if self._closing:
            return
        now = self._clock.seconds()
        self._lastActivity = now
        responses = self._responses
        if not responses.validFrom <= now < responses.validUntil:
            responses.refresh(now)
        answered = self.factory.requests
        try:
            self._feed(data)
        except HttpParserCallbackError as error:
            if not self._closing:
                # Not a _Stop: one of the callbacks has a bug.
                self._log.failure(
                    "http: error handling a request from {peer}",
                    Failure(error.__context__ or error),
                    peer=self._peerHost,
                )
                self._close()
        except HttpParserUpgrade:
            # The request was answered as if it had not asked to upgrade;
            # what follows it is not HTTP.
            self._close()
        except HttpParserError:
            self._reject(BAD_REQUEST)
        out = self._out
        if out:
            # A one-item join is that item, not a copy.
            self.transport.write(b"".join(out))
            out.clear()
        if self._state == _IN_HEAD and not self._closing:
            # No request answered in this read means the head began it (the
            # parser skips only blank lines between requests).
            self._headContinues(
                now, len(data), wholeRead=self.factory.requests == answered
            )

    def _headContinues(self, now: float, received: int, wholeRead: bool) -> None:
        """
        A read of C{received} bytes ended inside a request's head: time the
        head from this read if it began in it, and count the bytes. If the
        head began after a request in this read its share is not known, and
        only the callbacks count it.
        """
        if self._headStart is None:
            self._headStart = now
            self._headFed = received if wholeRead else 0
            deadline = now + self._headerTimeout
            if deadline < self._timerAt:
                self._scheduleAt(deadline, now)
        else:
            self._headFed += received
        if self._headFed > self._maxHeaderSize:
            self._headTooLarge()

    # httptools callbacks, in the order it calls them for a request.

    def on_message_begin(self) -> None:
        self._state = _IN_HEAD
        self._headStart = None
        self._url = b""
        self._headSize = _HEAD_OVERHEAD
        self._headerLines.clear()
        if self._noted:
            self._noted = False
            self._contentLength = 0
            self._chunked = False
            self._expectContinue = False
            self._connectionHeader = False
            self._userAgent = None
            self._referer = None

    def on_url(self, url: bytes) -> None:
        # Called once per piece of the URL that a read holds.
        self._url += url
        self._headSize += len(url)
        if self._headSize > self._maxHeaderSize:
            self._headTooLarge()
            raise _Stop()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headSize += len(name) + len(value) + _HEADER_OVERHEAD
        if self._headSize > self._maxHeaderSize:
            self._headTooLarge()
            raise _Stop()
        lines = self._headerLines
        lines.append(name)
        lines.append(value)
        if len(name) in _NOTED_LENGTHS:
            self._noteHeader(name.lower(), value)

    def _noteHeader(self, name: bytes, value: bytes) -> None:
        """Remember what a header means for routing, framing and the log."""
        if name == b"content-length":
            # llhttp has checked that it is digits, and not given twice.
            self._contentLength = int(value)
        elif name == b"transfer-encoding":
            # llhttp only lets a request through with chunked last.
            self._chunked = True
        elif name == b"expect":
            self._expectContinue = value.strip().lower() == b"100-continue"
        elif name == b"connection":
            self._connectionHeader = True
        elif name == b"user-agent":
            self._userAgent = value
        elif name == b"referer":
            self._referer = value
        else:
            return
        self._noted = True

    def on_headers_complete(self) -> None:
        self._state = _IN_BODY
        parser = self._parser
        method = parser.get_method()
        kind = ROUTES.get(self._url)
        if kind is None:
            kind = routeOf(self._url)
        self._noBody = 0
        if method != b"GET":
            if method == b"HEAD":
                self._noBody = NO_BODY
            elif kind != NOT_FOUND:
                kind = METHOD_NOT_ALLOWED
        self._kind = kind
        if not parser.should_keep_alive() or self._draining:
            self._connection = CLOSE
        elif self._connectionHeader:
            # An HTTP/1.0 client asking to keep the connection is told so.
            self._connection = KEEP_ALIVE
            if parser.should_upgrade():
                self._connection = CLOSE
        else:
            self._connection = PERSISTENT
            if method == b"CONNECT":
                self._connection = CLOSE
        if self._contentLength or self._chunked:
            self._checkBody()

    def _checkBody(self) -> None:
        """
        The request has a body: refuse it now if it is too large, answer
        C{Expect: 100-continue}, or get ready to read and discard it.
        """
        self._bodySize = 0
        kind = self._kind
        if self._contentLength > self._maxBody:
            # 404 and 405 take precedence over 413.
            self._reject(kind if kind not in SUCCESSES else PAYLOAD_TOO_LARGE)
            raise _Stop()
        if self._expectContinue and self._parser.get_http_version() != "1.0":
            if kind in SUCCESSES:
                self._out.append(CONTINUE)
            else:
                # The final status at once; the client may or may not send
                # the body now, so the connection cannot go on.
                self._reject(kind)
                raise _Stop()

    def on_body(self, body: bytes) -> None:
        self._bodySize += len(body)
        if self._bodySize > self._maxBody:
            # Only a chunked body gets here: a Content-Length was checked.
            kind = self._kind
            self._reject(kind if kind not in SUCCESSES else PAYLOAD_TOO_LARGE)
            raise _Stop()

    def on_message_complete(self) -> None:
        self._state = _BETWEEN
        kind = self._kind
        connection = self._connection
        self.factory.requests += 1
        if kind >= 0:
            index = kind + self._noBody + connection
            self._out.append(self._responses.fixed[index])
            if self._logging:
                self._logAccess(STATUS[kind], self._responses.bodyLengths[index], True)
        else:
            body = self._dynamicBody(kind)
            self._out.append(
                self._responses.build(
                    JSON if kind == HEALTH else TEXT, body, connection, self._noBody
                )
            )
            if self._logging:
                self._logAccess(200, 0 if self._noBody else len(body), True)
        if connection == CLOSE:
            self._close()
            raise _Stop()

    def _dynamicBody(self, kind: int) -> bytes:
        """The body of a L{HEALTH} or L{REQUEST_ECHO} response."""
        factory = self.factory
        if kind == HEALTH:
            return json.dumps(
                {
                    "status": "ok",
                    "uptime": round(self._clock.seconds() - factory.started, 3),
                    "connections": len(factory.connections),
                    "requests": factory.requests,
                }
            ).encode("ascii")
        lines = self._headerLines
        return b"".join(
            [
                self._requestLine() + b"\n",
                *[
                    lines[index] + b": " + lines[index + 1] + b"\n"
                    for index in range(0, len(lines), 2)
                ],
            ]
        )

    def _requestLine(self) -> bytes:
        parser = self._parser
        version = parser.get_http_version().encode("ascii")
        return parser.get_method() + b" " + self._url + b" HTTP/" + version

    def _headTooLarge(self) -> None:
        """
        Answer a head over C{maxHeaderSize}: 431, unless what has arrived of
        the URL already calls for a 404 or 405, which take precedence.
        """
        kind = HEADERS_TOO_LARGE
        if self._url:
            if routeOf(self._url) == NOT_FOUND:
                kind = NOT_FOUND
            elif self._parser.get_method() not in (b"GET", b"HEAD"):
                kind = METHOD_NOT_ALLOWED
        self._reject(kind)

    def _reject(self, kind: int) -> None:
        """
        Answer with the error response C{kind} (or a 404 or 405) and close:
        what follows the request on this connection cannot be trusted.
        """
        # A request whose head is complete is answered as its method asks.
        noBody = self._noBody if self._state == _IN_BODY else 0
        index = kind + noBody + CLOSE
        self.factory.requests += 1
        responses = self._responses
        self._out.append(responses.current(self._clock.seconds())[index])
        if self._logging:
            # The request line is complete once the first header or the end
            # of the head has been parsed.
            lineKnown = self._state == _IN_BODY or (
                self._state == _IN_HEAD and bool(self._headerLines)
            )
            self._logAccess(STATUS[kind], responses.bodyLengths[index], lineKnown)
        self._close()

    def _logAccess(self, status: int, size: int, lineKnown: bool) -> None:
        """
        One access log line, in Combined Log Format; the request is C{-} if
        its line was not complete.
        """
        request = escapeLogField(self._requestLine()) if lineKnown else "-"
        self._log.info(
            ACCESS_LOG_FORMAT,
            host=self._peerHost,
            requestTime=self._responses.logTime,
            request=request,
            status=status,
            size=size or "-",
            referer=escapeLogField(self._referer),
            agent=escapeLogField(self._userAgent),
        )

    def drain(self) -> None:
        """
        The server is stopping: close now if between requests, else once the
        request under way is answered, with C{Connection: close}.
        """
        self._draining = True
        if self._closing:
            return
        if self._state == _BETWEEN:
            # Only a paused connection may have unread requests, which a
            # full close would turn into a reset; the others need not wait
            # for the client to close its side.
            self._close(halfClose=self._paused)
        elif self._state == _IN_BODY:
            # The head was complete: its answer was to keep the connection.
            self._connection = CLOSE

    def abort(self) -> None:
        """The server's shutdown grace period is over: close at once."""
        self.transport.abortConnection()

    def _close(self, halfClose: bool = True) -> None:
        """
        Send what is pending, then close: half-close first where the
        transport can (RFC 9112 section 9.6), reading and discarding until
        the client closes, so that its unread requests do not turn our close
        into a reset that destroys the response. Past L{CLOSE_GRACE} seconds
        the connection is aborted.

        @param halfClose: whether to half-close; without it the connection
            closes as soon as what is pending is sent.
        """
        if self._closing:
            return
        self._closing = True
        out = self._out
        transport = self.transport
        if out:
            transport.write(b"".join(out))
            out.clear()
        now = self._clock.seconds()
        # Before closing, which may call connectionLost at once.
        self._scheduleAt(now + CLOSE_GRACE, now)
        # The producer goes first, or the transport would wait for it.
        transport.unregisterProducer()
        if halfClose and self._canHalfClose:
            if self._paused:
                transport.resumeProducing()
            transport.loseWriteConnection()  # type: ignore[attr-defined]
        else:
            transport.loseConnection()

    # IHalfCloseableProtocol: without it, a client that shuts down its side
    # after its last request would lose the responses still being written.

    def readConnectionLost(self) -> None:
        """
        The client will send nothing more: close once the responses written
        so far are sent (a request it left unfinished goes unanswered), or,
        if we were already closing, now.
        """
        if not self._closing:
            self._closing = True
            now = self._clock.seconds()
            self._scheduleAt(now + CLOSE_GRACE, now)
            self.transport.unregisterProducer()
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """
        Our half-close is done; L{_close} goes on reading until the client
        closes its side or the grace period ends.
        """

    # Timeouts: one timer per connection, for whichever deadline is next.

    def _scheduleAt(self, when: float, now: float) -> None:
        timer = self._timer
        if timer is not None and timer.active():
            timer.reset(when - now)
        else:
            self._timer = self._clock.callLater(when - now, self._timedOut)
        self._timerAt = when

    def _timedOut(self) -> None:
        """
        The timer fired: act on whichever deadline has passed, or set the
        timer for the next one. Requests answered since it was set moved the
        deadlines on without touching it.
        """
        self._timer = None
        self._timerAt = math.inf
        if self._closing:
            self._log.info(
                "http: {peer} did not close within {grace} seconds, aborting",
                peer=self._peerHost,
                grace=CLOSE_GRACE,
            )
            self.transport.abortConnection()
            return
        now = self._clock.seconds()
        deadline = math.inf
        if self._idleTimeout:
            deadline = self._lastActivity + self._idleTimeout
        if self._state == _IN_HEAD and self._headStart is not None:
            deadline = min(deadline, self._headStart + self._headerTimeout)
        if now >= deadline:
            if self._state == _BETWEEN:
                self._close()
            else:
                self._reject(REQUEST_TIMEOUT)
        elif deadline < math.inf:
            self._scheduleAt(deadline, now)

    # IPushProducer: the transport pauses us when the client is not reading.

    def pauseProducing(self) -> None:
        """The client is not reading its responses: stop reading requests."""
        self._paused = True
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """The client caught up: read requests again."""
        self._paused = False
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The connection is going away; L{connectionLost} cleans up."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closing = True
        timer = self._timer
        if timer is not None and timer.active():
            timer.cancel()
        self._timer = None
        self.factory.connections.closed(self)


class ServiceUnavailable(Protocol):
    """What a connection past C{maxConnections} gets: a 503, then close."""

    def __init__(self, responses: ResponseTable, clock: IReactorTime) -> None:
        self._responses = responses
        self._clock = clock

    def connectionMade(self) -> None:
        fixed = self._responses.current(self._clock.seconds())
        self.transport.write(fixed[SERVICE_UNAVAILABLE + CLOSE])
        self.transport.loseConnection()


@implementer(IProtocolNegotiationFactory)
class HTTPFactory(TrackingFactory):
    """
    The http service: its limits, its counters, its prebuilt responses and
    its clock, shared by every L{HTTPProtocol}.

    Over TLS it negotiates C{http/1.1} by ALPN, as curl and browsers expect.

    @ivar maxBody: the largest request body read (and discarded), in bytes.
    @ivar maxHeaderSize: the largest request head, in bytes.
    @ivar headerTimeout: seconds from a head's first byte to its last.
    @ivar idleTimeout: seconds without data before a connection is closed
        (between requests) or answered with 408 (within one); 0 for never.
    @ivar accessLog: whether each request is logged.
    @ivar shutdownTimeout: seconds a drain of L{connections} waits before
        aborting the connections left.
    @ivar connections: the open connections, up to C{maxConnections}; its
        C{drain} stops the service gracefully.
    @ivar requests: requests answered so far, errors included.
    @ivar started: when the factory was made, for the uptime.
    """

    protocol = HTTPProtocol
    noisy = False

    def __init__(
        self,
        clock: IReactorTime,
        message: str = "Hello World",
        maxBody: int = 1024 * 1024,
        maxHeaderSize: int = 16 * 1024,
        headerTimeout: float = 10.0,
        idleTimeout: float = 60.0,
        maxConnections: int = 10000,
        accessLog: bool = True,
        shutdownTimeout: float = SHUTDOWN_TIMEOUT,
    ) -> None:
        if maxBody < 0 or maxHeaderSize < 1 or not headerTimeout > 0:
            raise ValueError(
                "maxBody must be 0 or more, maxHeaderSize and headerTimeout above 0"
            )
        if shutdownTimeout < 0:
            raise ValueError("shutdownTimeout must be 0 or more")
        self.clock = clock
        # surrogateescape gives back the bytes of a message from a command
        # line that was not UTF-8.
        self.responses = ResponseTable(message.encode("utf-8", "surrogateescape"))
        self.maxBody = maxBody
        self.maxHeaderSize = maxHeaderSize
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.accessLog = accessLog
        self.shutdownTimeout = shutdownTimeout
        self.connections = ConnectionTracker(
            "http", clock, maxConnections, drainTimeout=shutdownTimeout
        )
        self.requests = 0
        self.started = clock.seconds()

    def protocolWhenFull(self) -> ServiceUnavailable:
        """A connection past C{maxConnections} is told 503, then closed."""
        return ServiceUnavailable(self.responses, self.clock)

    def acceptableProtocols(self) -> list[bytes]:
        """The ALPN protocols a TLS listener offers for this factory."""
        return [b"http/1.1"]
