"""
Tests for what RFC 9112 makes a server refuse (L{twisted_services.http.strict})
and for the bounds on request bodies on the wire and in time: driven through
L{HTTPProtocol} on a fake transport, then with raw sockets against the real
C{twistd -n http} over loopback.
"""

from __future__ import annotations

import select
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.http.test_integration import HTTPIntegrationTestCase, HTTPSocket
from tests.http.test_protocol import client, request
from tests.support.waiting import polling
from twisted_services.http.protocol import CHUNK_FRAMING
from twisted_services.http.responses import Kind
from twisted_services.http.strict import headProblem, validHost


class ValidHostTests(SynchronousTestCase):
    """L{validHost} accepts the C{Host} grammar of RFC 9110 section 7.2."""

    def test_valid(self) -> None:
        """Names, IPv4, IPv6 literals, ports, and the empty value."""
        for value in [
            b"example.com",
            b"example.com:8080",
            b"127.0.0.1:80",
            b"[::1]",
            b"[::1]:8080",
            b"xn--bcher-kva.example",
            b"a%20b",
            b"",
        ]:
            self.assertTrue(validHost(value), value)

    def test_invalid(self) -> None:
        """Spaces, slashes, user info, a bad port or bracket: invalid."""
        for value in [
            b"exa mple.com",
            b"example.com/path",
            b"user@example.com",
            b"example.com:80a",
            b"[::1",
            b"a%2",
            b"example.com\x00",
            b"h\xc3\xa9",
        ]:
            self.assertFalse(validHost(value), value)


class HeadProblemTests(SynchronousTestCase):
    """L{headProblem} decides by version and C{Host} lines alone."""

    def test_versions(self) -> None:
        """1.x is served (Host permitting), 0.9 is 400, 2.0 and up 505."""
        self.assertIsNone(headProblem("1.1", 1, True))
        self.assertIsNone(headProblem("1.2", 1, True))
        self.assertIsNone(headProblem("1.0", 0, True))
        self.assertEqual(headProblem("0.9", 0, True), Kind.BAD_REQUEST)
        self.assertEqual(headProblem("2.0", 1, True), Kind.VERSION_NOT_SUPPORTED)
        self.assertEqual(headProblem("3.1", 1, True), Kind.VERSION_NOT_SUPPORTED)

    def test_hosts(self) -> None:
        """HTTP/1.1 needs one valid Host; no version may have two or a bad one."""
        self.assertEqual(headProblem("1.1", 0, True), Kind.BAD_REQUEST)
        self.assertEqual(headProblem("1.1", 2, True), Kind.BAD_REQUEST)
        self.assertEqual(headProblem("1.0", 2, True), Kind.BAD_REQUEST)
        self.assertEqual(headProblem("1.0", 1, False), Kind.BAD_REQUEST)


class HostTests(SynchronousTestCase):
    """RFC 9112 section 3.2 through the protocol: bad C{Host} gets 400 and a close."""

    def assertRefused(self, data: bytes, status: int = 400) -> None:
        user, _ = client()
        user.send(data)
        response = user.response()
        self.assertEqual(response.status, status, data)
        self.assertEqual(response.headers["connection"], "close")
        self.assertFalse(user.connected)

    def test_missing(self) -> None:
        """An HTTP/1.1 request without C{Host} gets 400."""
        self.assertRefused(request("/", host=None))

    def test_twice(self) -> None:
        """Two C{Host} lines get 400, even with the same value, even in 1.0."""
        self.assertRefused(request("/", headers=[("Host", "example.com")]))
        self.assertRefused(
            request("/", version="1.0", host="a", headers=[("host", "b")])
        )

    def test_invalid(self) -> None:
        """An invalid C{Host} value gets 400."""
        self.assertRefused(request("/", host="a b"))
        self.assertRefused(request("/", host="example.com/x"))

    def test_validForms(self) -> None:
        """Empty, IPv6 and ported hosts are served; 1.0 may omit it."""
        user, _ = client()
        user.send(
            request("/", host=""),
            request("/", host="[::1]:8080"),
            request("/", host="Example.COM:80"),
            request(
                "/", version="1.0", host=None, headers=[("Connection", "keep-alive")]
            ),
        )
        self.assertEqual([r.status for r in user.responses()], [200] * 4)
        self.assertTrue(user.connected)

    def test_trailerHostNotCounted(self) -> None:
        """A C{Host} trailer after a chunked body is no second C{Host}."""
        user, _ = client()
        user.send(
            request("/", headers=[("Transfer-Encoding", "chunked")])
            + b"1\r\nx\r\n0\r\nHost: other\r\n\r\n"
            + request("/")
        )
        self.assertEqual([r.status for r in user.responses()], [200, 200])


class VersionTests(SynchronousTestCase):
    """What each HTTP version gets (RFC 9110 section 2.5)."""

    def test_http12ServedAs11(self) -> None:
        """C{HTTP/1.2} is served as 1.1: 200, and the connection persists."""
        user, _ = client()
        user.send(request("/", version="1.2"), request("/request", version="1.9"))
        hello, echo = user.responses()
        self.assertEqual((hello.status, hello.body), (200, b"Hello World"))
        self.assertNotIn("connection", hello.headers)
        self.assertTrue(echo.body.startswith(b"GET /request HTTP/1.9\n"))
        self.assertTrue(user.connected)

    def test_http2(self) -> None:
        """C{HTTP/2.0} (and any major version above 1) gets 505 and a close."""
        for version in ["2.0", "3.0"]:
            user, _ = client()
            user.send(request("/", version=version))
            response = user.response()
            self.assertEqual(response.status, 505, version)
            self.assertEqual(response.body, b"HTTP Version Not Supported\n")
            self.assertFalse(user.connected)

    def test_http09(self) -> None:
        """The HTTP/0.9 form, C{GET /} with no version, gets 400 and a close."""
        user, _ = client()
        user.send(b"GET /\r\n\r\n")
        self.assertEqual(user.response().status, 400)
        self.assertFalse(user.connected)


class BodyLimitWhateverRouteTests(SynchronousTestCase):
    """A C{Content-Length} over C{maxBody} gets 413 on every route and method."""

    def test_declaredOverLimit(self) -> None:
        """POST to C{/}, PUT to an unknown path: 413, before any body byte."""
        for method, path in [("POST", "/"), ("PUT", "/x"), ("GET", "/missing")]:
            user, _ = client(maxBody=1024)
            user.send(request(path, method, headers=[("Content-Length", "1025")]))
            response = user.response()
            self.assertEqual(response.status, 413, (method, path))
            self.assertFalse(user.connected)

    def test_declaredAtLimit(self) -> None:
        """At the limit the route answers as usual: 405, 404."""
        user, _ = client(maxBody=1024)
        user.send(
            request(
                "/", "POST", headers=[("Content-Length", "1024")], body=b"x" * 1024
            ),
            request(
                "/x", "PUT", headers=[("Content-Length", "1024")], body=b"x" * 1024
            ),
        )
        self.assertEqual([r.status for r in user.responses()], [405, 404])
        self.assertTrue(user.connected)


class NoStoreTests(SynchronousTestCase):
    """The dynamic routes tell caches not to keep them; the fixed one does not."""

    def test_noStore(self) -> None:
        user, _ = client()
        user.send(request("/health"), request("/request"), request("/"))
        health, echo, hello = user.responses()
        self.assertEqual(health.headers["cache-control"], "no-store")
        self.assertEqual(echo.headers["cache-control"], "no-store")
        self.assertNotIn("cache-control", hello.headers)


POST_CHUNKED = request("/", "POST", headers=[("Transfer-Encoding", "chunked")])


class ChunkWireTests(SynchronousTestCase):
    """The wire bytes of a chunked body and of each chunk size line are bounded."""

    def test_longExtensionRefused(self) -> None:
        """
        A chunk extension that never ends (CVE-2024-22019) gets 413 once the
        size line passes C{maxHeaderSize}, counted from the read after it began.
        """
        user, _ = client(maxHeaderSize=1024)
        user.send(POST_CHUNKED + b"1;a=")
        sent = 0
        while user.connected and sent < 100_000:
            user.send(b"x" * 256)
            sent += 256
        self.assertLessEqual(sent, 1024 + 256)
        self.assertEqual(user.response().status, 413)
        self.assertFalse(user.connected)

    def test_extensionsJustUnder(self) -> None:
        """Extensions under the limit in each size line, over many reads, pass."""
        user, _ = client(maxHeaderSize=1024)
        user.send(POST_CHUNKED)
        for _ in range(20):
            user.send(b"1;a=" + b"x" * 500)
            user.send(b"x" * 500 + b"\r\nz\r\n")
        user.send(b"0\r\n\r\n" + request("/"))
        self.assertEqual([r.status for r in user.responses()], [405, 200])

    def test_zeroPaddingRefused(self) -> None:
        """
        Zero-padded chunk sizes around tiny chunks: past twice C{maxBody} plus
        L{CHUNK_FRAMING} on the wire, 413, though few bytes were decoded.
        """
        user, _ = client(maxBody=1024)
        user.send(POST_CHUNKED)
        chunk = b"0" * 200 + b"1\r\nx\r\n"
        sent = 0
        limit = 2 * 1024 + CHUNK_FRAMING
        while user.connected and sent < 10 * limit:
            user.send(chunk * 10)
            sent += len(chunk) * 10
        self.assertLessEqual(sent, limit + 2 * len(chunk) * 10)
        self.assertEqual(user.response().status, 413)

    def test_framingJustUnder(self) -> None:
        """A body of 1-byte chunks at C{maxBody}, six wire bytes each, passes."""
        user, _ = client(maxBody=4096)
        user.send(POST_CHUNKED)
        for _ in range(64):
            user.send(b"1\r\nx\r\n" * 64)
        user.send(b"0\r\n\r\n" + request("/"))
        self.assertEqual([r.status for r in user.responses()], [405, 200])
        self.assertTrue(user.connected)


class BodyTimeoutTests(SynchronousTestCase):
    """A body must be complete C{bodyTimeout} after its head, however it trickles."""

    def test_trickleGets408(self) -> None:
        """One byte every 5 s keeps the idle timeout away but not the body's."""
        user, clock = client(bodyTimeout=20, idleTimeout=60)
        user.send(request("/", "POST", headers=[("Content-Length", "100")]))
        for _ in range(3):
            clock.advance(5)
            user.send(b"x")
        self.assertEqual(user.received(), b"")
        clock.advance(5)
        response = user.response()
        self.assertEqual(response.status, 408)
        self.assertFalse(user.connected)

    def test_justInTime(self) -> None:
        """A body just in time is answered; the next body is timed anew."""
        user, clock = client(bodyTimeout=20, idleTimeout=60)
        for _ in range(2):
            user.send(request("/", "POST", headers=[("Content-Length", "2")]))
            clock.advance(19.9)
            user.send(b"xy")
            self.assertEqual(user.response().status, 405)
        clock.advance(30)
        self.assertTrue(user.connected)

    def test_chunkedTrickle(self) -> None:
        """A chunked body is timed the same way."""
        user, clock = client(bodyTimeout=10)
        user.send(POST_CHUNKED + b"1\r\n")
        for _ in range(4):
            clock.advance(2.5)
            user.send(b"x\r\n1\r\n")
        self.assertEqual(user.response().status, 408)


class StrictOverLoopbackTests(HTTPIntegrationTestCase):
    """Raw sockets against C{twistd -n http}: each refusal, then the close."""

    def assertRefused(self, data: bytes, status: int) -> None:
        connection = self.connect()
        connection.send(data)
        response = connection.response()
        self.assertEqual(response.status, status, data)
        self.assertEqual(response.header("Connection"), "close")
        self.assertTrue(connection.closedByServer(), data)

    def test_hostAndVersion(self) -> None:
        """
        No C{Host}, two, or an invalid one: 400; a target over the limit: 414;
        C{HTTP/2.0}: 505; the HTTP/0.9 form: 400. C{HTTP/1.2} is served as
        1.1 on a connection that persists, and so is everyone else.
        """
        self.startHTTP("--max-header-size", "1024")
        bystander = self.connect()
        for data, status in [
            (b"GET / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
            (b"GET /?" + b"q" * 2000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET /\r\n\r\n", 400),
        ]:
            self.assertRefused(data, status)
            bystander.send(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n")
            self.assertHello(bystander.response())

    def test_declaredBodyOverLimit(self) -> None:
        """
        A 2 MB POST to C{/} and a 5 MB PUT to C{/x} get 413 from their
        C{Content-Length} alone; 1 MiB exactly gets the route's answer.
        """
        self.sharedHTTP()
        for head, status in [
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", 413),
            (b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000000\r\n\r\n", 413),
        ]:
            self.assertRefused(head, status)
        atLimit = self.connect()
        atLimit.send(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n"
            + bytes(1048576)
        )
        self.assertEqual(atLimit.response().status, 405)

    def test_noStore(self) -> None:
        """C{/health} and C{/request} say C{Cache-Control: no-store}."""
        self.sharedHTTP()
        connection = self.connect()
        for path in [b"/health", b"/request"]:
            connection.send(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(connection.response().header("Cache-Control"), "no-store")

    def sendUntilAnswered(self, connection: HTTPSocket, piece: bytes, most: int) -> int:
        """Send C{piece} until a response is readable; return how many bytes went."""
        sent = 0
        for remaining in polling(10.0, "a response to an endless body"):
            readable, _, _ = select.select(
                [connection.socket], [], [], min(0.01, remaining)
            )
            if readable or sent >= most:
                break
            connection.send(piece)
            sent += len(piece)
        return sent

    def test_endlessChunkExtension(self) -> None:
        """
        A chunk extension that never ends gets 413 after about
        C{--max-header-size} bytes and a read, not after 100 MB; others are
        served.
        """
        self.startHTTP("--max-header-size", "4096")
        hostile = self.connect()
        hostile.send(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;a="
        )
        sent = self.sendUntilAnswered(hostile, b"x" * 65536, 100 * 1024 * 1024)
        # What the loopback socket buffers hold is sent too; the 413 comes
        # well before what the unbounded parser took.
        self.assertLess(sent, 8 * 1024 * 1024)
        response = hostile.response()
        self.assertEqual(response.status, 413)
        self.assertEqual(response.header("Connection"), "close")
        other = self.connect()
        other.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertHello(other.response())

    def test_trickledBody(self) -> None:
        """
        A body trickling a byte every 0.2 s gets 408 at C{--body-timeout}
        (1 s) after its head, though the idle timeout never comes.
        """
        self.startHTTP("--body-timeout", "1", "--idle-timeout", "60")
        slow = self.connect()
        slow.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")
        started = time.monotonic()
        answeredAfter = None
        for remaining in polling(5.0, "the slow body being answered"):
            readable, _, _ = select.select([slow.socket], [], [], min(0.2, remaining))
            if readable:
                answeredAfter = time.monotonic() - started
                break
            slow.send(b"x")
        assert answeredAfter is not None  # polling() has failed otherwise
        self.assertGreater(answeredAfter, 0.9)
        self.assertLess(answeredAfter, 3.0)
        response = slow.response()
        self.assertEqual((response.status, response.body), (408, b"Request Timeout\n"))
