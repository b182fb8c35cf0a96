"""
Tests for L{twisted_services.http.request}: the record of one request, and
what its headers are taken to mean.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_services.http.request import HEAD_OVERHEAD, Request
from twisted_services.http.responses import Connection, Kind


def requestWith(*headers: tuple[bytes, bytes]) -> Request:
    """A L{Request} that has received C{headers}."""
    request = Request()
    for name, value in headers:
        request.addHeader(name, value)
    return request


class FreshRequestTests(SynchronousTestCase):
    """A new L{Request} knows nothing yet."""

    def test_defaults(self) -> None:
        """Empty target, no headers, the head's fixed overhead, no body framing."""
        request = Request()
        self.assertEqual(
            (request.url, request.headerLines, request.headSize),
            (b"", [], HEAD_OVERHEAD),
        )
        self.assertIsNone(request.headStart)
        self.assertFalse(request.headComplete)
        self.assertEqual((request.contentLength, request.chunked), (0, False))
        self.assertFalse(request.expectContinue)
        self.assertFalse(request.connectionHeader)
        self.assertIsNone(request.userAgent)
        self.assertIsNone(request.referer)
        self.assertEqual(
            (request.kind, request.headOnly, request.connection),
            (Kind.HELLO, False, Connection.PERSISTENT),
        )

    def test_ownHeaderList(self) -> None:
        """Each request has its own header list: one request's never leak."""
        first, second = Request(), Request()
        first.addHeader(b"A", b"1")
        self.assertEqual(second.headerLines, [])


class AddHeaderTests(SynchronousTestCase):
    """L{Request.addHeader} keeps every header and notes the ones that matter."""

    def test_keptInOrder(self) -> None:
        """Every header is kept, name then value, as received."""
        request = requestWith((b"Host", b"x"), (b"X-Odd", b" spaced "))
        self.assertEqual(request.headerLines, [b"Host", b"x", b"X-Odd", b" spaced "])

    def test_framing(self) -> None:
        """C{Content-Length} and C{Transfer-Encoding} are noted, in any case."""
        request = requestWith((b"CONTENT-LENGTH", b"42"))
        self.assertEqual(request.contentLength, 42)
        self.assertTrue(requestWith((b"transfer-encoding", b"chunked")).chunked)

    def test_expect(self) -> None:
        """Only C{100-continue}, in any case and spacing, is an expectation we meet."""
        self.assertTrue(requestWith((b"Expect", b" 100-Continue ")).expectContinue)
        self.assertFalse(requestWith((b"Expect", b"200-ok")).expectContinue)

    def test_connection(self) -> None:
        """A C{Connection} header of any value is noted."""
        self.assertTrue(requestWith((b"Connection", b"keep-alive")).connectionHeader)

    def test_forTheLog(self) -> None:
        """C{User-Agent} and C{Referer} are kept for the access log."""
        request = requestWith((b"User-Agent", b"curl/8"), (b"Referer", b"http://r/"))
        self.assertEqual(
            (request.userAgent, request.referer), (b"curl/8", b"http://r/")
        )

    def test_sameLengthIgnored(self) -> None:
        """A header as long as a noted one, but another, changes nothing."""
        request = requestWith((b"X-Length-Thing", b"7"), (b"Accept", b"*/*"))
        self.assertEqual(request.contentLength, 0)
        self.assertFalse(request.expectContinue)


class TextTests(SynchronousTestCase):
    """The request line and the C{/request} echo, as received."""

    def test_line(self) -> None:
        """The request line from the method, target and version."""
        request = Request()
        request.url = b"/request?q=1"
        self.assertEqual(request.line(b"GET", "1.0"), b"GET /request?q=1 HTTP/1.0")

    def test_echo(self) -> None:
        """The line, then each header as C{name: value}, one per line."""
        request = requestWith((b"Host", b"x"), (b"X", b"<b>"))
        self.assertEqual(
            request.echo(b"GET /request HTTP/1.1"),
            b"GET /request HTTP/1.1\nHost: x\nX: <b>\n",
        )
