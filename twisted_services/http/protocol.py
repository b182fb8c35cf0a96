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
connection has at most one timer (L{ConnectionTimer}), rescheduled only when
it fires or when a request head spans reads; and with the access log off
there is no logging call per request.

Hostile clients are bounded: a head larger than C{maxHeaderSize} gets 431 (a
request target larger than that 414), a body larger than C{maxBody} 413
whatever its route, as does a chunked body whose wire bytes (sizes,
extensions, trailers) pass twice C{maxBody} plus L{CHUNK_FRAMING} or one of
whose chunk size lines passes C{maxHeaderSize}; a head not complete
C{headerTimeout} seconds after its first byte gets 408 however slowly it
trickles in, as does a body not complete C{bodyTimeout} seconds after its
head; what RFC 9112 says a server must refuse (no C{Host} in HTTP/1.1, two,
or an invalid one) gets 400, and a major version other than 1 gets 505
(L{headProblem}); and a client
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

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpRequestParser,
)
from twisted.internet.abstract import FileDescriptor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IProtocolNegotiationFactory,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_services.http.accesslog import AccessLineFormatter, LineSink
from twisted_services.http.metrics import GET, HEAD, OTHER, HTTPCounters
from twisted_services.http.request import HEADER_OVERHEAD, Request
from twisted_services.http.responses import (
    BUILT,
    CONTINUE,
    STATUS,
    SUCCESSES,
    Connection,
    Kind,
    ResponseTable,
)
from twisted_services.http.routes import ROUTES, routeOf
from twisted_services.http.strict import headProblem
from twisted_services.http.timers import ConnectionTimer
from twisted_services.server.connections import ConnectionTracker, TrackingFactory

CLOSE_GRACE = 3.0
"""
Seconds a closing connection has for its last response to go out and for the
client to close its side, before it is aborted.
"""

BODY_TIMEOUT = 30.0
"""Seconds a request body may take to arrive, from the end of its head."""

CHUNK_FRAMING = 64 * 1024
"""
Wire bytes a chunked body may have beyond twice C{maxBody}: room for the
chunk sizes, extensions and trailers of any client that sends chunks of a
sane size, but not for 100 MB of chunk extension around one counted byte.
"""

SHUTDOWN_TIMEOUT = 5.0
"""
Seconds a stopping server gives the requests under way to be answered and
their responses sent, before it aborts the connections left.
"""

# The enum members the per-request path uses, as module globals: looking a
# member up on its enum (Connection.CLOSE) takes about 0.1 µs in Python 3.11,
# five times a global load, and a request would pay it several times over.
_KEEP_ALIVE = Connection.KEEP_ALIVE
_CLOSE = Connection.CLOSE
_NOT_FOUND = Kind.NOT_FOUND
_METHOD_NOT_ALLOWED = Kind.METHOD_NOT_ALLOWED
_PAYLOAD_TOO_LARGE = Kind.PAYLOAD_TOO_LARGE

TRANSPORT_BUFFER = 16 * 1024
"""
The largest read, and the output a TCP transport queues before it pauses the
protocol (Twisted's default is 64 KiB of each): with L{PARSE_SLICE} this
bounds what a client that pipelines and never reads pins in the server to
about 60 KiB.
"""

PARSE_SLICE = 4096
"""
Bytes of a read parsed at a time: between slices the protocol checks whether
its transport has paused it, so what one read queues in responses is bounded
by the transport's buffer plus one slice's answers (about 30 KiB for 4 KiB of
18-byte requests), not ten times the read.
"""


class _Stop(Exception):
    """
    Raised from a parser callback to stop parsing what is left of a read:
    the connection is closing. C{httptools} turns it into
    L{HttpParserCallbackError}.
    """


@implementer(IHalfCloseableProtocol, IPushProducer)
class HTTPProtocol(Protocol):
    """
    One HTTP/1.x connection: requests in, responses out in request order.

    The C{on_*} methods are C{httptools}' callbacks, which it finds by these
    names; it calls them from L{dataReceived}, in order, as a read is parsed.
    C{on_message_begin} makes the L{Request} they fill in, and
    C{on_message_complete} answers it and drops it: between requests there
    is none.

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

    _request: Request | None = None
    _closing = False
    _draining = False
    _paused = False
    _unparsed = b""

    def connectionMade(self) -> None:
        factory = self.factory
        factory.connections.opened(self)
        self._clock = factory.clock
        self._responses = factory.responses
        self._maxBody = factory.maxBody
        self._maxHeaderSize = factory.maxHeaderSize
        self._maxBodyWire = 2 * factory.maxBody + CHUNK_FRAMING
        self._bodyTimeout = factory.bodyTimeout
        self._accessLog = factory.accessLog
        self._logging = self._accessLog is not None
        self._counters = factory.counters
        self._answered = factory.counters.answered
        self._stream = factory.connections.counters
        self._peerHost = "-"
        if self._logging:
            peer = self.transport.getPeer()
            if isinstance(peer, (IPv4Address, IPv6Address)):
                self._peerHost = peer.host
        self._peerHostBytes = self._peerHost.encode("ascii")
        # Half-closing lets the client read the last response before it sees
        # the connection close. A TLS transport only proxies this method to
        # the TCP connection under it, which would skip TLS's own close, so it
        # must be the transport's own.
        self._canHalfClose = hasattr(type(self.transport), "loseWriteConnection")
        self._out: list[bytes] = []
        self._parser = HttpRequestParser(self)
        # Lets HTTP/1.2 and the like through, to be served as 1.1 (RFC 9110
        # section 2.5); on_headers_complete refuses what is not HTTP/1.x.
        self._parser.set_dangerous_leniencies(lenient_version=True)
        self._feed = self._parser.feed_data
        self._timer = ConnectionTimer(
            self._clock,
            factory.idleTimeout,
            factory.headerTimeout,
            CLOSE_GRACE,
            expired=self._timedOut,
            graceOver=self._graceOver,
        )
        if isinstance(self.transport, FileDescriptor):
            # Its reads and the output it queues before pausing us.
            self.transport.bufferSize = TRANSPORT_BUFFER
        self.transport.registerProducer(self, True)
        self._timer.start(self._clock.seconds())

    def dataReceived(self, data: bytes) -> None:
        """
        Parse C{data}, answering every request it completes. While the
        client is not reading its responses, keep it unparsed instead.
        """
        if self._closing:
            return
        self._stream.bytesReceived += len(data)
        if self._unparsed:
            # A transport may deliver a read after pausing (TLS does): keep
            # it, in order, for when the client reads again.
            self._unparsed += data
            return
        self._parseSlices(data)

    def _parseSlices(self, data: bytes) -> None:
        """
        Parse C{data} a slice at a time, stopping once the transport has
        paused us: a read of tiny pipelined requests holds about ten times
        its size in responses, which must not all be queued at once. What is
        left is kept in C{_unparsed}, for L{resumeProducing}.
        """
        if len(data) <= PARSE_SLICE:
            self._parse(data)
            return
        for start in range(0, len(data), PARSE_SLICE):
            self._parse(data[start : start + PARSE_SLICE])
            if self._closing:
                return
            if self._paused:
                self._unparsed = data[start + PARSE_SLICE :]
                return

    def _parse(self, data: bytes) -> None:
        """
        Parse C{data}, answering every request it completes, and send the
        answers in one write. Nothing C{data} holds can raise out of here.
        """
        now = self._clock.seconds()
        self._timer.lastActivity = now
        responses = self._responses
        if not responses.validFrom <= now < responses.validUntil:
            responses.refresh(now)
        answered = self.factory.requests
        # Begun in an earlier read, if any: every other request answered in
        # this one began in it.
        earlier = self._request
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
            self._reject(Kind.BAD_REQUEST)
        out = self._out
        if out:
            # A one-item join is that item, not a copy.
            written = b"".join(out)
            self.transport.write(written)
            self._stream.bytesSent += len(written)
            out.clear()
        request = self._request
        if request is not None and not self._closing:
            if not request.headComplete:
                # No request answered in this read means the head began it
                # (the parser skips only blank lines between requests).
                self._headContinues(
                    request,
                    now,
                    len(data),
                    wholeRead=self.factory.requests == answered,
                )
            else:
                self._bodyContinues(request, now, len(data))
        # After the continuations, which may refuse the request under way.
        done = self.factory.requests - answered
        if done:
            self._timeAnswered(now, done, earlier)

    def _timeAnswered(self, now: float, done: int, earlier: Request | None) -> None:
        """
        Record how long the C{done} requests answered in the read that came
        at C{now} took: the first since it began, if it began in an earlier
        read (C{earlier}), the others since C{now}. One observation for all
        of those, so that pipelined requests cost one.
        """
        end = self._clock.seconds()
        duration = self._counters.duration
        if earlier is not None:
            started = earlier.headStart
            if started is None:
                started = earlier.bodyStart
            duration.observe(end - (now if started is None else started))
            done -= 1
        if done:
            duration.observe(end - now, done)

    def _headContinues(
        self, request: Request, now: float, received: int, wholeRead: bool
    ) -> None:
        """
        A read of C{received} bytes ended inside C{request}'s head: time the
        head from this read if it began in it, and count the bytes. If the
        head began after a request in this read its share is not known, and
        only the callbacks count it.
        """
        if request.headStart is None:
            request.headStart = now
            request.headFed = received if wholeRead else 0
            self._timer.headBegan(now)
        else:
            request.headFed += received
        if request.headFed > self._maxHeaderSize:
            self._headTooLarge(request)

    def _bodyContinues(self, request: Request, now: float, received: int) -> None:
        """
        A read of C{received} bytes ended inside C{request}'s body. If the
        head completed in it, time the body from now; its share of the read
        is not known, nor is that of a chunk size line that began in it, so
        those are counted from the next read on: what is fed of a body or a
        chunk size line is never more than one read over its limit.
        """
        if request.bodyStart is None:
            request.bodyStart = now
            self._timer.bodyBegan(now, self._bodyTimeout)
        else:
            request.bodyFed += received
        if request.inChunkHeader:
            if request.chunkHeaderFed < 0:
                request.chunkHeaderFed = 0
            else:
                request.chunkHeaderFed += received
        if (
            request.bodyFed > self._maxBodyWire
            or request.chunkHeaderFed > self._maxHeaderSize
        ):
            self._log.info(
                "http: {peer} sent a chunked body too large on the wire",
                peer=self._peerHost,
            )
            self._reject(_PAYLOAD_TOO_LARGE)

    # httptools callbacks, in the order it calls them for a request.

    def on_message_begin(self) -> None:
        self._request = Request()

    def on_url(self, url: bytes) -> None:
        # Called once per piece of the URL that a read holds.
        request = self._request
        assert request is not None
        request.url += url
        request.headSize += len(url)
        if request.headSize > self._maxHeaderSize:
            self._reject(Kind.URI_TOO_LONG)
            raise _Stop()

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self._request
        assert request is not None
        request.headSize += len(name) + len(value) + HEADER_OVERHEAD
        if request.headSize > self._maxHeaderSize:
            self._headTooLarge(request)
            raise _Stop()
        if not request.headComplete:
            # A trailer, after a chunked body, is only counted.
            request.addHeader(name, value)

    def on_headers_complete(self) -> None:
        """
        The head is complete: decide how the request is answered, and
        whether its connection persists after.
        """
        request = self._request
        assert request is not None
        request.headComplete = True
        if request.headStart is not None:
            self._timer.headDone()
        parser = self._parser
        method = parser.get_method()
        kind = ROUTES.get(request.url)
        if kind is None:
            kind = routeOf(request.url)
        if method != b"GET":
            if method == b"HEAD":
                request.headOnly = True
            elif kind is not _NOT_FOUND:
                kind = _METHOD_NOT_ALLOWED
        request.kind = kind
        version = parser.get_http_version()
        request.method = method
        request.version = version
        if version != "1.1" or request.hosts != 1 or not request.hostValid:
            problem = headProblem(version, request.hosts, request.hostValid)
            if problem is not None:
                self._reject(problem)
                raise _Stop()
        if not parser.should_keep_alive() or self._draining:
            request.connection = _CLOSE
        elif request.connectionHeader:
            # An HTTP/1.0 client asking to keep the connection is told so.
            request.connection = _KEEP_ALIVE
            if parser.should_upgrade():
                request.connection = _CLOSE
        elif method == b"CONNECT":
            request.connection = _CLOSE
        if request.contentLength or request.chunked:
            request.inChunkHeader = request.chunked
            self._checkBody(request)

    def _checkBody(self, request: Request) -> None:
        """
        The request has a body: refuse it now if it is too large, answer
        C{Expect: 100-continue}, or get ready to read and discard it.
        """
        if request.contentLength > self._maxBody:
            self._bodyTooLarge(request)
            raise _Stop()
        kind = request.kind
        if request.expectContinue and self._parser.get_http_version() != "1.0":
            if kind in SUCCESSES:
                self._out.append(CONTINUE)
            else:
                # The final status at once; the client may or may not send
                # the body now, so the connection cannot go on.
                self._reject(kind)
                raise _Stop()

    def on_chunk_header(self) -> None:
        request = self._request
        assert request is not None
        request.inChunkHeader = False

    def on_chunk_complete(self) -> None:
        request = self._request
        assert request is not None
        request.inChunkHeader = True
        request.chunkHeaderFed = -1

    def on_body(self, body: bytes) -> None:
        request = self._request
        assert request is not None
        request.bodySize += len(body)
        if request.bodySize > self._maxBody:
            self._bodyTooLarge(request)
            raise _Stop()

    def on_message_complete(self) -> None:
        request = self._request
        assert request is not None
        self._request = None
        self.factory.requests += 1
        if request.bodyStart is not None:
            self._timer.bodyDone()
        key = (request.kind, request.headOnly, request.connection)
        self._answered[key] += 1
        if request.kind is _NOT_FOUND and not request.headOnly:
            self._countNotFound()
        response = self._responses.fixed.get(key)
        if response is not None:
            self._out.append(response)
            if self._logging:
                self._logAccess(
                    request,
                    STATUS[request.kind],
                    self._responses.bodyLengths[key],
                    lineKnown=True,
                )
        else:
            body = self._builtBody(request)
            self._out.append(
                self._responses.build(
                    BUILT[request.kind], body, request.connection, request.headOnly
                )
            )
            if self._logging:
                size = 0 if request.headOnly else len(body)
                self._logAccess(request, 200, size, lineKnown=True)
        if request.connection is _CLOSE:
            self._close()
            raise _Stop()

    def _countNotFound(self) -> None:
        """A 404 to a method other than C{GET} or C{HEAD} is counted as such."""
        if self._parser.get_method() != b"GET":
            self._counters.otherNotFound += 1

    def _methodClass(self, request: Request | None) -> str:
        """C{GET}, C{HEAD} or C{other} (too for a method not yet parsed)."""
        # The method is parsed once the URL has begun.
        if request is None or not request.url:
            return OTHER
        method = self._parser.get_method()
        if method == b"GET":
            return GET
        return HEAD if method == b"HEAD" else OTHER

    def _builtBody(self, request: Request) -> bytes:
        """The body of a L{Kind.HEALTH} or L{Kind.REQUEST_ECHO} response."""
        if request.kind is Kind.HEALTH:
            factory = self.factory
            return json.dumps(
                {
                    "status": "ok",
                    "uptime": round(self._clock.seconds() - factory.started, 3),
                    "connections": len(factory.connections),
                    "requests": factory.requests,
                }
            ).encode("ascii")
        return request.echo(self._requestLine(request))

    def _requestLine(self, request: Request) -> bytes:
        parser = self._parser
        return request.line(parser.get_method(), parser.get_http_version())

    def _headTooLarge(self, request: Request) -> None:
        """
        Answer a head over C{maxHeaderSize}: 431, unless what has arrived of
        the URL already calls for a 404 or 405, which take precedence.
        """
        kind = Kind.HEADERS_TOO_LARGE
        if request.url:
            if routeOf(request.url) is Kind.NOT_FOUND:
                kind = Kind.NOT_FOUND
            elif self._parser.get_method() not in (b"GET", b"HEAD"):
                kind = Kind.METHOD_NOT_ALLOWED
        self._reject(kind)

    def _bodyTooLarge(self, request: Request) -> None:
        """
        Answer a body over C{maxBody}: 413 whatever its route, so that a
        client learns what it must change, as the README promises.
        """
        self._reject(_PAYLOAD_TOO_LARGE)

    def _reject(self, kind: Kind) -> None:
        """
        Answer with the error response C{kind} (or a 404 or 405) and close:
        what follows the request on this connection cannot be trusted.
        """
        request = self._request
        # A request whose head is complete is answered as its method asks.
        headOnly = request is not None and request.headComplete and request.headOnly
        key = (kind, headOnly, _CLOSE)
        self.factory.requests += 1
        self._counters.rejected[kind, self._methodClass(request)] += 1
        responses = self._responses
        self._out.append(responses.current(self._clock.seconds())[key])
        if self._logging:
            # The request line is complete once the first header or the end
            # of the head has been parsed.
            lineKnown = request is not None and (
                request.headComplete or bool(request.headerLines)
            )
            self._logAccess(
                request, STATUS[kind], responses.bodyLengths[key], lineKnown
            )
        self._close()

    def _logAccess(
        self, request: Request | None, status: int, size: int, lineKnown: bool
    ) -> None:
        """
        One access log line, in Combined Log Format; the request is C{-} if
        its line was not complete.
        """
        method = referer = userAgent = None
        url, version = b"", ""
        if request is not None:
            if lineKnown:
                url = request.url
                if request.headComplete:
                    # Kept from the head: the parser's getters cost more
                    # than the rest of the line.
                    method, version = request.method, request.version
                else:
                    parser = self._parser
                    method, version = parser.get_method(), parser.get_http_version()
            referer = request.referer
            userAgent = request.userAgent
        assert self._accessLog is not None
        self._accessLog.write(
            self.factory.accessLines.line(
                self._peerHostBytes,
                self._responses.logTime,
                method,
                url,
                version,
                status,
                size,
                referer,
                userAgent,
            )
        )

    # Drainable, for the factory's ConnectionTracker.

    def drain(self) -> None:
        """
        The server is stopping: close now if between requests, else once the
        request under way is answered, with C{Connection: close}.
        """
        self._draining = True
        if self._closing:
            return
        request = self._request
        if request is None:
            # Half-close, reading on until the client closes: a request it
            # sends before it sees our FIN would otherwise draw a reset,
            # which can destroy the response it has not read yet.
            self._close()
        elif request.headComplete:
            # Its answer was to keep the connection; a head still arriving
            # sees _draining when it completes.
            request.connection = _CLOSE

    def abort(self) -> None:
        """The server's shutdown grace period is over: close at once."""
        self.transport.abortConnection()

    def _close(self) -> None:
        """
        Send what is pending, then close: half-close first where the
        transport can (RFC 9112 section 9.6), reading and discarding until
        the client closes, so that its unread requests do not turn our close
        into a reset that destroys the response. Past L{CLOSE_GRACE} seconds
        the connection is aborted.
        """
        if self._closing:
            return
        self._closing = True
        out = self._out
        transport = self.transport
        if out:
            written = b"".join(out)
            transport.write(written)
            self._stream.bytesSent += len(written)
            out.clear()
        # Before closing, which may call connectionLost at once.
        self._timer.closing(self._clock.seconds())
        # The producer goes first, or the transport would wait for it.
        transport.unregisterProducer()
        if self._canHalfClose:
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
            self._timer.closing(self._clock.seconds())
            self.transport.unregisterProducer()
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """
        Our half-close is done; L{_close} goes on reading until the client
        closes its side or the grace period ends.
        """

    # The ConnectionTimer's callbacks.

    def _timedOut(self) -> None:
        """
        The idle or head deadline passed: close quietly between requests,
        else answer 408.
        """
        self._stream.timedOut += 1
        request = self._request
        if request is None:
            self._close()
        else:
            self._reject(Kind.REQUEST_TIMEOUT)
            self._timeAnswered(self._clock.seconds(), 1, request)

    def _graceOver(self) -> None:
        """The client did not close within L{CLOSE_GRACE} of our closing."""
        self._log.info(
            "http: {peer} did not close within {grace} seconds, aborting",
            peer=self._peerHost,
            grace=CLOSE_GRACE,
        )
        self.transport.abortConnection()

    # IPushProducer: the transport pauses us when the client is not reading.

    def pauseProducing(self) -> None:
        """The client is not reading its responses: stop reading requests."""
        self._paused = True
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """
        The client caught up: parse what was kept, then read requests again
        unless that paused us anew.
        """
        self._paused = False
        unparsed = self._unparsed
        if unparsed:
            self._unparsed = b""
            self._parseSlices(unparsed)
            if self._paused or self._closing:
                return
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The connection is going away; L{connectionLost} cleans up."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._closing = True
        self._timer.stop()
        self.factory.connections.closed(self)


class ServiceUnavailable(Protocol):
    """What a connection past C{maxConnections} gets: a 503, then close."""

    def __init__(self, responses: ResponseTable, clock: IReactorTime) -> None:
        self._responses = responses
        self._clock = clock

    def connectionMade(self) -> None:
        fixed = self._responses.current(self._clock.seconds())
        self.transport.write(fixed[(Kind.SERVICE_UNAVAILABLE, False, Connection.CLOSE)])
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
    @ivar bodyTimeout: seconds from the end of a head to the end of its body.
    @ivar idleTimeout: seconds without data before a connection is closed
        (between requests) or answered with 408 (within one); 0 for never.
    @ivar accessLog: where each request is logged, in Combined Log Format;
        L{None} for nowhere.
    @ivar accessLines: what formats those lines.
    @ivar shutdownTimeout: seconds a drain of L{connections} waits before
        aborting the connections left.
    @ivar connections: the open connections, up to C{maxConnections}; its
        C{drain} stops the service gracefully.
    @ivar requests: requests answered so far, errors included.
    @ivar counters: requests by response and method, and their durations,
        for metrics (the connections and bytes are C{connections.counters}).
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
        bodyTimeout: float = BODY_TIMEOUT,
        idleTimeout: float = 60.0,
        maxConnections: int = 10000,
        accessLog: LineSink | None = None,
        shutdownTimeout: float = SHUTDOWN_TIMEOUT,
    ) -> None:
        if (
            maxBody < 0
            or maxHeaderSize < 1
            or not headerTimeout > 0
            or not bodyTimeout > 0
        ):
            raise ValueError(
                "maxBody must be 0 or more, maxHeaderSize, headerTimeout and "
                "bodyTimeout above 0"
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
        self.bodyTimeout = bodyTimeout
        self.idleTimeout = idleTimeout
        self.accessLog = accessLog
        self.accessLines = AccessLineFormatter()
        self.shutdownTimeout = shutdownTimeout
        self.connections = ConnectionTracker(
            "http", clock, maxConnections, drainTimeout=shutdownTimeout
        )
        self.requests = 0
        self.counters = HTTPCounters()
        self.started = clock.seconds()

    def protocolWhenFull(self) -> ServiceUnavailable:
        """A connection past C{maxConnections} is told 503, then closed."""
        return ServiceUnavailable(self.responses, self.clock)

    def acceptableProtocols(self) -> list[bytes]:
        """The ALPN protocols a TLS listener offers for this factory."""
        return [b"http/1.1"]
