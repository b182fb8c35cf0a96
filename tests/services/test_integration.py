"""
Integration tests: the real C{twistd -n services} in a subprocess, every
service on a free loopback port, each answering its own protocol.

Every wait has a deadline; nothing sleeps.
"""

from __future__ import annotations

import signal
import socket

from twisted.trial.unittest import SynchronousTestCase

from tests.chat.sockets import LineClient
from tests.support.files import temporaryDirectory
from tests.support.sockets import recvUntilEOF
from tests.support.twistd import Bound, Twistd, runTwistd, startTwistd

TIMEOUT = 5.0
LOOPBACK = "tcp:0:interface=127.0.0.1"
EVERYTHING = [
    *("--echo", LOOPBACK, "--chat", LOOPBACK, "--http", LOOPBACK),
    *("--temperature", "0", "--temperature-args", "--interface 127.0.0.1"),
]


class ServicesIntegrationTests(SynchronousTestCase):
    """C{twistd -n services} runs all four services in one process."""

    def startServices(self, *arguments: str, listeners: int) -> Twistd:
        self.twistd = startTwistd(self, "services", arguments, listeners=listeners)
        return self.twistd

    def bound(self, service: str) -> Bound:
        """The one listener C{service} logged."""
        [bound] = [b for b in self.twistd.bound if b.service == service]
        return bound

    def test_everyServiceAnswers(self) -> None:
        """
        Echo echoes, chat welcomes, http says hello and temperature converts,
        all from one process; SIGTERM then stops it cleanly, chat clients told.
        """
        self.startServices(*EVERYTHING, listeners=4)

        with self.bound("echo").connect(TIMEOUT) as connection:
            connection.sendall(b"ping\n")
            connection.shutdown(socket.SHUT_WR)
            self.assertEqual(recvUntilEOF(connection), b"ping\n")

        with self.bound("http").connect(TIMEOUT) as connection:
            connection.sendall(
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            response = recvUntilEOF(connection)
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"), response)
        self.assertTrue(response.endswith(b"\r\n\r\nHello World"), response)

        temperature = self.bound("temperature")
        self.assertEqual(temperature.kind, "udp")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            client.bind(("127.0.0.1", 0))
            client.sendto(b"100", temperature.loopbackAddress)
            self.assertEqual(client.recvfrom(512)[0], b"100 C = 212 F\n")

        chat = LineClient.connect(self.bound("chat").loopbackAddress)
        self.addCleanup(chat.close)
        chat.expect("*** welcome, you are guest1 in lobby; type /help for commands")

        status = self.twistd.stop(signal.SIGTERM)
        output = self.twistd.log()
        self.assertIn(status, (0, -signal.SIGTERM), output)
        self.assertIn("Server Shut Down.", output)
        self.assertNotIn("Traceback", output)
        chat.expect("*** server shutting down")
        self.assertTrue(chat.closedByPeer())

    def test_serviceOptionsAndTurningOff(self) -> None:
        """
        Services turned off do not listen, and C{--X-args} reaches the
        running service (here http's message).
        """
        self.startServices(
            *("--no-echo", "--no-chat", "--no-temperature", "--http", LOOPBACK),
            *("--http-args", "--message 'Hi there'"),
            listeners=1,
        )
        with self.bound("http").connect(TIMEOUT) as connection:
            connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
            self.assertTrue(recvUntilEOF(connection).endswith(b"\r\n\r\nHi there"))
        self.assertIn(self.twistd.stop(signal.SIGTERM), (0, -signal.SIGTERM))
        # Now that all output is in, no other service can have logged a port.
        self.assertEqual([b.service for b in self.twistd.bound], ["http"])

    def test_listenersGivenTwiceRefused(self) -> None:
        """
        C{--chat} with C{--chat-args '--port N'} does not start (it used to
        serve chat on both): twistd exits 1 at once, saying which two
        options clash.
        """
        result = runTwistd(
            "services",
            [
                *("--no-echo", "--no-http", "--no-temperature", "--chat", LOOPBACK),
                *("--chat-args", "--port 0 --interface 127.0.0.1"),
            ],
            timeout=20,
        )
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertIn(
            "--chat and --port in --chat-args both replace chat's default listener",
            output,
        )
        self.assertNotIn("listening on", output)

    def test_notifiesOnce(self) -> None:
        """
        Under systemd the process says C{READY=1} once, naming the listeners
        of every service, and C{STOPPING=1} once: one notifier, not one per
        service.
        """
        path = str(temporaryDirectory(self, "notify-") / "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(path)
        notify.settimeout(TIMEOUT)
        self.twistd = startTwistd(
            self, "services", EVERYTHING, listeners=4, env={"NOTIFY_SOCKET": path}
        )
        ready = notify.recv(4096).decode("utf-8")
        self.assertTrue(ready.startswith("READY=1\nSTATUS=serving "), ready)
        for service in ("echo", "chat", "http", "temperature"):
            self.assertIn(f"{service} on ", ready)
        self.assertIn(self.twistd.stop(signal.SIGTERM), (0, -signal.SIGTERM))
        # The process has exited: everything it sent is queued by now.
        notify.setblocking(False)
        rest = []
        for _ in range(100):
            try:
                rest.append(notify.recv(4096).decode("utf-8"))
            except BlockingIOError:
                break
        self.assertEqual(rest, ["STOPPING=1"])
