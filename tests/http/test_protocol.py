"""
Tests for L{twisted_services.http.protocol}: the HTTP protocol and factory on fake
transports, with a L{Clock} for time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from httptools import HttpResponseParser
from hypothesis import given, settings, strategies
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IProtocolNegotiationFactory,
    IPushProducer,
)
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.logger import LogEvent, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from twisted_services import __version__
from twisted_services.http.protocol import (
    CLOSE_GRACE,
    SHUTDOWN_TIMEOUT,
    HTTPFactory,
    HTTPProtocol,
    ServiceUnavailable,
)
from twisted_services.http.request import Request
from twisted_services.testing import connect, peerAddress

START = 784111777.0
"""Sun, 06 Nov 1994 08:49:37 GMT: where each test's clock starts."""

DATE = "Sun, 06 Nov 1994 08:49:37 GMT"

HELLO_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: twisted-services/" + __version__.encode() + b"\r\n"
    b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 11\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"\r\n"
    b"Hello World"
)

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def request(
    path: str = "/",
    method: str = "GET",
    version: str = "1.1",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    host: str | None = "example.com",
) -> bytes:
    """
    The bytes of a request, with a C{Host} header first unless C{host} is
    L{None}; give C{Content-Length} in C{headers} for a body.
    """
    if host is not None:
        headers = [("Host", host), *headers]
    head = f"{method} {path} HTTP/{version}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers
    )
    return head.encode("latin-1") + b"\r\n" + body


def chunked(*chunks: bytes) -> bytes:
    """C{chunks} in chunked transfer coding, with the last, empty, chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + (
        b"0\r\n\r\n"
    )


@dataclass
class Response:
    """One response as a client parsed it; header names in lower case."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class _ResponseCollector:
    """C{httptools} callbacks that collect L{Response}s."""

    def __init__(self) -> None:
        self.parser = HttpResponseParser(self)
        self.responses: list[Response] = []
        self.current = Response(0)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        self.current.status = self.parser.get_status_code()
        self.responses.append(self.current)
        self.current = Response(0)


def parseResponses(data: bytes) -> list[Response]:
    """
    The complete responses in C{data}, parsed as a client would (so not for
    responses to C{HEAD}, whose C{Content-Length} promises no body).
    """
    collector = _ResponseCollector()
    collector.parser.feed_data(data)
    return collector.responses


class CountingTransport(StringTransportWithDisconnection):
    """Counts the writes the protocol makes."""

    writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


class HalfClosingTransport(StringTransportWithDisconnection):
    """
    A transport that can half-close, as TCP can: L{loseWriteConnection}
    leaves it connected until the client closes or it is aborted.
    """

    writeClosed = False

    def loseWriteConnection(self) -> None:
        self.writeClosed = True

    def clientCloses(self) -> None:
        StringTransportWithDisconnection.loseConnection(self)


class Client:
    """One client connection to an L{HTTPFactory}: send bytes, read replies."""

    def __init__(
        self,
        factory: HTTPFactory,
        transport: StringTransportWithDisconnection | None = None,
    ) -> None:
        protocol, transport = connect(factory, transport=transport)
        assert isinstance(protocol, HTTPProtocol)
        self.protocol = protocol
        self.transport = transport

    def send(self, *chunks: bytes) -> None:
        """Deliver each of C{chunks} in its own C{dataReceived}."""
        for chunk in chunks:
            self.protocol.dataReceived(chunk)

    def received(self) -> bytes:
        """What the server sent since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return data

    def responses(self) -> list[Response]:
        """The responses received since the last call."""
        return parseResponses(self.received())

    def response(self) -> Response:
        """The one response received since the last call."""
        [response] = self.responses()
        return response

    @property
    def connected(self) -> bool:
        return bool(self.transport.connected)


def httpFactory(**kwargs: object) -> tuple[HTTPFactory, Clock]:
    """An L{HTTPFactory} with C{kwargs} on a L{Clock} set to L{START}."""
    clock = Clock()
    clock.advance(START)
    return HTTPFactory(clock, **kwargs), clock  # type: ignore[arg-type]


def client(**kwargs: object) -> tuple[Client, Clock]:
    """A L{Client} of a fresh L{httpFactory} with C{kwargs}, and its clock."""
    factory, clock = httpFactory(**kwargs)
    return Client(factory), clock


@dataclass
class LineList:
    """An access log that keeps its lines in a list."""

    lines: list[bytes]

    def write(self, line: bytes) -> None:
        self.lines.append(line)


def messages(events: Sequence[LogEvent]) -> list[str]:
    """The formatted text of captured log events."""
    return [formatEvent(event) for event in events]


class RouteTests(SynchronousTestCase):
    """Each route answers C{GET} and C{HEAD}; other paths and methods do not."""

    def test_hello(self) -> None:
        """C{GET /} gets the message, with every required header, byte for byte."""
        user, _ = client()
        user.send(request("/"))
        self.assertEqual(user.received(), HELLO_RESPONSE)
        self.assertTrue(user.connected)

    def test_message(self) -> None:
        """The factory's message is the body, in UTF-8, without a newline."""
        user, _ = client(message="Grüß dich ☃")
        user.send(request("/"))
        response = user.response()
        self.assertEqual(response.body, "Grüß dich ☃".encode())
        self.assertEqual(response.headers["content-length"], str(len(response.body)))

    def test_queryIgnored(self) -> None:
        """The query string and fragment do not affect routing."""
        user, _ = client()
        user.send(request("/?a=1&b=%20"), request("/health?verbose"), request("/#x"))
        first, health, last = user.responses()
        self.assertEqual(first.body, b"Hello World")
        self.assertEqual(json.loads(health.body)["status"], "ok")
        self.assertEqual(last.body, b"Hello World")

    def test_absoluteForm(self) -> None:
        """A request for an absolute URL is routed by its path."""
        user, _ = client()
        user.send(
            request("http://example.com/request?x"), request("http://example.com")
        )
        echo, hello = user.responses()
        self.assertEqual(
            echo.body, b"GET http://example.com/request?x HTTP/1.1\nHost: example.com\n"
        )
        self.assertEqual(hello.body, b"Hello World")

    def test_health(self) -> None:
        """C{GET /health}: JSON with status, uptime, open connections, requests."""
        factory, clock = httpFactory()
        user, other = Client(factory), Client(factory)
        other.send(request("/"), request("/nowhere"))
        clock.advance(12.5)
        user.send(request("/health"))
        response = user.response()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.headers["content-type"], "application/json")
        self.assertEqual(
            json.loads(response.body),
            {"status": "ok", "uptime": 12.5, "connections": 2, "requests": 3},
        )

    def test_requestEcho(self) -> None:
        """
        C{GET /request}: the request line and headers as received, one per
        line, as plain text.
        """
        user, _ = client()
        user.send(
            b"GET /request?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: y\r\n"
            b"Accept: */*\r\nX-Odd:  spaced \r\n\r\n"
        )
        response = user.response()
        self.assertEqual(
            response.body,
            b"GET /request?q=1 HTTP/1.1\nHost: x\nUser-Agent: y\nAccept: */*\n"
            b"X-Odd: spaced \n",
        )
        self.assertEqual(response.headers["content-type"], "text/plain; charset=utf-8")

    def test_requestEchoNeverHTML(self) -> None:
        """Markup in a header comes back as plain text the browser may not sniff."""
        user, _ = client()
        user.send(request("/request", headers=[("X", "<script>alert(1)</script>")]))
        response = user.response()
        self.assertIn(b"X: <script>alert(1)</script>\n", response.body)
        self.assertEqual(response.headers["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(response.headers["x-content-type-options"], "nosniff")

    def test_requestEchoPerRequest(self) -> None:
        """Each request on a connection echoes its own headers only."""
        user, _ = client()
        user.send(
            request("/request", headers=[("A", "1")]),
            request("/request", headers=[("B", "2")]),
        )
        first, second = user.responses()
        self.assertEqual(
            first.body, b"GET /request HTTP/1.1\nHost: example.com\nA: 1\n"
        )
        self.assertEqual(
            second.body, b"GET /request HTTP/1.1\nHost: example.com\nB: 2\n"
        )

    def test_head(self) -> None:
        """C{HEAD} of each route: the C{GET} response's status and headers, no body."""
        for path in ["/", "/request", "/nowhere"]:
            user, _ = client()
            user.send(request(path, "GET"))
            get = user.received()
            user.send(request(path, "HEAD"))
            head = user.received()
            headers, body = get.split(b"\r\n\r\n", 1)
            self.assertTrue(body)
            if path == "/request":
                # The echo names the method, which is one byte longer.
                length = len(body) + 1
                headers = headers.replace(
                    b"Content-Length: %d" % len(body), b"Content-Length: %d" % length
                )
            self.assertEqual(head, headers + b"\r\n\r\n", path)
            self.assertTrue(user.connected)

    def test_headHealth(self) -> None:
        """C{HEAD /health} has the length the JSON would have had, and no body."""
        user, _ = client()
        user.send(request("/health", "HEAD"))
        head = user.received()
        self.assertTrue(head.endswith(b"\r\n\r\n"))
        user.send(request("/health", "GET"))
        get = user.received()
        self.assertEqual(get.split(b"\r\n\r\n")[0] + b"\r\n\r\n", head)

    def test_notFound(self) -> None:
        """Any other path: 404 with a short text body; the connection goes on."""
        user, _ = client()
        user.send(request("/missing"))
        response = user.response()
        self.assertEqual((response.status, response.body), (404, b"Not Found\n"))
        self.assertEqual(response.headers["content-type"], "text/plain; charset=utf-8")
        self.assertTrue(user.connected)

    def test_methodNotAllowed(self) -> None:
        """Another method on a known path: 405 with C{Allow: GET, HEAD}."""
        for path in ["/", "/health", "/request"]:
            for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]:
                user, _ = client()
                user.send(request(path, method))
                response = user.response()
                self.assertEqual(response.status, 405, (path, method))
                self.assertEqual(response.headers["allow"], "GET, HEAD")
                self.assertEqual(response.body, b"Method Not Allowed\n")
                self.assertTrue(user.connected)

    def test_notFoundBeforeMethodNotAllowed(self) -> None:
        """An unknown path gets 404 whatever the method."""
        user, _ = client()
        user.send(request("/missing", "POST"), request("*", "OPTIONS"))
        self.assertEqual([r.status for r in user.responses()], [404, 404])

    def test_bodyReadAndDiscarded(self) -> None:
        """A body within the limit is read past; the next request is answered."""
        user, _ = client()
        user.send(
            request("/", "POST", headers=[("Content-Length", "5")], body=b"hello"),
            request("/", headers=[("Transfer-Encoding", "chunked")])
            + chunked(b"abc", b"defg"),
            request("/"),
        )
        self.assertEqual([r.status for r in user.responses()], [405, 200, 200])
        self.assertTrue(user.connected)

    def test_everyResponseHasRequiredHeaders(self) -> None:
        """Every response has Date, Server, Content-Length, Content-Type, nosniff."""
        user, _ = client()
        user.send(
            request("/"),
            request("/health"),
            request("/request"),
            request("/missing"),
            request("/", "POST"),
        )
        for response in user.responses():
            self.assertEqual(response.headers["date"], DATE)
            self.assertEqual(
                response.headers["server"], f"twisted-services/{__version__}"
            )
            self.assertEqual(
                response.headers["content-length"], str(len(response.body))
            )
            self.assertEqual(response.headers["x-content-type-options"], "nosniff")
            self.assertIn("content-type", response.headers)


class BadRequestTests(SynchronousTestCase):
    """A request the parser rejects gets 400, then the connection closes."""

    def assertBadRequest(self, user: Client, data: bytes) -> None:
        user.send(data)
        response = user.response()
        self.assertEqual(response.status, 400)
        self.assertEqual(response.body, b"Bad Request\n")
        self.assertEqual(response.headers["connection"], "close")
        self.assertFalse(user.connected)

    def test_garbage(self) -> None:
        """Bytes that are not HTTP get 400 and a close."""
        user, _ = client()
        self.assertBadRequest(user, b"\x00\x01\x02 not http\r\n\r\n")

    def test_malformed(self) -> None:
        """Bad versions, header bytes, framing: each gets 400."""
        for data in [
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET / HTTP/9.x\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
        ]:
            user, _ = client()
            self.assertBadRequest(user, data)

    def test_laterDataIgnored(self) -> None:
        """After a 400 nothing more the client sends is answered."""
        user, _ = client()
        self.assertBadRequest(user, b"BAD\r\n\r\n")
        user.send(request("/"), b"\x00")
        self.assertEqual(user.received(), b"")

    def test_afterGoodRequests(self) -> None:
        """Requests before the bad one are answered first, in order."""
        user, _ = client()
        user.send(request("/") + request("/missing") + b"??? / HTTP/1.1\r\n\r\n")
        self.assertEqual([r.status for r in user.responses()], [200, 404, 400])
        self.assertFalse(user.connected)

    def test_requestsCounted(self) -> None:
        """A 400 counts as a request served."""
        factory, _ = httpFactory()
        Client(factory).send(b"\x00\r\n\r\n")
        self.assertEqual(factory.requests, 1)


class BodyLimitTests(SynchronousTestCase):
    """A body over C{maxBody} gets 413 (or a 404 or 405 first) and a close."""

    def test_contentLengthOverLimit(self) -> None:
        """A C{Content-Length} over the limit gets 413 at once, before the body."""
        user, _ = client(maxBody=100)
        user.send(request("/", headers=[("Content-Length", "101")]))
        response = user.response()
        self.assertEqual(response.status, 413)
        self.assertEqual(response.body, b"Payload Too Large\n")
        self.assertEqual(response.headers["connection"], "close")
        self.assertFalse(user.connected)

    def test_contentLengthAtLimit(self) -> None:
        """A body of exactly C{maxBody} bytes is read, and discarded."""
        user, _ = client(maxBody=100)
        user.send(
            request("/", headers=[("Content-Length", "100")], body=b"x" * 100),
            request("/"),
        )
        self.assertEqual([r.status for r in user.responses()], [200, 200])

    def test_zeroLimit(self) -> None:
        """With C{maxBody} 0, any body is too large; none is fine."""
        user, _ = client(maxBody=0)
        user.send(request("/", headers=[("Content-Length", "0")]))
        self.assertEqual(user.response().status, 200)
        user.send(request("/", headers=[("Content-Length", "1")], body=b"x"))
        self.assertEqual(user.response().status, 413)

    def test_chunkedOverLimit(self) -> None:
        """A chunked body is counted as it arrives; past the limit, 413."""
        user, _ = client(maxBody=10)
        user.send(request("/", headers=[("Transfer-Encoding", "chunked")]))
        user.send(b"6\r\nabcdef\r\n")
        self.assertEqual(user.received(), b"")
        user.send(b"5\r\nghijk\r\n")
        response = user.response()
        self.assertEqual(response.status, 413)
        self.assertFalse(user.connected)

    def test_chunkedWithinLimit(self) -> None:
        """A chunked body within the limit is read and discarded."""
        user, _ = client(maxBody=10)
        user.send(
            request("/", headers=[("Transfer-Encoding", "chunked")])
            + chunked(b"abcde", b"fghij")
        )
        self.assertEqual(user.response().status, 200)
        self.assertTrue(user.connected)

    def test_headOverLimit(self) -> None:
        """C{HEAD} with too large a body gets a 413 with no body."""
        user, _ = client(maxBody=10)
        user.send(request("/", "HEAD", headers=[("Content-Length", "11")]))
        data = user.received()
        self.assertTrue(data.startswith(b"HTTP/1.1 413 "))
        self.assertTrue(data.endswith(b"\r\n\r\n"))

    def test_overLimitWhateverRoute(self) -> None:
        """
        A body over the limit gets 413 on an unknown path or with a method
        not allowed too (the README's promise); the connection closes.
        """
        for path, method, status in [("/missing", "GET", 413), ("/", "POST", 413)]:
            for headers in [
                [("Content-Length", "11")],
                [("Transfer-Encoding", "chunked")],
            ]:
                user, _ = client(maxBody=10)
                user.send(
                    request(path, method, headers=headers, body=chunked(b"x" * 11))
                )
                self.assertEqual(user.response().status, status)
                self.assertFalse(user.connected)


class HeaderLimitTests(SynchronousTestCase):
    """A head over C{maxHeaderSize} gets 431 (or 404 or 405 first) and a close."""

    def test_oneLargeHeader(self) -> None:
        """A head over the limit in one read gets 431."""
        user, _ = client(maxHeaderSize=1024)
        user.send(request("/", headers=[("X-Big", "x" * 1024)]))
        response = user.response()
        self.assertEqual(response.status, 431)
        self.assertEqual(response.body, b"Request Header Fields Too Large\n")
        self.assertEqual(response.headers["connection"], "close")
        self.assertFalse(user.connected)

    def test_defaultLimit(self) -> None:
        """The default limit is 16 KiB: a 16000-byte head passes, 17000 does not."""
        user, _ = client()
        user.send(request("/", headers=[("X", "x" * 16000)]))
        self.assertEqual(user.response().status, 200)
        user.send(request("/", headers=[("X", "x" * 17000)]))
        self.assertEqual(user.response().status, 431)

    def test_manySmallHeaders(self) -> None:
        """Small headers add up."""
        user, _ = client(maxHeaderSize=1024)
        user.send(request("/", headers=[(f"X-{i}", "v" * 10) for i in range(100)]))
        self.assertEqual(user.response().status, 431)

    def test_withinLimit(self) -> None:
        """A head just under the limit is answered."""
        user, _ = client(maxHeaderSize=1024)
        data = request("/", headers=[("X", "")])
        data = request("/", headers=[("X", "x" * (1024 - len(data)))])
        self.assertEqual(len(data), 1024)
        user.send(data)
        self.assertEqual(user.response().status, 200)

    def test_longURL(self) -> None:
        """A request target over the limit gets 414 (RFC 9112 section 3)."""
        user, _ = client(maxHeaderSize=1024)
        user.send(request("/?" + "q" * 2000))
        self.assertEqual(user.response().status, 414)
        self.assertFalse(user.connected)

    def test_longURLJustUnder(self) -> None:
        """A target just under the limit, in a head at the limit, is answered."""
        user, _ = client(maxHeaderSize=1024)
        head = request("/?", host="x")
        user.send(request("/?" + "q" * (1024 - len(head)), host="x"))
        self.assertEqual(user.response().status, 200)

    def test_longURLInPieces(self) -> None:
        """A URL arriving over many reads is counted as it arrives."""
        user, _ = client(maxHeaderSize=1024)
        user.send(b"GET /?")
        for _ in range(20):
            user.send(b"q" * 100)
        self.assertEqual(user.response().status, 414)
        self.assertFalse(user.connected)

    def test_trickledHeader(self) -> None:
        """
        A header value that never ends, fed in small reads, gets 431 once
        the head passes the limit, not at the end of the header.
        """
        user, _ = client(maxHeaderSize=1024)
        user.send(b"GET / HTTP/1.1\r\nX-Endless: ")
        sent = 0
        while user.connected and sent < 5000:
            user.send(b"x" * 10)
            sent += 10
        self.assertLessEqual(sent, 1024)
        self.assertEqual(user.response().status, 431)

    def test_largeFirstRead(self) -> None:
        """A head over the limit in its first read, mid-header, gets 431 at once."""
        user, _ = client(maxHeaderSize=1024)
        user.send(b"GET / HTTP/1.1\r\nX-Endless: " + b"x" * 4096)
        self.assertEqual(user.response().status, 431)

    def test_largeReadAfterRequest(self) -> None:
        """
        A head that begins after a request in a read is counted from the next
        read (or slice of a read) on: the parser never holds more than one
        read over the limit.
        """
        user, _ = client(maxHeaderSize=1024)
        user.send(request("/") + b"GET / HTTP/1.1\r\nX-Endless: " + b"x" * 4096)
        self.assertEqual(user.response().status, 200)
        user.send(b"x" * 1024)
        self.assertEqual(user.response().status, 431)

    def test_notFoundAndNotAllowedFirst(self) -> None:
        """404 and 405 take precedence over 431, and 414 over them."""
        for path, method, status in [
            ("/missing", "GET", 404),
            ("/", "POST", 405),
            ("/?" + "q" * 2000, "DELETE", 414),
            ("/" + "p" * 2000, "GET", 414),
        ]:
            user, _ = client(maxHeaderSize=1024)
            user.send(request(path, method, headers=[("X-Big", "x" * 2000)]))
            response = user.response()
            self.assertEqual(response.status, status, (path, method))
            self.assertEqual(response.headers["connection"], "close")
            self.assertFalse(user.connected)

    def test_afterBody(self) -> None:
        """A head that begins after a body in the same read is counted alone."""
        user, _ = client(maxHeaderSize=200, maxBody=10000)
        body = b"x" * 5000
        user.send(
            request("/", headers=[("Content-Length", "5000")], body=body)
            + b"GET / HTTP/1.1\r\n"
        )
        self.assertEqual(user.response().status, 200)
        user.send(b"Host: x\r\n", b"\r\n")
        self.assertEqual(user.response().status, 200)


class ExpectContinueTests(SynchronousTestCase):
    """C{Expect: 100-continue} gets 100 when the body will be read, else the answer."""

    def test_continue(self) -> None:
        """An acceptable request gets C{100 Continue}, then its response."""
        user, _ = client()
        user.send(
            request("/", headers=[("Content-Length", "5"), ("Expect", "100-continue")])
        )
        self.assertEqual(user.received(), CONTINUE)
        user.send(b"hello")
        self.assertEqual(user.received(), HELLO_RESPONSE)
        self.assertTrue(user.connected)

    def test_continueChunked(self) -> None:
        """A chunked body is as acceptable as one with a length."""
        user, _ = client()
        user.send(
            request(
                "/",
                headers=[("Transfer-Encoding", "chunked"), ("Expect", "100-Continue")],
            )
        )
        self.assertEqual(user.received(), CONTINUE)
        user.send(chunked(b"abc"))
        self.assertEqual(user.received(), HELLO_RESPONSE)

    def test_finalStatusAtOnce(self) -> None:
        """A request that will not be accepted gets its final status at once."""
        for path, method, status in [
            ("/missing", "GET", 404),
            ("/", "POST", 405),
        ]:
            user, _ = client()
            user.send(
                request(
                    path,
                    method,
                    headers=[("Content-Length", "5"), ("Expect", "100-continue")],
                )
            )
            response = user.response()
            self.assertEqual(response.status, status)
            self.assertEqual(response.headers["connection"], "close")
            self.assertFalse(user.connected)

    def test_tooLargeAtOnce(self) -> None:
        """A body over the limit gets 413 instead of 100."""
        user, _ = client(maxBody=4)
        user.send(
            request("/", headers=[("Content-Length", "5"), ("Expect", "100-continue")])
        )
        self.assertEqual(user.response().status, 413)

    def test_http10Ignored(self) -> None:
        """An HTTP/1.0 client does not know 100, so it is not sent one."""
        user, _ = client()
        user.send(
            request(
                "/",
                version="1.0",
                headers=[("Content-Length", "5"), ("Expect", "100-continue")],
            )
        )
        self.assertEqual(user.received(), b"")
        user.send(b"hello")
        self.assertEqual(user.response().status, 200)

    def test_noBodyNoContinue(self) -> None:
        """A request with no body has nothing to wait for: no 100."""
        user, _ = client()
        user.send(request("/", headers=[("Expect", "100-continue")]))
        self.assertEqual(user.received(), HELLO_RESPONSE)


class PersistenceTests(SynchronousTestCase):
    """Connections persist or close as HTTP/1.0 and HTTP/1.1 say."""

    def test_http11KeepAlive(self) -> None:
        """HTTP/1.1 persists by default, with no C{Connection} header."""
        user, _ = client()
        for _ in range(3):
            user.send(request("/"))
            response = user.response()
            self.assertNotIn("connection", response.headers)
        self.assertTrue(user.connected)

    def test_http11Close(self) -> None:
        """HTTP/1.1 with C{Connection: close} is answered with it, then closed."""
        user, _ = client()
        user.send(request("/", headers=[("Connection", "close")]) + request("/"))
        response = user.response()
        self.assertEqual(response.headers["connection"], "close")
        self.assertEqual(response.body, b"Hello World")
        self.assertFalse(user.connected)

    def test_http10Close(self) -> None:
        """HTTP/1.0 closes by default, and says so."""
        user, _ = client()
        user.send(request("/", version="1.0", headers=[]))
        self.assertEqual(user.response().headers["connection"], "close")
        self.assertFalse(user.connected)

    def test_http10KeepAlive(self) -> None:
        """HTTP/1.0 with C{Connection: keep-alive} persists, and says so."""
        user, _ = client()
        for _ in range(2):
            user.send(
                request("/", version="1.0", headers=[("Connection", "keep-alive")])
            )
            self.assertEqual(user.response().headers["connection"], "keep-alive")
        self.assertTrue(user.connected)

    def test_closeIgnoresLaterData(self) -> None:
        """After a C{Connection: close} response, more data is not answered."""
        user, _ = client()
        user.send(request("/", headers=[("Connection", "close")]))
        user.received()
        user.send(request("/"))
        self.assertEqual(user.received(), b"")

    def test_upgradeNotSupported(self) -> None:
        """An upgrade is not made: the request is answered, then the close."""
        user, _ = client()
        user.send(
            request(
                "/",
                headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")],
            )
            + b"\x81\x05hello"
        )
        response = user.response()
        self.assertEqual((response.status, response.body), (200, b"Hello World"))
        self.assertEqual(response.headers["connection"], "close")
        self.assertFalse(user.connected)

    def test_connect(self) -> None:
        """C{CONNECT} is no tunnel here: 404, then the close."""
        user, _ = client()
        user.send(request("example.com:443", "CONNECT") + b"\x16\x03\x01")
        response = user.response()
        self.assertEqual(response.status, 404)
        self.assertEqual(response.headers["connection"], "close")
        self.assertFalse(user.connected)


class PipeliningTests(SynchronousTestCase):
    """Pipelined requests are answered in order, however they are delivered."""

    BURST = (
        request("/")
        + request("/missing")
        + request("/", "POST", headers=[("Content-Length", "3")], body=b"abc")
        + request("/request", headers=[("A", "b")])
        + request("/", headers=[("Transfer-Encoding", "chunked")])
        + chunked(b"xyz")
        + request("/")
    )
    STATUSES = [200, 404, 405, 200, 200, 200]

    def test_inOrderOneWrite(self) -> None:
        """Several requests in one read: every response, in order, in one write."""
        factory, _ = httpFactory()
        transport = CountingTransport()
        user = Client(factory, transport)
        user.send(self.BURST)
        responses = user.responses()
        self.assertEqual([r.status for r in responses], self.STATUSES)
        self.assertEqual(
            responses[3].body, b"GET /request HTTP/1.1\nHost: example.com\nA: b\n"
        )
        self.assertEqual(transport.writes, 1)

    def test_headInBurst(self) -> None:
        """A C{HEAD} among pipelined requests gets no body; the next follows."""
        user, _ = client()
        user.send(request("/", "HEAD") + request("/"))
        headers = HELLO_RESPONSE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        self.assertEqual(user.received(), headers + HELLO_RESPONSE)

    def test_splitEverywhere(self) -> None:
        """The burst split in two at every byte gets the same responses."""
        for cut in range(1, len(self.BURST)):
            user, _ = client()
            user.send(self.BURST[:cut], self.BURST[cut:])
            self.assertEqual([r.status for r in user.responses()], self.STATUSES, cut)

    def test_byteAtATime(self) -> None:
        """The burst one byte per read gets the same responses."""
        user, _ = client()
        user.send(*[self.BURST[i : i + 1] for i in range(len(self.BURST))])
        self.assertEqual([r.status for r in user.responses()], self.STATUSES)
        self.assertTrue(user.connected)

    @settings(max_examples=100, deadline=None)
    @given(strategies.lists(strategies.integers(0, len(BURST)), max_size=20))
    def test_anySplit(self, cuts: list[int]) -> None:
        """The burst cut anywhere into any number of reads: the same responses."""
        bounds = [0, *sorted(cuts), len(self.BURST)]
        user, _ = client()
        user.send(*[self.BURST[a:b] for a, b in pairwise(bounds) if b > a])
        self.assertEqual([r.status for r in user.responses()], self.STATUSES)


class TimeoutTests(SynchronousTestCase):
    """Heads that take too long get 408; idle connections are closed."""

    def test_headerTimeout(self) -> None:
        """A head not complete within the header timeout gets 408 and a close."""
        user, clock = client(headerTimeout=10)
        user.send(b"GET / HTTP/1.1\r\n")
        clock.advance(9.9)
        self.assertEqual(user.received(), b"")
        clock.advance(0.1)
        response = user.response()
        self.assertEqual(response.status, 408)
        self.assertEqual(response.body, b"Request Timeout\n")
        self.assertEqual(response.headers["connection"], "close")
        self.assertFalse(user.connected)

    def test_slowloris(self) -> None:
        """A head trickling in a byte a second is still cut at the header timeout."""
        user, clock = client(headerTimeout=10, idleTimeout=60)
        data = request("/", headers=[("X-Slow", "x" * 100)])
        for index in range(len(data)):
            if not user.connected:
                break
            user.send(data[index : index + 1])
            clock.advance(1)
        self.assertEqual(index, 10)
        self.assertEqual(user.response().status, 408)

    def test_fromFirstByteOfEachHead(self) -> None:
        """Each request's head is timed from its own first byte."""
        user, clock = client(headerTimeout=10)
        for _ in range(3):
            user.send(b"GET / HTTP/1.1\r\n")
            clock.advance(9)
            user.send(b"Host: x\r\n\r\n")
            self.assertEqual(user.response().status, 200)
        self.assertTrue(user.connected)

    def test_completeHeadNoLongerTimed(self) -> None:
        """Once a head spread over reads is complete, its deadline is gone."""
        user, clock = client(headerTimeout=10, idleTimeout=60)
        user.send(b"GET / HTTP/1.1\r\n")
        clock.advance(1)
        user.send(b"Host: x\r\n\r\n")
        self.assertEqual(user.response().status, 200)
        clock.advance(30)
        self.assertTrue(user.connected)
        self.assertEqual(user.received(), b"")

    def test_headStartedInEarlierRead(self) -> None:
        """A head that began after a complete request in one read is timed too."""
        user, clock = client(headerTimeout=10)
        user.send(request("/") + b"GET")
        self.assertEqual(user.response().status, 200)
        clock.advance(10)
        self.assertEqual(user.response().status, 408)

    def test_idleTimeout(self) -> None:
        """A connection with no request for the idle timeout is closed, silently."""
        user, clock = client(idleTimeout=60)
        user.send(request("/"))
        user.received()
        clock.advance(59)
        self.assertTrue(user.connected)
        clock.advance(1)
        self.assertFalse(user.connected)
        self.assertEqual(user.received(), b"")

    def test_idleFromConnect(self) -> None:
        """A client that never sends is closed at the idle timeout, not before."""
        user, clock = client(idleTimeout=60, headerTimeout=10)
        clock.advance(59)
        self.assertTrue(user.connected)
        clock.advance(1)
        self.assertFalse(user.connected)

    def test_requestsKeepItOpen(self) -> None:
        """Each request restarts the idle time."""
        user, clock = client(idleTimeout=60)
        for _ in range(5):
            clock.advance(50)
            user.send(request("/"))
        self.assertTrue(user.connected)

    def test_noIdleTimeout(self) -> None:
        """With an idle timeout of 0, a connection may idle for ever."""
        user, clock = client(idleTimeout=0)
        user.send(request("/"))
        clock.advance(10**7)
        self.assertTrue(user.connected)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_noIdleTimeoutHeadStillTimed(self) -> None:
        """The header timeout applies without an idle timeout."""
        user, clock = client(idleTimeout=0, headerTimeout=5)
        user.send(b"GET / HTTP/1.1\r\n")
        clock.advance(5)
        self.assertEqual(user.response().status, 408)

    def test_slowBody(self) -> None:
        """A body that stops coming for the idle timeout gets 408."""
        user, clock = client(idleTimeout=30)
        user.send(request("/", headers=[("Content-Length", "10")], body=b"abc"))
        clock.advance(30)
        data = user.received()
        self.assertTrue(data.startswith(b"HTTP/1.1 408 "))
        self.assertFalse(user.connected)

    def test_oneTimerPerConnection(self) -> None:
        """Keep-alive requests leave the connection's one timer alone."""
        user, clock = client()
        [timer] = clock.getDelayedCalls()
        for _ in range(10):
            user.send(request("/"))
            clock.advance(1)
        self.assertEqual(clock.getDelayedCalls(), [timer])

    def test_timerGoneAfterClose(self) -> None:
        """A closed connection leaves no timer behind."""
        user, clock = client()
        user.send(request("/", headers=[("Connection", "close")]))
        self.assertFalse(user.connected)
        self.assertEqual(clock.getDelayedCalls(), [])


class ClosingTests(SynchronousTestCase):
    """Closing half-closes where it can, and aborts a client that lingers."""

    def test_halfClose(self) -> None:
        """
        On a transport that can, the write side closes first, and what the
        client still sends is read and ignored until it closes.
        """
        factory, _ = httpFactory()
        transport = HalfClosingTransport()
        user = Client(factory, transport)
        user.send(b"\x00" + request("/"))
        self.assertEqual(user.response().status, 400)
        self.assertTrue(transport.writeClosed)
        self.assertIsNone(transport.producer)
        user.send(request("/"))
        self.assertEqual(user.received(), b"")
        transport.clientCloses()
        self.assertEqual(len(factory.connections), 0)

    def test_resumesReadingToDrain(self) -> None:
        """A connection paused for backpressure reads again while it closes."""
        factory, _ = httpFactory()
        transport = HalfClosingTransport()
        user = Client(factory, transport)
        user.protocol.pauseProducing()
        user.send(request("/", headers=[("Connection", "close")]))
        self.assertEqual(transport.producerState, "producing")
        self.assertTrue(transport.writeClosed)

    def test_lingeringClientAborted(self) -> None:
        """A client that does not close within the grace period is aborted."""
        factory, clock = httpFactory()
        transport = HalfClosingTransport()
        user = Client(factory, transport)
        user.send(request("/", headers=[("Connection", "close")]))
        clock.advance(CLOSE_GRACE - 0.1)
        self.assertTrue(user.connected)
        with capturedLogs() as events:
            clock.advance(0.1)
        self.assertFalse(user.connected)
        self.assertTrue(transport.disconnected)
        self.assertIn("did not close within 3.0 seconds, aborting", messages(events)[0])
        self.assertEqual(clock.getDelayedCalls(), [])


class ClientHalfCloseTests(SynchronousTestCase):
    """A client that shuts down its side still gets what it asked for."""

    def test_providesHalfClose(self) -> None:
        """The protocol hears of a half-close instead of losing the connection."""
        user, _ = client()
        self.assertTrue(verifyObject(IHalfCloseableProtocol, user.protocol))

    def test_answersThenCloses(self) -> None:
        """Requests sent before the half-close are answered, then the close."""
        user, clock = client()
        user.send(request("/") + request("/missing"))
        user.protocol.readConnectionLost()
        self.assertEqual([r.status for r in user.responses()], [200, 404])
        self.assertFalse(user.connected)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_unfinishedRequest(self) -> None:
        """A request the client left unfinished goes unanswered."""
        user, _ = client()
        user.send(request("/") + b"GET / HTTP/1.1\r\nHo")
        user.protocol.readConnectionLost()
        self.assertEqual([r.status for r in user.responses()], [200])
        self.assertFalse(user.connected)

    def test_whileLingering(self) -> None:
        """The client closing while we linger after a close ends the connection."""
        factory, clock = httpFactory()
        transport = HalfClosingTransport()
        user = Client(factory, transport)
        user.send(request("/", headers=[("Connection", "close")]))
        user.protocol.writeConnectionLost()
        self.assertTrue(user.connected)
        user.protocol.readConnectionLost()
        self.assertFalse(user.connected)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_notReadingAborted(self) -> None:
        """A client that half-closes and never reads is aborted after the grace."""
        factory, clock = httpFactory()
        transport = HalfClosingTransport()
        transport.loseConnection = lambda: None  # type: ignore[method-assign]
        user = Client(factory, transport)
        user.send(request("/"))
        user.protocol.readConnectionLost()
        clock.advance(CLOSE_GRACE)
        self.assertTrue(transport.disconnected)


class ConnectionLimitTests(SynchronousTestCase):
    """Past C{maxConnections} a connection gets 503 and is closed."""

    def test_serviceUnavailable(self) -> None:
        """The connection past the limit gets a 503 with C{Connection: close}."""
        factory, _ = httpFactory(maxConnections=2)
        Client(factory), Client(factory)
        protocol, transport = connect(factory)
        self.assertIsInstance(protocol, ServiceUnavailable)
        [response] = parseResponses(transport.value())
        self.assertEqual(response.status, 503)
        self.assertEqual(response.body, b"Service Unavailable\n")
        self.assertEqual(response.headers["connection"], "close")
        self.assertEqual(response.headers["date"], DATE)
        self.assertFalse(transport.connected)
        self.assertEqual(len(factory.connections), 2)

    def test_closingFreesSlot(self) -> None:
        """A closed connection lets the next one in."""
        factory, _ = httpFactory(maxConnections=1)
        first = Client(factory)
        first.transport.loseConnection()
        second = Client(factory)
        second.send(request("/"))
        self.assertEqual(second.response().status, 200)

    def test_refusalsLogged(self) -> None:
        """Refusals are logged, throttled, as for the other services."""
        factory, _ = httpFactory(maxConnections=1)
        Client(factory)
        with capturedLogs() as events:
            connect(factory)
            connect(factory)
        self.assertEqual(
            messages(events), ["http: refused 1 connection(s): limit of 1 reached"]
        )


class ProtocolNegotiationTests(SynchronousTestCase):
    """Over TLS the factory negotiates HTTP/1.1 by ALPN."""

    def test_acceptableProtocols(self) -> None:
        """
        L{HTTPFactory} provides L{IProtocolNegotiationFactory} offering only
        C{http/1.1}, so a TLS listener selects it for curl and browsers.
        """
        factory = HTTPFactory(Clock())
        self.assertTrue(verifyObject(IProtocolNegotiationFactory, factory))
        self.assertEqual(factory.acceptableProtocols(), [b"http/1.1"])


class DateTests(SynchronousTestCase):
    """C{Date} is the clock's time, recomputed when the second changes."""

    def test_changesWithSecond(self) -> None:
        """Within a second the date holds; past it, the next second shows."""
        user, clock = client()
        user.send(request("/"))
        self.assertEqual(user.response().headers["date"], DATE)
        clock.advance(0.9)
        user.send(request("/health"))
        self.assertEqual(user.response().headers["date"], DATE)
        clock.advance(0.1)
        user.send(request("/"))
        self.assertEqual(
            user.response().headers["date"], "Sun, 06 Nov 1994 08:49:38 GMT"
        )
        clock.advance(59)
        user.send(request("/missing"))
        self.assertEqual(
            user.response().headers["date"], "Sun, 06 Nov 1994 08:50:37 GMT"
        )

    def test_timeoutResponseDated(self) -> None:
        """A 408 sent by the timer carries the time it is sent."""
        user, clock = client(headerTimeout=10)
        user.send(b"GET")
        clock.advance(10)
        self.assertEqual(
            user.response().headers["date"], "Sun, 06 Nov 1994 08:49:47 GMT"
        )


class AccessLogTests(SynchronousTestCase):
    """One Combined Log Format line per request, unless turned off."""

    def logged(self, *chunks: bytes, **kwargs: object) -> list[str]:
        """The access log lines answering C{chunks} write (none to twisted.logger)."""
        lines: list[bytes] = []
        sink = LineList(lines) if kwargs.pop("accessLog", True) else None
        factory, _ = httpFactory(accessLog=sink, **kwargs)
        protocol, _ = connect(factory, IPv4Address("TCP", "127.0.2.7", 5555))
        with capturedLogs() as events:
            for chunk in chunks:
                protocol.dataReceived(chunk)
        self.assertEqual(messages(events), [])
        self.assertTrue(all(line.endswith(b"\n") for line in lines))
        return [line.decode("ascii").rstrip("\n") for line in lines]

    def test_format(self) -> None:
        """Host, time, request line, status, size, referer, user agent."""
        self.assertEqual(
            self.logged(
                request(
                    "/?q=1",
                    headers=[
                        ("User-Agent", "curl/8.0"),
                        ("Referer", "http://example.com/"),
                    ],
                )
            ),
            [
                '127.0.2.7 - - [06/Nov/1994:08:49:37 +0000] "GET /?q=1 HTTP/1.1" '
                '200 11 "http://example.com/" "curl/8.0"'
            ],
        )

    def test_everyRequest(self) -> None:
        """Pipelined requests are logged in order, each with its status and size."""
        lines = self.logged(
            request("/missing", headers=[])
            + request("/", "HEAD", headers=[])
            + request("/request", headers=[("A", "b")])
            + request("/", "DELETE", version="1.0", headers=[])
        )
        self.assertEqual(
            [line.split("] ", 1)[1] for line in lines],
            [
                '"GET /missing HTTP/1.1" 404 10 "-" "-"',
                '"HEAD / HTTP/1.1" 200 - "-" "-"',
                '"GET /request HTTP/1.1" 200 45 "-" "-"',
                '"DELETE / HTTP/1.0" 405 19 "-" "-"',
            ],
        )

    def test_escaped(self) -> None:
        """Quotes and odd bytes from the client cannot forge a log field."""
        [line] = self.logged(
            request("/", headers=[("User-Agent", 'x" 200 "\xff')]),
        )
        self.assertTrue(line.endswith('"-" "x\\" 200 \\"\\xff"'), line)

    def test_errors(self) -> None:
        """Rejected requests are logged too; an unparsed one as C{-}."""
        self.assertEqual(
            self.logged(b"\x00\r\n\r\n"),
            ['127.0.2.7 - - [06/Nov/1994:08:49:37 +0000] "-" 400 12 "-" "-"'],
        )
        [line] = self.logged(
            request("/", headers=[("Content-Length", "11")]), maxBody=10
        )
        self.assertIn('"GET / HTTP/1.1" 413 18', line)

    def test_off(self) -> None:
        """With no access log, answering requests logs nothing."""
        self.assertEqual(
            self.logged(
                request("/") + request("/health") + request("/missing"),
                accessLog=False,
            ),
            [],
        )


class BackpressureTests(SynchronousTestCase):
    """The protocol stops reading from a client that does not read."""

    def test_registeredAsStreamingProducer(self) -> None:
        """The protocol is its transport's streaming producer."""
        user, _ = client()
        self.assertIs(user.transport.producer, user.protocol)
        self.assertTrue(user.transport.streaming)
        self.assertTrue(verifyObject(IPushProducer, user.protocol))

    def test_pauseAndResume(self) -> None:
        """Paused by the transport, it pauses reading; resumed, it reads again."""
        user, _ = client()
        user.protocol.pauseProducing()
        self.assertEqual(user.transport.producerState, "paused")
        user.protocol.resumeProducing()
        self.assertEqual(user.transport.producerState, "producing")

    def test_stopProducing(self) -> None:
        """Stopping is left to C{connectionLost}."""
        user, _ = client()
        user.protocol.stopProducing()
        self.assertTrue(user.connected)


class RobustnessTests(SynchronousTestCase):
    """Nothing a client sends raises out of the protocol."""

    @settings(max_examples=300, deadline=None)
    @given(
        strategies.lists(
            strategies.one_of(
                strategies.binary(min_size=1),
                strategies.sampled_from(
                    [
                        b"GET / HTTP/1.1\r\n",
                        b"\r\n",
                        b"Content-Length: 3\r\n",
                        b"Transfer-Encoding: chunked\r\n",
                        b"Expect: 100-continue\r\n",
                        b"Connection: close\r\n",
                        b"3\r\nabc\r\n0\r\n\r\n",
                        b"HEAD /request HTTP/1.0\r\n",
                        b"Upgrade: h2c\r\nConnection: Upgrade\r\n",
                    ]
                ),
            ),
            max_size=20,
        ),
        strategies.booleans(),
    )
    def test_arbitraryBytes(self, chunks: list[bytes], halfClose: bool) -> None:
        """Arbitrary bytes in arbitrary reads never raise and log no error."""
        factory, clock = httpFactory(maxHeaderSize=64, maxBody=8)
        transport = HalfClosingTransport() if halfClose else None
        user = Client(factory, transport)
        with capturedLogs() as events:
            for chunk in chunks:
                user.send(chunk)
                clock.advance(1)
            clock.pump([10] * 10)
        self.assertEqual([e for e in events if "log_failure" in e], [])
        self.assertEqual(len(factory.connections), 0)

    def test_callbackBugLogged(self) -> None:
        """A bug in handling a request is logged and closes the connection."""
        user, _ = client()

        def broken(request: Request) -> bytes:
            raise ZeroDivisionError()

        user.protocol._builtBody = broken  # type: ignore[method-assign]
        user.send(request("/health"))
        self.assertFalse(user.connected)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class FactoryTests(SynchronousTestCase):
    """L{HTTPFactory} checks its limits."""

    def test_badLimits(self) -> None:
        """Limits that make no sense are refused up front."""
        for kwargs in [
            {"maxBody": -1},
            {"maxHeaderSize": 0},
            {"headerTimeout": 0},
            {"shutdownTimeout": -1},
        ]:
            self.assertRaises(ValueError, HTTPFactory, Clock(), **kwargs)


class ShutdownTests(SynchronousTestCase):
    """Draining L{HTTPFactory.connections} lets every connection finish, then fires."""

    def test_noConnections(self) -> None:
        """With no connection open the L{Deferred} fires at once."""
        factory, clock = httpFactory()
        self.successResultOf(factory.connections.drain())
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_idleClosed(self) -> None:
        """
        A connection between requests half-closes at once, after what was
        written, and reads on (discarding a request that crossed the close)
        until the client closes its side; the drain waits for that.
        """
        factory, _ = httpFactory()
        transport = HalfClosingTransport()
        user = Client(factory, transport)
        user.send(request())
        done = factory.connections.drain()
        self.assertEqual(user.response().body, b"Hello World")
        self.assertTrue(transport.writeClosed)
        self.assertNoResult(done)
        user.send(request())
        self.assertEqual(user.received(), b"")
        transport.clientCloses()
        self.assertFalse(user.connected)
        self.successResultOf(done)

    def test_midRequestAnsweredThenClosed(self) -> None:
        """
        A connection whose request head is arriving gets its answer, with
        C{Connection: close}, then closes; the L{Deferred} waits for it.
        """
        factory, _ = httpFactory()
        user = Client(factory)
        user.send(b"GET / HTTP/1.1\r\nHost: exa")
        done = factory.connections.drain()
        self.assertNoResult(done)
        self.assertTrue(user.connected)
        user.send(b"mple.com\r\n\r\n" + request())
        [response] = user.responses()
        self.assertEqual(response.body, b"Hello World")
        self.assertEqual(response.headers["connection"], "close")
        self.assertFalse(user.connected)
        self.successResultOf(done)

    def test_midBodyAnsweredThenClosed(self) -> None:
        """
        A connection whose head was complete before the shutdown is answered
        with C{Connection: close} once its body arrives.
        """
        factory, _ = httpFactory()
        user = Client(factory)
        user.send(request(host="h", headers=[("Content-Length", "4")]) + b"ab")
        done = factory.connections.drain()
        user.send(b"cd")
        self.assertEqual(user.response().headers["connection"], "close")
        self.assertFalse(user.connected)
        self.successResultOf(done)

    def test_timeoutAborts(self) -> None:
        """
        A request not finished within C{shutdownTimeout} seconds has its
        connection aborted, and then the L{Deferred} fires.
        """
        factory, clock = httpFactory(shutdownTimeout=2.0)
        idle = Client(factory)
        stuck = Client(factory)
        stuck.send(b"GET / HTTP/1.1\r\n")
        with capturedLogs() as events:
            done = factory.connections.drain()
            self.assertFalse(idle.connected)
            clock.advance(1.9)
            self.assertNoResult(done)
            self.assertTrue(stuck.connected)
            clock.advance(0.1)
        self.assertTrue(stuck.transport.disconnected)
        self.assertEqual(stuck.received(), b"")
        self.successResultOf(done)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(
            messages(events),
            [
                "http: shutting down, finishing 2 connection(s)",
                "http: 1 connection(s) not finished within 2.0 seconds, aborting",
            ],
        )

    def test_abort(self) -> None:
        """L{HTTPProtocol.abort} drops the connection at once, request or not."""
        factory, _ = httpFactory()
        user = Client(factory)
        user.send(b"GET / HTTP/1.1\r\n")
        user.protocol.abort()
        self.assertFalse(user.connected)
        self.assertEqual(user.received(), b"")
        self.assertEqual(len(factory.connections), 0)

    def test_defaultTimeout(self) -> None:
        """By default the grace period is L{SHUTDOWN_TIMEOUT} seconds."""
        factory, clock = httpFactory()
        Client(factory).send(b"GET / HTTP/1.1\r\n")
        done = factory.connections.drain()
        clock.advance(SHUTDOWN_TIMEOUT - 0.001)
        self.assertNoResult(done)
        clock.advance(0.001)
        self.successResultOf(done)

    def test_refusesNewConnections(self) -> None:
        """Once shutting down, the factory builds no protocol."""
        factory, _ = httpFactory()
        factory.connections.drain()
        self.assertIsNone(factory.buildProtocol(peerAddress()))
