"""
Tests for L{twisted_services.systemd.sockets}: finding the sockets systemd passed, and
adopting a real UDP socket created here as systemd would pass it (bound and
blocking).
"""

from __future__ import annotations

import errno
import os
import select
import socket

from twisted.internet import endpoints
from twisted.internet.posixbase import PosixReactorBase
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.systemd import ListenFDs
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.systemd.sockets import (
    NoSuchSocket,
    adoptDatagram,
    descriptorFor,
    inheritedSockets,
    missingSocket,
)

PASSED = ListenFDs([3, 4, 5], ("dns", "temperature", "1"))
"""Three sockets as systemd passes them, one named like an index."""


class RecordingProtocol(DatagramProtocol):
    """Records each datagram and answers it with C{b"got "} and the data."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((data, addr))
        self.transport.write(b"got " + data, addr)


class RealAdoptionReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} whose C{adoptDatagramPort} is the real reactor's:
    it builds a real UDP port on the descriptor, registered with this fake
    reactor's in-memory reader set instead of a running event loop.
    """

    def adoptDatagramPort(self, fileno, addressFamily, protocol, maxPacketSize=8192):  # type: ignore[no-untyped-def]
        self.adoptedPorts.append((fileno, addressFamily, protocol, maxPacketSize))
        return PosixReactorBase.adoptDatagramPort(
            self,  # type: ignore[arg-type]
            fileno,
            addressFamily,
            protocol,
            maxPacketSize,
        )


def passedSocket(
    test: SynchronousTestCase,
    family: socket.AddressFamily = socket.AF_INET,
    kind: socket.SocketKind = socket.SOCK_DGRAM,
) -> socket.socket:
    """
    A socket bound on loopback, blocking and inheritable as systemd passes
    them, closed when C{test} ends.
    """
    sock = socket.socket(family, kind)
    test.addCleanup(sock.close)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    sock.setblocking(True)
    sock.set_inheritable(True)
    return sock


def openDescriptors() -> set[str]:
    """This process's open descriptors (Linux: from C{/proc/self/fd})."""
    return set(os.listdir("/proc/self/fd"))


class DescriptorForTests(SynchronousTestCase):
    """L{descriptorFor} finds a passed socket by name or by index."""

    def test_byName(self) -> None:
        """A C{FileDescriptorName=} from C{LISTEN_FDNAMES} names its socket."""
        self.assertEqual(descriptorFor("temperature", PASSED), 4)
        self.assertEqual(descriptorFor("dns", PASSED), 3)

    def test_byIndex(self) -> None:
        """A decimal index counts the passed sockets from 0."""
        self.assertEqual(descriptorFor("0", PASSED), 3)
        self.assertEqual(descriptorFor("2", PASSED), 5)

    def test_nameBeforeIndex(self) -> None:
        """A name that looks like an index is taken as the name."""
        self.assertEqual(descriptorFor("1", PASSED), 5)

    def test_unnamed(self) -> None:
        """Sockets passed without names are found by index."""
        self.assertEqual(descriptorFor("1", ListenFDs([3, 4])), 4)

    def test_unknownName(self) -> None:
        """An unknown name is an error that says what systemd did pass."""
        error = self.assertRaises(NoSuchSocket, descriptorFor, "echo", PASSED)
        self.assertEqual(
            str(error),
            "systemd passed no socket named or numbered 'echo' (passed: "
            "index 0: dns, index 1: temperature, index 2: 1)",
        )

    def test_badIndexes(self) -> None:
        """Indexes past the end, negative or in other scripts' digits are errors."""
        for spec in ["3", "-1", "\N{SUPERSCRIPT TWO}", "", " 0"]:
            self.assertRaises(NoSuchSocket, descriptorFor, spec, PASSED)

    def test_nothingPassed(self) -> None:
        """With no sockets passed the error says so, and why that can happen."""
        error = self.assertRaises(NoSuchSocket, descriptorFor, "0", ListenFDs([]))
        self.assertIn("systemd passed no sockets", str(error))
        self.assertIn("LISTEN_FDNAMES", str(error))

    def test_namesNotMatchingCount(self) -> None:
        """
        Twisted ignores every passed socket when C{LISTEN_FDNAMES} does not
        name each one, and the error points there.
        """
        environ = {
            "LISTEN_PID": str(os.getpid()),
            "LISTEN_FDS": "2",
            "LISTEN_FDNAMES": "temperature",
        }
        listenFDs = ListenFDs.fromEnvironment(environ)
        self.assertEqual(listenFDs.inheritedDescriptors(), [])
        error = self.assertRaises(NoSuchSocket, descriptorFor, "0", listenFDs)
        self.assertIn("LISTEN_FDNAMES", str(error))


class MissingSocketTests(SynchronousTestCase):
    """L{missingSocket} says which name is missing and what systemd passed."""

    def test_named(self) -> None:
        """The message names the socket and quotes C{LISTEN_FDNAMES}."""
        self.assertEqual(
            missingSocket("echo", {"LISTEN_FDNAMES": "chat:http"}),
            "no socket named 'echo' was passed by systemd; LISTEN_FDNAMES=chat:http",
        )

    def test_unset(self) -> None:
        """Without C{LISTEN_FDNAMES} the message says it is unset."""
        self.assertEqual(
            missingSocket("echo", {}),
            "no socket named 'echo' was passed by systemd; LISTEN_FDNAMES unset",
        )


class InheritedSocketsTests(SynchronousTestCase):
    """L{inheritedSockets} is the reading the C{systemd:} endpoint parser uses."""

    def test_sameAsEndpointParser(self) -> None:
        """It is the parser's own L{ListenFDs}, not a second reading."""
        self.assertIs(inheritedSockets(), endpoints._SystemdParser._sddaemon)

    def test_defaultForDescriptorFor(self) -> None:
        """L{descriptorFor} looks in that reading unless given another."""
        self.patch(endpoints._SystemdParser, "_sddaemon", PASSED)
        self.assertEqual(descriptorFor("temperature"), 4)


class AdoptDatagramTests(SynchronousTestCase):
    """L{adoptDatagram} hands a passed UDP socket to the reactor, ready to serve."""

    def test_adoptsIPv4(self) -> None:
        """An IPv4 UDP socket is adopted as C{AF_INET} with the protocol."""
        sock = passedSocket(self)
        reactor = MemoryReactorClock()
        protocol = DatagramProtocol()
        port = adoptDatagram(reactor, sock.fileno(), protocol)
        self.assertEqual(
            reactor.adoptedPorts, [(sock.fileno(), socket.AF_INET, protocol, 8192)]
        )
        self.assertEqual(port.getHost().type, "UDP")

    def test_adoptsIPv6(self) -> None:
        """An IPv6 UDP socket is adopted as C{AF_INET6}."""
        try:
            sock = passedSocket(self, socket.AF_INET6)
        except OSError as error:
            raise self.skipTest(f"no IPv6 loopback: {error}") from None
        reactor = MemoryReactorClock()
        adoptDatagram(reactor, sock.fileno(), DatagramProtocol(), 1024)
        [(_, family, _, maxPacketSize)] = reactor.adoptedPorts
        self.assertEqual((family, maxPacketSize), (socket.AF_INET6, 1024))

    def test_nonBlockingAndCloseOnExec(self) -> None:
        """
        The blocking socket systemd passes becomes non-blocking, or the
        reactor would stall in C{recvfrom}; and close-on-exec.
        """
        sock = passedSocket(self)
        adoptDatagram(MemoryReactorClock(), sock.fileno(), DatagramProtocol())
        self.assertFalse(os.get_blocking(sock.fileno()))
        self.assertFalse(os.get_inheritable(sock.fileno()))

    def test_descriptorStaysOpen(self) -> None:
        """
        The passed descriptor stays open, and the probe's duplicate is
        closed: no descriptor leaks.
        """
        if not os.path.isdir("/proc/self/fd"):
            raise self.skipTest("needs /proc/self/fd")
        sock = passedSocket(self)
        before = openDescriptors()
        adoptDatagram(MemoryReactorClock(), sock.fileno(), DatagramProtocol())
        self.assertEqual(openDescriptors(), before)
        self.assertIn(str(sock.fileno()), before)

    def test_refusesStreamSocket(self) -> None:
        """A TCP socket (C{ListenStream=} by mistake) is refused, clearly."""
        sock = passedSocket(self, kind=socket.SOCK_STREAM)
        reactor = MemoryReactorClock()
        error = self.assertRaises(
            ValueError, adoptDatagram, reactor, sock.fileno(), DatagramProtocol()
        )
        self.assertIn("SOCK_STREAM", str(error))
        self.assertIn("not a UDP", str(error))
        self.assertEqual(reactor.adoptedPorts, [])

    def test_refusesUnixSocket(self) -> None:
        """A UNIX datagram socket (C{ListenDatagram=/path}) is refused, clearly."""
        one, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(one.close)
        self.addCleanup(other.close)
        error = self.assertRaises(
            ValueError,
            adoptDatagram,
            MemoryReactorClock(),
            one.fileno(),
            DatagramProtocol(),
        )
        self.assertIn("AF_UNIX", str(error))

    def test_closedDescriptor(self) -> None:
        """A descriptor that is not open is an C{OSError}."""
        sock = passedSocket(self)
        fd = os.dup(sock.fileno())
        os.close(fd)
        error = self.assertRaises(
            OSError, adoptDatagram, MemoryReactorClock(), fd, DatagramProtocol()
        )
        self.assertEqual(error.errno, errno.EBADF)

    def test_servesOnRealPort(self) -> None:
        """
        Adopted by the real reactor code, the socket receives a datagram and
        the reply reaches the sender; reading stops when the socket is empty
        instead of blocking; and stopping leaves the passed socket open.
        """
        sock = passedSocket(self)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(client.close)
        client.bind(("127.0.0.1", 0))
        client.settimeout(5)
        reactor = RealAdoptionReactor()
        protocol = RecordingProtocol()
        port = adoptDatagram(reactor, sock.fileno(), protocol)
        self.assertEqual(port.getHost().port, sock.getsockname()[1])
        self.assertIn(port, reactor.getReaders())
        # Checked first: a blocking socket would hang doRead below.
        self.assertFalse(os.get_blocking(sock.fileno()))

        client.sendto(b"100", sock.getsockname())
        readable, _, _ = select.select([sock], [], [], 5)
        self.assertTrue(readable, "datagram never arrived")
        port.doRead()
        self.assertEqual(protocol.received, [(b"100", client.getsockname())])
        self.assertEqual(client.recvfrom(100), (b"got 100", sock.getsockname()))

        port.stopListening()
        reactor.advance(0)
        self.assertNotIn(port, reactor.getReaders())
        self.assertEqual(sock.getsockname()[0], "127.0.0.1")
