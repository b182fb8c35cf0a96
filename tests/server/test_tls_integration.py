"""
Integration tests: the real C{twistd} services serving TLS on C{ssl:}
listeners, next to plain ones, with a throwaway CA made for each test.

Clients are Python's C{ssl} module and, where installed, curl. Every socket
has a timeout and every loop a bound; nothing sleeps.
"""

from __future__ import annotations

import os
import shutil
import ssl
import warnings

from twisted.trial.unittest import SynchronousTestCase

from tests.chat.sockets import LineClient
from tests.support.files import temporaryDirectory
from tests.support.sockets import recvExactly
from tests.support.tls import TestCA, makeCA, writePEM
from tests.support.twistd import Bound, Twistd, runCommand, runTwistd, startTwistd

LOOPBACK = ["--port", "0", "--interface", "127.0.0.1"]
ALPN = ["h2", "http/1.1"]
"""What curl and browsers offer."""

WELCOME = "*** welcome, you are {} in lobby; type /help for commands"


class TLSIntegrationTestCase(SynchronousTestCase):
    """A fresh CA and a C{localhost} key and certificate for each test."""

    def setUp(self) -> None:
        self.directory = str(temporaryDirectory(self, "tls-"))
        self.ca: TestCA = makeCA()
        certPEM, keyPEM = self.ca.issue("localhost")
        self.caFile = writePEM(self.directory, "ca.pem", self.ca.certPEM)
        self.cert = writePEM(self.directory, "cert.pem", certPEM)
        self.key = writePEM(self.directory, "key.pem", keyPEM)

    def sslListen(self, key: str | None = None, cert: str | None = None) -> list[str]:
        """C{--listen} for TLS on a free loopback port."""
        return [
            "--listen",
            f"ssl:0:interface=127.0.0.1:privateKey={key or self.key}"
            f":certKey={cert or self.cert}",
        ]

    def startWithTLS(self, plugin: str, *arguments: str) -> tuple[Bound, Bound]:
        """
        Start C{plugin} on a plain and a TLS loopback listener.

        @return: the plain listener and the TLS one.
        """
        twistd: Twistd = startTwistd(
            self, plugin, [*LOOPBACK, *self.sslListen(), *arguments], listeners=2
        )
        # --port's listener comes first, --listen's after it, in log order.
        plain, tls = twistd.bound[:2]
        return plain, tls

    def clientContext(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        """A client context that trusts only the test CA and offers C{alpn}."""
        context = ssl.create_default_context(cafile=self.caFile)
        if alpn:
            context.set_alpn_protocols(alpn)
        return context

    def connectTLS(
        self, bound: Bound, context: ssl.SSLContext | None = None
    ) -> ssl.SSLSocket:
        """A verified TLS connection to C{bound} as C{localhost}."""
        connection = (context or self.clientContext()).wrap_socket(
            bound.connect(), server_hostname="localhost"
        )
        self.addCleanup(connection.close)
        return connection


class EchoTLSTests(TLSIntegrationTestCase):
    """C{twistd echo} over TLS."""

    def test_roundTrip(self) -> None:
        """
        Bytes of every value round-trip over TLS 1.2 or later, without
        compression, to a client offering ALPN (none is selected), while the
        plain listener of the same process still echoes.
        """
        plain, tls = self.startWithTLS("echo")
        connection = self.connectTLS(tls, self.clientContext(ALPN))
        self.assertIn(connection.version(), {"TLSv1.2", "TLSv1.3"})
        self.assertIsNone(connection.compression())
        self.assertIsNone(connection.selected_alpn_protocol())
        data = bytes(range(256)) * 256
        connection.sendall(data)
        self.assertEqual(recvExactly(connection, len(data)), data)

        with plain.connect() as raw:
            raw.sendall(b"plain\n")
            self.assertEqual(recvExactly(raw, 6), b"plain\n")

    def test_oldTLSRefused(self) -> None:
        """A client that speaks at most TLS 1.1 is refused by the server."""
        _, tls = self.startWithTLS("echo")
        context = self.clientContext()
        with warnings.catch_warnings():
            # Deliberately what Python deprecates: an old protocol.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        # Let this client offer TLS 1.1 at all, so the refusal is the server's.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with self.assertRaises(ssl.SSLError) as caught:
            self.connectTLS(tls, context)
        self.assertEqual(caught.exception.reason, "TLSV1_ALERT_PROTOCOL_VERSION")


class HTTPSTests(TLSIntegrationTestCase):
    """C{twistd http} over TLS."""

    def test_alpn(self) -> None:
        """A client offering C{h2} and C{http/1.1} gets C{http/1.1}."""
        _, tls = self.startWithTLS("http")
        connection = self.connectTLS(tls, self.clientContext(ALPN))
        self.assertEqual(connection.selected_alpn_protocol(), "http/1.1")
        connection.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertTrue(recvExactly(connection, 15).startswith(b"HTTP/1.1 200 OK"))

    def test_curl(self) -> None:
        """C{curl --cacert} gets C{Hello World}, HTTP/1.1 chosen by ALPN."""
        curl = shutil.which("curl")
        if curl is None:
            raise self.skipTest("curl is not installed")
        _, tls = self.startWithTLS("http")
        result = runCommand(
            [
                curl,
                "--silent",
                "--show-error",
                "--verbose",
                "--max-time",
                "10",
                "--cacert",
                self.caFile,
                "--resolve",
                f"localhost:{tls.port}:127.0.0.1",
                f"https://localhost:{tls.port}/",
            ]
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "Hello World")
        self.assertRegex(result.stderr, r"ALPN.*server accepted.*http/1\.1")


class ChatTLSTests(TLSIntegrationTestCase):
    """C{twistd chat} with a plain and a TLS listener."""

    def test_sharedRoom(self) -> None:
        """
        A plain user and a TLS user (offering ALPN) are in the same room and
        see each other's lines.
        """
        plain, tls = self.startWithTLS("chat")
        alice = LineClient(plain.connect())
        self.addCleanup(alice.close)
        alice.expect(WELCOME.format("guest1"))
        bob = LineClient(self.connectTLS(tls, self.clientContext(ALPN)))
        bob.expect(WELCOME.format("guest2"))
        alice.expect("*** guest2 has joined")

        alice.send("hello over plain")
        bob.expect("<guest1> hello over plain")
        bob.send("hello over TLS")
        alice.expect("<guest2> hello over TLS")


class StartupTests(TLSIntegrationTestCase):
    """A TLS listener whose key cannot be used stops the process at start-up."""

    def assertFailsWithOneLine(self, key: str, *expected: str) -> None:
        """C{twistd echo} with C{key} exits 1 with one line holding C{expected}."""
        result = runTwistd("echo", [*LOOPBACK, *self.sslListen(key=key)])
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertNotIn("Traceback", output)
        lines = [
            line for line in output.splitlines() if "bad listen description" in line
        ]
        self.assertEqual(len(lines), 1, output)
        for text in expected:
            self.assertIn(text, lines[0])
        self.assertNotIn("listening on", output)

    def test_mismatchedKey(self) -> None:
        """A key that is not the certificate's is named in a one-line error."""
        _, otherKey = self.ca.issue("localhost")
        key = writePEM(self.directory, "other.pem", otherKey)
        self.assertFailsWithOneLine(key, "do not match")

    def test_unreadableKey(self) -> None:
        """A key file that cannot be read is named in a one-line error."""
        missing = os.path.join(self.directory, "missing.pem")
        self.assertFailsWithOneLine(missing, "No such file", missing)
