"""
The echo and chat clients against real C{twistd} servers on C{ssl:}
listeners on loopback, with a throwaway CA made at test time: verified
connections work byte-exact, and a certificate for another host name or
from an untrusted issuer is refused by both clients before anything is
sent.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from twisted.trial.unittest import SynchronousTestCase

from tests.chat.test_client import ClientProcess, RawClient
from tests.support import forkserver
from tests.support.shared import SharedTwistdTestCase, sharedTwistd
from tests.support.tls import makeCA, selfSigned, writePEM
from tests.support.twistd import Twistd, startTwistd

PROCESS_TIMEOUT = 15.0


def echoCommand(*arguments: str) -> list[str]:
    """The command line of the echo client in this interpreter."""
    return [sys.executable, "-m", "twisted_services.echo", *arguments]


def runEcho(data: bytes, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    """Run the echo client with C{data} on its standard input."""
    return forkserver.run(
        echoCommand(*arguments),
        input=data,
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
    )


class TLSServers:
    """A CA, and C{twistd} servers on C{ssl:} listeners with chosen certificates."""

    def __init__(self, testCase: SynchronousTestCase) -> None:
        self.testCase = testCase
        self.directory = tempfile.mkdtemp()
        testCase.addCleanup(shutil.rmtree, self.directory, True)
        self.ca = makeCA("TLS Clients Test CA")
        self.caFile = writePEM(self.directory, "ca.pem", self.ca.certPEM)

    def start(
        self,
        plugin: str,
        certificate: tuple[bytes, bytes],
        extra: Sequence[str] = (),
    ) -> Twistd:
        """Start C{plugin} with TLS on a free loopback port, serving C{certificate}."""
        certPEM, keyPEM = certificate
        name = f"{plugin}-{len(os.listdir(self.directory))}"
        certFile = writePEM(self.directory, f"{name}.crt", certPEM)
        keyFile = writePEM(self.directory, f"{name}.key", keyPEM)
        listen = f"ssl:0:interface=127.0.0.1:privateKey={keyFile}:certKey={certFile}"
        return startTwistd(
            self.testCase,
            plugin,
            ["--listen", listen, *extra],
            listeners=1 + (len(extra) // 2),
        )


def tlsServer(twistd: Twistd) -> str:
    """The C{tls:localhost:PORT} argument for C{twistd}'s first listener."""
    return f"tls:localhost:{twistd.bound[0].port}"


@functools.cache
def echoPKI() -> tuple[str, list[str]]:
    """
    The test CA's file and the C{ssl:} listen descriptions of the echo that
    L{EchoClientTLSTests} share: the CA's certificates for localhost and for
    example.org, and a self-signed one for localhost. Made once a process
    (as the shared server is), removed when it exits.
    """
    directory = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    ca = makeCA("TLS Clients Test CA")
    caFile = writePEM(directory, "ca.pem", ca.certPEM)
    listeners = []
    for name, (certPEM, keyPEM) in [
        ("localhost", ca.issue("localhost")),
        ("other", ca.issue("example.org")),
        ("self-signed", selfSigned("localhost")),
    ]:
        certFile = writePEM(directory, f"{name}.crt", certPEM)
        keyFile = writePEM(directory, f"{name}.key", keyPEM)
        listeners.append(
            f"ssl:0:interface=127.0.0.1:privateKey={keyFile}:certKey={certFile}"
        )
    return caFile, listeners


class EchoClientTLSTests(SharedTwistdTestCase):
    """
    The echo client over TLS, against one echo these tests share
    (L{tests.support.shared}), listening with each of L{echoPKI}'s
    certificates.
    """

    def setUp(self) -> None:
        self.caFile, listeners = echoPKI()
        arguments = [word for listen in listeners for word in ("--listen", listen)]
        twistd = sharedTwistd(self, "echo", arguments, listeners=len(listeners))
        # Listeners start, and log their ports, in the order they are given.
        self.localhost, self.otherHost, self.selfSigned = [
            f"tls:localhost:{bound.port}" for bound in twistd.bound
        ]

    def test_roundTrip(self) -> None:
        """
        Bytes, including a few hundred KiB of random binary, come back
        byte-exact over TLS with C{--ca}, and the client exits 0.
        """
        data = b"hello\r\n\x00\xff" + os.urandom(300 * 1024)
        result = runEcho(data, "--ca", self.caFile, self.localhost)
        self.assertEqual((result.returncode, result.stderr), (0, b""))
        self.assertEqual(len(result.stdout), len(data))
        self.assertEqual(result.stdout, data)

    def test_emptyInput(self) -> None:
        """With nothing to send, the client exits 0 having printed nothing."""
        result = runEcho(b"", "--ca", self.caFile, self.localhost)
        self.assertEqual(
            (result.returncode, result.stdout, result.stderr), (0, b"", b"")
        )

    def test_otherHostName(self) -> None:
        """A certificate for another host name is refused: status 1, one line."""
        result = runEcho(b"secret", "--ca", self.caFile, self.otherHost)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, b"")
        self.assertEqual(
            result.stderr.decode(),
            "echo: TLS verification failed for localhost: "
            "the certificate is not valid for localhost\n",
        )

    def test_untrustedSelfSigned(self) -> None:
        """A self-signed certificate is refused, with and without C{--ca}."""
        for arguments in [["--ca", self.caFile], []]:
            result = runEcho(b"secret", *arguments, self.selfSigned)
            self.assertEqual(result.returncode, 1)
            self.assertEqual(result.stdout, b"")
            self.assertRegex(
                result.stderr.decode(),
                r"^echo: TLS verification failed for localhost: "
                r"the certificate is not trusted \(.*certificate verify failed.*\)\n$",
            )


class ChatClientTLSTests(SynchronousTestCase):
    """The chat client over TLS, next to a plain listener of the same server."""

    def setUp(self) -> None:
        self.servers = TLSServers(self)

    def startChat(self, certificate: tuple[bytes, bytes]) -> tuple[Twistd, RawClient]:
        """A chat server with TLS and plain listeners, and a plain member bob."""
        twistd = self.servers.start(
            "chat", certificate, ["--listen", "tcp:0:interface=127.0.0.1"]
        )
        bob = RawClient(twistd.bound[1].loopbackAddress)
        self.addCleanup(bob.socket.close)
        bob.readLine()
        bob.send("/nick bob")
        bob.waitForLine("*** you are now known as bob")
        return twistd, bob

    def client(self, *arguments: str) -> ClientProcess:
        client = ClientProcess(*arguments)
        self.addCleanup(client.kill)
        return client

    def test_chat(self) -> None:
        """Typed lines reach the room over TLS and the room's lines are printed."""
        twistd, bob = self.startChat(self.servers.ca.issue("localhost"))
        alice = self.client(
            "--nick", "alice", "--ca", self.servers.caFile, tlsServer(twistd)
        )
        alice.waitForLine("*** you are now known as alice")
        alice.type("hello bob\n")
        bob.waitForLine("<alice> hello bob")
        bob.send("hi alice")
        alice.waitForLine("<bob> hi alice")
        alice.endInput()
        bob.waitForLine("*** alice has left (quit)")
        self.assertEqual(alice.wait(), (0, ""))

    def assertRefused(
        self, twistd: Twistd, bob: RawClient, arguments: list[str]
    ) -> str:
        """The client exits 1 having shown nothing, and bob saw nothing it typed."""
        alice = self.client(*arguments, tlsServer(twistd))
        alice.type("secret words\n")
        status, stderr = alice.wait()
        self.assertEqual(status, 1)
        self.assertEqual(alice.output.output, [])
        # The server answers bob's /who after whatever it got from alice.
        bob.send("/who")
        seen = [bob.readLine()]
        while not seen[-1].startswith("*** in lobby:") and len(seen) < 20:
            seen.append(bob.readLine())
        self.assertFalse([line for line in seen if "secret" in line], seen)
        return stderr

    def test_otherHostName(self) -> None:
        """A certificate for another host name is refused with a clear message."""
        twistd, bob = self.startChat(self.servers.ca.issue("example.org"))
        stderr = self.assertRefused(twistd, bob, ["--ca", self.servers.caFile])
        self.assertEqual(
            stderr,
            "chat: TLS verification failed for localhost: "
            "the certificate is not valid for localhost\n",
        )

    def test_untrustedSelfSigned(self) -> None:
        """A self-signed certificate is refused with a clear message."""
        twistd, bob = self.startChat(selfSigned("localhost"))
        stderr = self.assertRefused(twistd, bob, ["--ca", self.servers.caFile])
        self.assertRegex(
            stderr,
            r"^chat: TLS verification failed for localhost: "
            r"the certificate is not trusted \(.*certificate verify failed.*\)\n$",
        )
