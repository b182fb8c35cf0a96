"""
Integration tests: real C{twistd} under Debian's C{systemd-socket-activate},
which binds sockets, passes them as systemd does (descriptors 3, 4, ...,
C{LISTEN_FDS}, C{LISTEN_PID} and, with C{--fdname}, C{LISTEN_FDNAMES}) and
execs the server once a first connection or datagram arrives.

C{systemd-socket-activate} makes sockets of one type per run (C{-d} makes
them all datagram sockets), so TCP and UDP sockets are passed together by
nesting two of them: the outer passes its UDP socket through to the inner
(it passes on what C{sd_listen_fds} finds), which adds its TCP sockets and
names them all. It does not pass its environment on, bar C{PATH} and a few
others, so what twistd needs goes through C{-E}.

Every wait has a deadline and every loop a bound; nothing sleeps.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.sockets import receiveFrom, udpClient
from tests.support.twistd import (
    STARTUP_TIMEOUT,
    Twistd,
    pluginCommand,
    runTwistd,
    spawnTwistd,
)
from tests.support.waiting import polling

LOOPBACK = "127.0.0.1"
REPLY_TIMEOUT = 10.0
# Picking a free port and binding it again later races with anything else
# binding ports meanwhile; when systemd-socket-activate loses, try anew.
ATTEMPTS = 3


@dataclass
class Passed:
    """One socket for systemd-socket-activate to bind and pass on."""

    name: str
    datagram: bool
    port: int = 0

    @property
    def address(self) -> tuple[str, int]:
        return LOOPBACK, self.port


def activator() -> str:
    """The path of C{systemd-socket-activate}; skip if it is not installed."""
    path = shutil.which("systemd-socket-activate")
    if path is None:
        raise SkipTest(
            "systemd-socket-activate is not installed (Debian package systemd)"
        )
    return path


def pickPorts(sockets: Sequence[Passed]) -> None:
    """
    Give each of C{sockets} a loopback port free right now, all distinct:
    each is bound at once, so none can be picked twice.
    """
    held = []
    try:
        for passed in sockets:
            kind = socket.SOCK_DGRAM if passed.datagram else socket.SOCK_STREAM
            probe = socket.socket(socket.AF_INET, kind)
            held.append(probe)
            probe.bind((LOOPBACK, 0))
            passed.port = probe.getsockname()[1]
    finally:
        for probe in held:
            probe.close()


def activationCommand(
    sockets: Sequence[Passed], command: Sequence[str], env: dict[str, str]
) -> list[str]:
    """
    The command that binds C{sockets}, datagram ones first, and passes them,
    named and in that order, to C{command}.
    """
    path = activator()
    setenv = [f"--setenv={name}={value}" for name, value in sorted(env.items())]
    datagrams = [passed for passed in sockets if passed.datagram]
    streams = [passed for passed in sockets if not passed.datagram]
    names = ":".join(passed.name for passed in datagrams + streams)
    inner = [path, *setenv, f"--fdname={names}"]
    for passed in streams:
        inner += ["--listen", f"{LOOPBACK}:{passed.port}"]
    if not datagrams:
        return [*inner, *command]
    if not streams:
        return [*inner, "--datagram", *command]
    outer = [path, "--datagram", f"--fdname={':'.join(p.name for p in datagrams)}"]
    for passed in datagrams:
        outer += ["--listen", f"{LOOPBACK}:{passed.port}"]
    return [*outer, *inner, *command]


def childEnvironment() -> dict[str, str]:
    """What twistd needs from our environment, given through C{--setenv}."""
    env = {"PYTHONUNBUFFERED": "1"}
    for name in ["PYTHONPATH", "VIRTUAL_ENV"]:
        if name in os.environ:
            env[name] = os.environ[name]
    return env


class PortTaken(Exception):
    """Someone else bound one of the picked ports before we could."""


def launch(
    testCase: SynchronousTestCase,
    sockets: Sequence[Passed],
    plugin: str,
    arguments: Sequence[str],
    listeners: int,
) -> tuple[Twistd, socket.socket]:
    """
    One attempt of L{activate}, on the ports C{sockets} have now.

    @raise PortTaken: if C{systemd-socket-activate} could not bind a port.
    """
    first = sockets[0]
    twistd = spawnTwistd(
        testCase,
        activationCommand(
            sockets, pluginCommand(plugin, arguments), childEnvironment()
        ),
    )

    def portTaken() -> bool:
        return any("Address already in use" in line for line in twistd.output)

    try:
        # The first socket is the outermost systemd-socket-activate's.
        twistd.waitForLog(
            rf"Listening on {LOOPBACK}:{first.port} as 3\.", STARTUP_TIMEOUT
        )
        if first.datagram:
            client = udpClient(testCase)
            client.sendto(b"100", first.address)
        else:
            client = socket.create_connection(first.address, timeout=REPLY_TIMEOUT)
            testCase.addCleanup(client.close)
        twistd.waitFor(lambda: len(twistd.bound) >= listeners, STARTUP_TIMEOUT)
    except (AssertionError, OSError):
        twistd.kill()
        if portTaken():
            raise PortTaken() from None
        raise
    return twistd, client


def activate(
    testCase: SynchronousTestCase,
    sockets: Sequence[Passed],
    plugin: str,
    arguments: Sequence[str],
    listeners: int | None = None,
) -> tuple[Twistd, socket.socket]:
    """
    Run C{twistd -n PLUGIN ARGUMENTS} under C{systemd-socket-activate}
    passing C{sockets} on free loopback ports, start it with a first
    connection to (or datagram C{100} to) the first of them, and wait until
    it has logged C{listeners} listeners (by default, one per socket).

    @return: the running twistd, and the client socket that woke it up.
    """
    expected = len(sockets) if listeners is None else listeners
    for attempt in range(ATTEMPTS):
        pickPorts(sockets)
        try:
            return launch(testCase, sockets, plugin, arguments, expected)
        except PortTaken:
            if attempt == ATTEMPTS - 1:
                raise AssertionError(
                    f"ports taken by others, {ATTEMPTS} times in a row"
                ) from None
    raise AssertionError("unreachable")


def echoes(client: socket.socket) -> None:
    """C{client}, connected to an echo server, gets its bytes back."""
    client.sendall(b"hello, socket activation\n")
    received = b""
    for remaining in polling(REPLY_TIMEOUT, "the echo"):
        client.settimeout(remaining)
        chunk = client.recv(1024)
        if not chunk:
            raise AssertionError(f"echo closed the connection after {received!r}")
        received += chunk
        if len(received) >= 25:
            break
    if received != b"hello, socket activation\n":
        raise AssertionError(f"echo sent {received!r}")


def readUntil(client: socket.socket, marker: bytes, what: str) -> bytes:
    """Read from C{client} until C{marker} has arrived; everything read."""
    received = b""
    for remaining in polling(REPLY_TIMEOUT, what):
        client.settimeout(remaining)
        chunk = client.recv(4096)
        if not chunk:
            break
        received += chunk
        if marker in received:
            return received
    raise AssertionError(f"{what}: got {received!r}")


def connect(passed: Passed) -> socket.socket:
    """A TCP client connected to C{passed}'s port."""
    return socket.create_connection(passed.address, timeout=REPLY_TIMEOUT)


class SingleServiceTests(SynchronousTestCase):
    """The single-service plugins adopt the sockets they are told to, by name."""

    def test_echoTwoNamedSockets(self) -> None:
        """
        C{twistd echo} with two C{--listen systemd:...:name=...} serves both
        passed TCP sockets, whichever order the names come in.
        """
        sockets = [Passed("front", False), Passed("back", False)]
        twistd, first = activate(
            self,
            sockets,
            "echo",
            [
                "--listen",
                "systemd:domain=INET:name=back",
                "--listen",
                "systemd:domain=INET:name=front",
            ],
        )
        self.assertEqual(
            sorted(bound.port for bound in twistd.bound),
            sorted(passed.port for passed in sockets),
        )
        echoes(first)
        with connect(sockets[1]) as second:
            echoes(second)

    def test_temperatureNamedAmongOthers(self) -> None:
        """
        C{twistd temperature --systemd-socket temperature} picks its UDP
        socket by name when it is passed alongside a TCP one, and answers
        the datagram that woke it up.
        """
        sockets = [Passed("temperature", True), Passed("unused", False)]
        twistd, client = activate(
            self, sockets, "temperature", ["--systemd-socket", "temperature"], 1
        )
        self.assertEqual(twistd.listener("udp").port, sockets[0].port)
        self.assertEqual(receiveFrom(client, sockets[0].address), b"100 C = 212 F\n")


class CombinedServiceTests(SynchronousTestCase):
    """C{twistd services} maps each passed socket to its service by name."""

    def setUp(self) -> None:
        try:
            import twisted_services.services.tap  # noqa: F401
        except ImportError:
            raise SkipTest(
                "no combined plugin (twisted_services.services.tap)"
            ) from None

    def test_allFourByName(self) -> None:
        """
        With the four sockets passed in an order unlike the command line's,
        echo, chat, http and temperature each answer on the socket named for
        it, as C{twisted-services.service} runs them.
        """
        sockets = {
            passed.name: passed
            for passed in [
                Passed("temperature", True),
                Passed("http", False),
                Passed("echo", False),
                Passed("chat", False),
            ]
        }
        twistd, client = activate(
            self,
            list(sockets.values()),
            "services",
            [
                "--echo",
                "systemd:domain=INET:name=echo",
                "--chat",
                "systemd:domain=INET:name=chat",
                "--http",
                "systemd:domain=INET:name=http",
                "--temperature-socket",
                "temperature",
            ],
        )
        self.assertEqual(
            {(bound.service, bound.kind, bound.port) for bound in twistd.bound},
            {
                (name, "udp" if passed.datagram else "tcp", passed.port)
                for name, passed in sockets.items()
            },
        )
        self.assertEqual(
            receiveFrom(client, sockets["temperature"].address), b"100 C = 212 F\n"
        )
        with connect(sockets["echo"]) as echo:
            echoes(echo)
        with connect(sockets["chat"]) as chat:
            self.assertIn(b"welcome", readUntil(chat, b"\n", "the chat welcome"))
        with connect(sockets["http"]) as http:
            http.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            response = readUntil(http, b"Hello World", "the HTTP response")
            self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response)


class MissingSocketTests(SynchronousTestCase):
    """A unit started without the socket it names says so, as an error."""

    def test_namedSocketMissing(self) -> None:
        """
        C{--listen systemd:...:name=echo} with no such socket passed exits 1
        with one line on stderr naming the socket and what systemd passed,
        at journald's error priority under C{JOURNAL_STREAM}.
        """
        result = runTwistd(
            "echo",
            ["--listen", "systemd:domain=INET6:name=echo"],
            env={"JOURNAL_STREAM": "8:1234", "LISTEN_FDNAMES": "chat:http"},
        )
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertEqual(
            result.stderr.splitlines(),
            [
                "<3>echo: bad listen description 'systemd:domain=INET6:name=echo': "
                "no socket named 'echo' was passed by systemd; "
                "LISTEN_FDNAMES=chat:http"
            ],
        )
