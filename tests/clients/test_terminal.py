"""
Tests for L{twisted_services.clients.terminal}: the pieces the clients share
on standard I/O, on fake transports. (L{cleanLine} is tested with the chat
client, whose lines it cleans; the file flags with the runner.)
"""

from __future__ import annotations

from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.clients.terminal import (
    FinishingStandardIO,
    HeldOutput,
    pairProducers,
)


class Output(FinishingStandardIO, Protocol):
    """A bare protocol on standard I/O, with no producer registered."""

    hasProducer = False


def connected() -> tuple[Output, StringTransport]:
    """An L{Output} on a fake transport."""
    protocol = Output()
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


class HeldOutputTests(SynchronousTestCase):
    """L{HeldOutput} holds what comes before there is somewhere to write it."""

    def test_heldThenWritten(self) -> None:
        """What came before L{HeldOutput.attach} is written first, in order."""
        output: HeldOutput[bytes] = HeldOutput()
        output(b"one ")
        output(b"two ")
        written: list[bytes] = []
        output.attach(written.append)
        self.assertEqual(written, [b"one ", b"two "])
        output(b"three")
        self.assertEqual(written, [b"one ", b"two ", b"three"])

    def test_heldOnce(self) -> None:
        """Held items are written once, not again to a later writer."""
        output: HeldOutput[str] = HeldOutput()
        output("early")
        first: list[str] = []
        second: list[str] = []
        output.attach(first.append)
        output.attach(second.append)
        self.assertEqual((first, second), (["early"], []))


class PairProducersTests(SynchronousTestCase):
    """L{pairProducers} makes each transport the other's streaming producer."""

    def test_bothWays(self) -> None:
        """Each is registered on the other, as a push producer."""
        stdio, socket = StringTransport(), StringTransport()
        pairProducers(stdio, socket)
        self.assertIs(stdio.producer, socket)
        self.assertIs(socket.producer, stdio)
        self.assertTrue(stdio.streaming and socket.streaming)


class FinishingStandardIOTests(SynchronousTestCase):
    """L{FinishingStandardIO}: output while someone reads it, and finishing."""

    def test_show(self) -> None:
        """A line of text is written in UTF-8, ending in LF."""
        protocol, transport = connected()
        protocol.show("caf\u00e9")
        self.assertEqual(transport.value(), "caf\u00e9\n".encode())

    def test_outputGone(self) -> None:
        """Once standard output is gone nothing more is written."""
        protocol, transport = connected()
        protocol.writeOutput(b"before ")
        protocol.outputGone = True
        protocol.writeOutput(b"after")
        protocol.show("after")
        self.assertEqual(transport.value(), b"before ")

    def test_closed(self) -> None:
        """Once standard I/O is closed nothing more is written."""
        protocol, transport = connected()
        protocol.connectionLost(Failure(Exception("closed")))
        protocol.writeOutput(b"after")
        self.assertEqual(transport.value(), b"")

    def test_finish(self) -> None:
        """Finishing closes standard I/O; the result fires once it is closed."""
        protocol, transport = connected()
        finished = protocol.finish()
        self.assertTrue(transport.disconnecting)
        self.assertNoResult(finished)
        protocol.connectionLost(Failure(Exception("closed")))
        self.successResultOf(finished)
        self.successResultOf(protocol.finish())
