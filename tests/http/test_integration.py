"""
Integration tests: the real C{twistd -n http} in a subprocess, spoken to
over loopback by C{curl}, by Python's C{http.client} and by raw sockets that
pipeline, send garbage, and trickle a request head a byte at a time.

Every read has a deadline and every loop a bound; nothing sleeps (the
slowloris client is paced by C{select} timeouts).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

from twisted.trial.unittest import SkipTest

import twisted_services
from tests.support.shared import SharedTwistdTestCase, sharedTwistd
from tests.support.twistd import Twistd, runCommand, startTwistd
from tests.support.waiting import polling

LOOPBACK = ["--port", "0", "--interface", "127.0.0.1"]
READ_TIMEOUT = 5.0
MAX_RESPONSE = 1024 * 1024
SERVER = f"twisted-services/{twisted_services.__version__}"
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d\d:\d\d:\d\d GMT"
)
# What one request's access log line looks like, in Combined Log Format.
ACCESS_LINE = (
    r"127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
    r'"GET /\?from=curl HTTP/1\.1" 200 11 "-" "curl/[^"]+"'
)


def request(method: str, path: str, *headers: str, version: str = "HTTP/1.1") -> bytes:
    """The bytes of one request head, with a C{Host} header first."""
    lines = [f"{method} {path} {version}", "Host: test", *headers, "", ""]
    return "\r\n".join(lines).encode("ascii")


@dataclass
class Response:
    """One response as read off the wire."""

    status: int
    headers: dict[str, str]  # lower-cased names; each occurs once here
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class HTTPSocket:
    """
    A blocking loopback connection that reads responses one at a time from
    a buffer, so pipelined responses arriving together are split correctly.
    """

    def __init__(self, connection: socket.socket) -> None:
        self.socket = connection
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def _fill(self, remaining: float) -> bool:
        """Read once into the buffer; C{False} at EOF."""
        if len(self.buffer) > MAX_RESPONSE:
            raise AssertionError("more than a MiB unread")
        self.socket.settimeout(remaining)
        chunk = self.socket.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self, head: bool = False) -> Response:
        """
        Read the next response; C{head} for one to a C{HEAD}, which has a
        C{Content-Length} but no body.
        """
        for remaining in polling(READ_TIMEOUT, "reading a response head"):
            if b"\r\n\r\n" in self.buffer:
                break
            if not self._fill(remaining):
                raise AssertionError(f"EOF inside a response head: {self.buffer!r}")
        raw, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        statusLine, *lines = raw.decode("latin-1").split("\r\n")
        version, status, _ = statusLine.split(" ", 2)
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise AssertionError(f"not an HTTP/1.x status line: {statusLine!r}")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            if name.lower() in headers:
                raise AssertionError(f"{name} twice in {raw!r}")
            headers[name.lower()] = value.strip()
        # Interim (1xx) responses have no body either.
        bodiless = head or status.startswith("1")
        length = 0 if bodiless else int(headers["content-length"])
        for remaining in polling(READ_TIMEOUT, f"reading a {length}-byte body"):
            if len(self.buffer) >= length:
                break
            if not self._fill(remaining):
                raise AssertionError(f"EOF inside a body: {self.buffer!r}")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Response(int(status), headers, body)

    def closedByServer(self, timeout: float = READ_TIMEOUT) -> bool:
        """
        Whether the server closes the connection within C{timeout}, with
        nothing more to read. A reset counts: a peer that closes with unread
        input resets, and that is still the close the tests look for.
        """
        for remaining in polling(timeout, "waiting for the server to close"):
            try:
                if not self._fill(remaining):
                    break
            except ConnectionResetError:
                break
            except TimeoutError:
                return False
        if self.buffer:
            raise AssertionError(f"unexpected bytes before the close: {self.buffer!r}")
        return True


class HTTPIntegrationTestCase(SharedTwistdTestCase):
    """Starting C{twistd -n http} and connecting to it, for the tests below."""

    def startHTTP(self, *arguments: str) -> Twistd:
        self.twistd = startTwistd(self, "http", [*LOOPBACK, *arguments])
        return self.twistd

    def sharedHTTP(self) -> Twistd:
        """
        C{twistd -n http} with its defaults, shared by the tests of this
        class (L{tests.support.shared}): for tests that look only at their
        own connections' answers, not at its log or its counters.
        """
        self.twistd = sharedTwistd(self, "http", LOOPBACK)
        return self.twistd

    @property
    def address(self) -> tuple[str, int]:
        return self.twistd.listener("tcp").loopbackAddress

    def connect(self) -> HTTPSocket:
        connection = socket.create_connection(self.address, timeout=READ_TIMEOUT)
        self.addCleanup(connection.close)
        return HTTPSocket(connection)

    def assertHello(self, response: Response) -> None:
        self.assertEqual((response.status, response.body), (200, b"Hello World"))


class ClientTests(HTTPIntegrationTestCase):
    """Real clients: curl and C{http.client}."""

    def test_curl(self) -> None:
        """
        C{curl} gets C{Hello World} with every header the spec requires, the
        request is access-logged in Combined Log Format, and two URLs in one
        C{curl} run share one connection.
        """
        curl = shutil.which("curl")
        if curl is None:
            raise SkipTest("curl is not installed (CI installs it)")
        self.startHTTP()
        url = "http://{}:{}/".format(*self.address)
        # Bytes, not text: universal newlines would hide the CRLFs.
        result = subprocess.run(
            [
                curl,
                "--silent",
                "--show-error",
                "--include",
                "--max-time",
                "5",
                url + "?from=curl",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        head, _, body = result.stdout.decode("latin-1").partition("\r\n\r\n")
        statusLine, *lines = head.split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        headers = {name.lower(): value for name, value in headers.items()}
        self.assertEqual(statusLine, "HTTP/1.1 200 OK")
        self.assertEqual(body, "Hello World")
        self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(headers["content-length"], "11")
        self.assertEqual(headers["server"], SERVER)
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertRegex(headers["date"], f"^{IMF_FIXDATE.pattern}$")
        sent = email.utils.parsedate_to_datetime(headers["date"]).timestamp()
        self.assertLess(abs(sent - time.time()), 5.0, headers["date"])
        self.twistd.waitForLog(ACCESS_LINE)

        two = runCommand(
            [
                curl,
                "--silent",
                "--max-time",
                "5",
                "--write-out",
                "%{http_code} %{num_connects}\\n",
                # One --output per URL: neither body lands on stdout.
                "--output",
                "/dev/null",
                "--output",
                "/dev/null",
                url,
                url + "health",
            ]
        )
        self.assertEqual(two.returncode, 0, two.stderr)
        self.assertEqual(two.stdout, "200 1\n200 0\n")

    def test_hundredRequestsOnOneConnection(self) -> None:
        """
        C{http.client} makes 100 requests on one kept-alive connection, all
        200, and C{/health} then counts that one connection open.
        """
        self.startHTTP()
        host, port = self.address
        client = http.client.HTTPConnection(host, port, timeout=READ_TIMEOUT)
        self.addCleanup(client.close)
        client.connect()
        first = client.sock
        for number in range(100):
            client.request("GET", f"/?n={number}")
            response = client.getresponse()
            self.assertEqual(
                (response.status, response.read()), (200, b"Hello World"), number
            )
            self.assertFalse(response.will_close, number)
            self.assertIs(client.sock, first, f"reconnected at request {number}")
        client.request("GET", "/health")
        response = client.getresponse()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.getheader("Content-Type"), "application/json")
        health = json.loads(response.read())
        self.assertEqual(health["status"], "ok")
        self.assertEqual(health["connections"], 1)
        self.assertIn(health["requests"], (100, 101))
        self.assertIs(client.sock, first)


class WireTests(HTTPIntegrationTestCase):
    """Raw bytes on the wire: pipelining, methods and paths, HTTP/1.0."""

    def test_pipelinedBurst(self) -> None:
        """
        Eleven requests written in one C{send} are answered strictly in
        order, C{HEAD} without a body, and C{Connection: close} on the last
        one closes the connection after its response.
        """
        self.sharedHTTP()
        client = self.connect()
        burst = [request("GET", f"/request?n={number}") for number in range(6)]
        burst += [
            request("HEAD", "/"),
            request("GET", "/missing"),
            request("POST", "/", "Content-Length: 3") + b"abc",
            request("GET", "/request?n=last"),
            request("GET", "/", "Connection: close"),
        ]
        client.send(b"".join(burst))
        for number in range(6):
            response = client.response()
            self.assertEqual(response.status, 200)
            self.assertEqual(
                response.body,
                f"GET /request?n={number} HTTP/1.1\nHost: test\n".encode(),
            )
        head = client.response(head=True)
        self.assertEqual((head.status, head.header("Content-Length")), (200, "11"))
        self.assertEqual(client.response().status, 404)
        self.assertEqual(client.response().status, 405)
        self.assertEqual(
            client.response().body, b"GET /request?n=last HTTP/1.1\nHost: test\n"
        )
        last = client.response()
        self.assertHello(last)
        self.assertEqual(last.header("Connection"), "close")
        self.assertTrue(client.closedByServer(), "closed after Connection: close")

    def test_headNotFoundMethodNotAllowed(self) -> None:
        """
        On one kept-alive connection: C{HEAD} has the C{GET} headers and no
        body, an unknown path is 404 whatever the method, a known path with
        another method is 405 with C{Allow}, and the query string does not
        change the route; each answer comes back quickly.
        """
        self.sharedHTTP()
        client = self.connect()

        def roundTrip(data: bytes, head: bool = False) -> Response:
            started = time.monotonic()
            client.send(data)
            response = client.response(head)
            self.assertLess(time.monotonic() - started, 2.0, data)
            self.assertEqual(response.header("X-Content-Type-Options"), "nosniff")
            self.assertNotEqual(response.header("Connection"), "close", data)
            return response

        get = roundTrip(request("GET", "/"))
        head = roundTrip(request("HEAD", "/"), head=True)
        self.assertEqual((head.status, head.body), (200, b""))
        del get.headers["date"], head.headers["date"]
        self.assertEqual(head.headers, get.headers)
        health = roundTrip(request("HEAD", "/health?verbose=1"), head=True)
        self.assertEqual(health.status, 200)
        self.assertEqual(health.header("Content-Type"), "application/json")

        for method in ("GET", "DELETE"):
            missing = roundTrip(request(method, "/missing?x=1"))
            self.assertEqual((missing.status, missing.body), (404, b"Not Found\n"))
            self.assertEqual(
                missing.header("Content-Type"), "text/plain; charset=utf-8"
            )
        for method, path in (("POST", "/"), ("PUT", "/health"), ("DELETE", "/")):
            refused = roundTrip(request(method, path, "Content-Length: 0"))
            self.assertEqual(
                (refused.status, refused.body), (405, b"Method Not Allowed\n")
            )
            self.assertEqual(refused.header("Allow"), "GET, HEAD")
        self.assertHello(roundTrip(request("GET", "/?q=/missing")))

    def test_http10(self) -> None:
        """
        HTTP/1.0 closes after the response unless it asks for keep-alive,
        and then the response says C{Connection: keep-alive}.
        """
        self.sharedHTTP()
        kept = self.connect()
        for _ in range(2):
            kept.send(request("GET", "/", "Connection: keep-alive", version="HTTP/1.0"))
            response = kept.response()
            self.assertHello(response)
            self.assertEqual(response.header("Connection"), "keep-alive")
        closed = self.connect()
        closed.send(request("GET", "/", version="HTTP/1.0"))
        self.assertHello(closed.response())
        self.assertTrue(closed.closedByServer(), "HTTP/1.0 closed")


class HostileClientTests(HTTPIntegrationTestCase):
    """Clients that send garbage or dawdle do not disturb the others."""

    def test_malformedRequest(self) -> None:
        """
        A request the parser rejects, after a good one in the same C{send},
        gets 400 with C{Connection: close} and the connection closes; an
        open kept-alive client and a new client are served as before.
        """
        self.startHTTP()
        bystander = self.connect()
        bystander.send(request("GET", "/"))
        self.assertHello(bystander.response())

        hostile = self.connect()
        hostile.send(request("GET", "/") + b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        self.assertHello(hostile.response())
        rejected = hostile.response()
        self.assertEqual((rejected.status, rejected.body), (400, b"Bad Request\n"))
        self.assertEqual(rejected.header("Connection"), "close")
        self.assertTrue(hostile.closedByServer(), "closed after 400")

        garbage = self.connect()
        garbage.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64))
        self.assertEqual(garbage.response().status, 400)
        self.assertTrue(garbage.closedByServer(), "closed after 400")

        bystander.send(request("GET", "/"))
        self.assertHello(bystander.response())
        newcomer = self.connect()
        newcomer.send(request("GET", "/"))
        self.assertHello(newcomer.response())

    def test_slowloris(self) -> None:
        """
        A client trickling its request head a byte every 0.2 s gets 408 and
        the close at C{--header-timeout} (1 s) after its first byte, though
        it never stops sending; another client is served meanwhile.
        """
        self.startHTTP("--header-timeout", "1")
        slow = self.connect()
        # Never complete: the head grows a header line forever.
        trickle = b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 1000
        slow.send(trickle[:1])
        started = time.monotonic()
        sent = 1
        other = self.connect()
        other.send(request("GET", "/"))
        self.assertHello(other.response())

        answeredAfter = None
        for remaining in polling(5.0, "the slow client being answered"):
            readable, _, _ = select.select([slow.socket], [], [], min(0.2, remaining))
            if readable:
                answeredAfter = time.monotonic() - started
                break
            slow.send(trickle[sent : sent + 1])
            sent += 1
        assert answeredAfter is not None  # polling() has failed otherwise
        self.assertGreater(answeredAfter, 0.9)
        self.assertLess(answeredAfter, 3.0)
        self.assertGreaterEqual(sent, 4, "bytes trickled before the timeout")
        timedOut = slow.response()
        self.assertEqual((timedOut.status, timedOut.body), (408, b"Request Timeout\n"))
        self.assertEqual(timedOut.header("Connection"), "close")
        # Still trickling: the server must close regardless.
        for _ in range(3):
            try:
                slow.send(trickle[sent : sent + 1])
            except OSError:
                break  # reset: the server is gone
            sent += 1
        self.assertTrue(slow.closedByServer(), "slow client closed after 408")

        other.send(request("GET", "/"))
        self.assertHello(other.response())


class StoppingTests(HTTPIntegrationTestCase):
    """SIGTERM stops the server promptly and cleanly."""

    def test_sigterm(self) -> None:
        """
        SIGTERM with an idle kept-alive connection and a half-sent request
        open: a quick exit with no traceback, the idle one closed at once
        and the half-sent one aborted after C{--shutdown-timeout}, and with
        C{--no-access-log} no access log line was ever written.
        """
        twistd = self.startHTTP("--no-access-log", "--shutdown-timeout", "1")
        idle = self.connect()
        idle.send(request("GET", "/"))
        self.assertHello(idle.response())
        partial = self.connect()
        partial.send(b"GET / HTTP/1.1\r\nHost: te")

        started = time.monotonic()
        status = twistd.stop(signal.SIGTERM, timeout=10.0)
        elapsed = time.monotonic() - started

        output = twistd.log()
        self.assertIn(status, (0, -signal.SIGTERM), output)
        self.assertLess(elapsed, 5.0, output)
        self.assertNotIn("Traceback", output)
        self.assertIn("Server Shut Down.", output)
        self.assertNotIn('"GET / HTTP/1.1"', output)
        self.assertTrue(idle.closedByServer(timeout=1.0), "idle client closed")
        self.assertTrue(partial.closedByServer(timeout=1.0), "half-sent closed")

    def test_sigtermFinishesResponse(self) -> None:
        """
        A large response still being sent to a client that reads slowly when
        SIGTERM arrives is sent whole before the connection closes, and
        twistd then exits cleanly within a few seconds.
        """
        # About 8 MiB of headers echoed back by /request, to a client with a
        # small receive buffer: more than loopback's kernel buffers hold (at
        # 1 MiB they take it all, and even a plain reactor stop loses
        # nothing), so most of it waits in twistd's own write buffer.
        headers = [f"X-Filler-{index}: {'x' * 1000}" for index in range(8000)]
        twistd = self.startHTTP("--max-header-size", str(16 * 1024 * 1024))
        connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(connection.close)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        connection.settimeout(READ_TIMEOUT)
        connection.connect(self.address)
        connection.sendall(request("GET", "/request", *headers))
        # The response has begun before the signal.
        received = connection.recv(1)

        twistd.process.send_signal(signal.SIGTERM)
        twistd.waitForLog(r"http: shutting down, finishing 1 connection\(s\)")
        started = time.monotonic()
        for remaining in polling(READ_TIMEOUT, "reading the response to EOF"):
            connection.settimeout(remaining)
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        # As a client does once it has the response: the server waits for
        # this (up to its close grace) before the connection is gone.
        connection.close()
        status = twistd.process.wait(timeout=READ_TIMEOUT)
        elapsed = time.monotonic() - started

        twistd.stop()
        output = twistd.log()
        self.assertIn(status, (0, -signal.SIGTERM), output)
        self.assertLess(elapsed, 4.0, output)
        self.assertNotIn("Traceback", output)
        self.assertIn("Server Shut Down.", output)
        head, _, body = received.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nContent-Length: %d\r\n" % len(body), head)
        self.assertTrue(body.startswith(b"GET /request HTTP/1.1\nHost: test\n"))
        self.assertTrue(body.endswith(f"X-Filler-7999: {'x' * 1000}\n".encode()))
