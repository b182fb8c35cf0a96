"""
Tests for L{twisted_services.http.responses}: the prebuilt responses, their
once-a-second C{Date}, and access log escaping.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_services import __version__
from twisted_services.http.responses import (
    BUILT,
    JSON,
    Connection,
    Kind,
    ResponseTable,
    escapeLogField,
    httpDate,
    logTimestamp,
)

PERSISTENT = Connection.PERSISTENT
KEEP_ALIVE = Connection.KEEP_ALIVE
CLOSE = Connection.CLOSE

RFC_EXAMPLE = 784111777.0
"""Sun, 06 Nov 1994 08:49:37 GMT: RFC 9110's example date, as epoch seconds."""


def table(message: bytes = b"Hello World", now: float = RFC_EXAMPLE) -> ResponseTable:
    """A L{ResponseTable} for C{message}, refreshed for C{now}."""
    responses = ResponseTable(message)
    responses.refresh(now)
    return responses


class DateTests(SynchronousTestCase):
    """L{httpDate} and L{logTimestamp} format times in UTC, in English."""

    def test_httpDate(self) -> None:
        """An IMF-fixdate, as RFC 9110 spells its example."""
        self.assertEqual(httpDate(RFC_EXAMPLE), b"Sun, 06 Nov 1994 08:49:37 GMT")

    def test_httpDateTruncates(self) -> None:
        """A fraction of a second is dropped, never rounded up."""
        self.assertEqual(
            httpDate(RFC_EXAMPLE + 0.999), b"Sun, 06 Nov 1994 08:49:37 GMT"
        )

    def test_logTimestamp(self) -> None:
        """Common Log Format's time, with a zero offset."""
        self.assertEqual(logTimestamp(RFC_EXAMPLE), "06/Nov/1994:08:49:37 +0000")


class ResponseTableTests(SynchronousTestCase):
    """L{ResponseTable} holds every fixed response, re-dated each second."""

    def test_hello(self) -> None:
        """The hello-world response, byte for byte."""
        self.assertEqual(
            table().fixed[(Kind.HELLO, False, PERSISTENT)],
            b"HTTP/1.1 200 OK\r\n"
            b"Server: twisted-services/" + __version__.encode() + b"\r\n"
            b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 11\r\n"
            b"X-Content-Type-Options: nosniff\r\n"
            b"\r\n"
            b"Hello World",
        )

    def test_variants(self) -> None:
        """
        The C{HEAD} variant drops the body but keeps C{Content-Length}; the
        connection variants add no header, C{keep-alive} or C{close}.
        """
        fixed = table(b"hi").fixed
        full = fixed[(Kind.HELLO, False, PERSISTENT)]
        self.assertEqual(fixed[(Kind.HELLO, True, PERSISTENT)], full[:-2])
        self.assertIn(b"Content-Length: 2\r\n", fixed[(Kind.HELLO, True, PERSISTENT)])
        self.assertEqual(
            fixed[(Kind.HELLO, False, KEEP_ALIVE)],
            full.replace(b"\r\n\r\n", b"\r\nConnection: keep-alive\r\n\r\n"),
        )
        self.assertEqual(
            fixed[(Kind.HELLO, True, CLOSE)],
            full[:-2].replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"),
        )
        self.assertNotIn(b"Connection", full)

    def test_errors(self) -> None:
        """Each error kind has its status, a short text body, and C{close} if asked."""
        fixed = table().fixed
        for kind, statusLine, body in [
            (Kind.NOT_FOUND, b"404 Not Found", b"Not Found\n"),
            (
                Kind.METHOD_NOT_ALLOWED,
                b"405 Method Not Allowed",
                b"Method Not Allowed\n",
            ),
            (Kind.BAD_REQUEST, b"400 Bad Request", b"Bad Request\n"),
            (Kind.PAYLOAD_TOO_LARGE, b"413 Payload Too Large", b"Payload Too Large\n"),
            (
                Kind.HEADERS_TOO_LARGE,
                b"431 Request Header Fields Too Large",
                b"Request Header Fields Too Large\n",
            ),
            (Kind.REQUEST_TIMEOUT, b"408 Request Timeout", b"Request Timeout\n"),
            (
                Kind.SERVICE_UNAVAILABLE,
                b"503 Service Unavailable",
                b"Service Unavailable\n",
            ),
        ]:
            response = fixed[(kind, False, CLOSE)]
            self.assertTrue(response.startswith(b"HTTP/1.1 " + statusLine + b"\r\n"))
            self.assertTrue(response.endswith(b"\r\n\r\n" + body))
            self.assertIn(b"Content-Length: %d\r\n" % len(body), response)
            self.assertIn(b"Content-Type: text/plain; charset=utf-8\r\n", response)
            self.assertIn(b"X-Content-Type-Options: nosniff\r\n", response)
            self.assertIn(b"Connection: close\r\n", response)
            self.assertEqual(
                b"Allow: GET, HEAD\r\n" in response, kind is Kind.METHOD_NOT_ALLOWED
            )

    def test_everyKeyPrebuilt(self) -> None:
        """
        Every kind but those built per request has a response for each
        C{HEAD} flag and C{Connection} variant; the built ones have none.
        """
        fixed = table().fixed
        self.assertEqual(
            set(fixed),
            {
                (kind, headOnly, connection)
                for kind in Kind
                if kind not in BUILT
                for headOnly in (False, True)
                for connection in Connection
            },
        )
        self.assertEqual(set(BUILT), {Kind.HEALTH, Kind.REQUEST_ECHO})

    def test_bodyLengths(self) -> None:
        """C{bodyLengths} is what each response sends of its body."""
        responses = table()
        self.assertEqual(set(responses.bodyLengths), set(responses.fixed))
        for key, response in responses.fixed.items():
            length = responses.bodyLengths[key]
            self.assertEqual(len(response.split(b"\r\n\r\n", 1)[1]), length)

    def test_refreshedOncePerSecond(self) -> None:
        """L{ResponseTable.current} re-dates only when the second changes."""
        responses = table()
        first = responses.current(RFC_EXAMPLE + 0.5)
        self.assertIs(responses.current(RFC_EXAMPLE + 0.99), first)
        later = responses.current(RFC_EXAMPLE + 1)
        self.assertIn(
            b"Date: Sun, 06 Nov 1994 08:49:38 GMT\r\n",
            later[(Kind.HELLO, False, PERSISTENT)],
        )
        self.assertEqual(responses.logTime, "06/Nov/1994:08:49:38 +0000")

    def test_clockBackwards(self) -> None:
        """A clock set back re-dates too, instead of serving a future date."""
        responses = table()
        earlier = responses.current(RFC_EXAMPLE - 60)
        self.assertIn(
            b"Date: Sun, 06 Nov 1994 08:48:37 GMT\r\n",
            earlier[(Kind.HELLO, False, PERSISTENT)],
        )

    def test_build(self) -> None:
        """A built response has the current date and the common headers."""
        responses = table()
        built = responses.build(JSON, b"{}", KEEP_ALIVE)
        self.assertEqual(
            built,
            b"HTTP/1.1 200 OK\r\n"
            b"Server: twisted-services/" + __version__.encode() + b"\r\n"
            b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: 2\r\n"
            b"X-Content-Type-Options: nosniff\r\n"
            b"Cache-Control: no-store\r\n"
            b"Connection: keep-alive\r\n"
            b"\r\n"
            b"{}",
        )
        self.assertEqual(responses.build(JSON, b"{}", KEEP_ALIVE, True), built[:-2])


class EscapeLogFieldTests(SynchronousTestCase):
    """L{escapeLogField} makes client bytes safe inside a quoted log field."""

    def test_plain(self) -> None:
        """Printable ASCII passes through."""
        self.assertEqual(escapeLogField(b"curl/8.0 (x; y)"), "curl/8.0 (x; y)")

    def test_missing(self) -> None:
        """A missing or empty field is C{-}."""
        self.assertEqual(escapeLogField(None), "-")
        self.assertEqual(escapeLogField(b""), "-")

    def test_escapes(self) -> None:
        """Quotes, backslashes and other bytes are escaped as Apache does."""
        self.assertEqual(
            escapeLogField(b'a"b\\c\td\x7f\xff'), 'a\\"b\\\\c\\x09d\\x7f\\xff'
        )
