"""
Stand-ins for what a L{twisted_services.server.listeners.Listener} listens
with: a C{listen} callable that hands out fake bound ports.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.server.dualstack import WILDCARD, hostHasIPv6
from twisted_services.server.listeners import Listener, streamListeners
from twisted_services.server.options import tcpDescription

# The interface a listener without --interface binds on this host: :: (one
# socket, IPv4 clients too) where the host has IPv6, all IPv4 otherwise.
DEFAULT_INTERFACE = WILDCARD if hostHasIPv6() else ""


def defaultListen(port: int) -> list[str]:
    """The listen descriptions of C{--port PORT} alone, on this host."""
    return [tcpDescription(port, None)]


class FakePort:
    """An C{IListeningPort} stand-in bound to C{address}; it counts stops."""

    def __init__(self, address: object) -> None:
        self.address = address
        self.stopped = 0

    def getHost(self) -> object:
        return self.address

    def stopListening(self) -> None:
        self.stopped += 1


class RecordingListen:
    """A C{listen} callable for L{Listener} that returns a new L{FakePort}."""

    def __init__(self, address: object = None) -> None:
        self.address = address or IPv4Address("TCP", "127.0.0.1", 43210)
        self.ports: list[FakePort] = []

    def __call__(self) -> FakePort:
        port = FakePort(self.address)
        self.ports.append(port)
        return port


def fakeListener(name: str, address: object = None) -> Listener:
    """A L{Listener} for service C{name} that binds C{address} at once."""
    return Listener(name, "fake", RecordingListen(address), MemoryReactorClock())


def assertBadDescription(testCase: SynchronousTestCase, description: str) -> str:
    """
    L{streamListeners} refuses C{description}, after a good one, with a
    one-line exit message naming it; the message is returned.
    """
    exit = testCase.assertRaises(
        SystemExit,
        streamListeners,
        "demo",
        ["tcp:0", description],
        Factory(),
        MemoryReactorClock(),
    )
    testCase.assertIsInstance(exit.code, str)
    testCase.assertTrue(
        exit.code.startswith(f"demo: bad listen description {description!r}: "),
        exit.code,
    )
    testCase.assertNotIn("\n", exit.code)
    return exit.code
