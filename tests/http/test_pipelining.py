"""
Tests for L{twisted_services.http.protocol}'s bound on pipelined responses:
it parses a read a slice at a time and stops while its transport is paused.
"""

from __future__ import annotations

from twisted.internet.testing import StringTransportWithDisconnection
from twisted.trial.unittest import SynchronousTestCase

from tests.http.test_protocol import Client, httpFactory, parseResponses, request
from twisted_services.http.protocol import PARSE_SLICE

QUEUE_LIMIT = 16 * 1024


class PausingTransport(StringTransportWithDisconnection):
    """
    Pauses its producer once more than L{QUEUE_LIMIT} bytes are queued, as
    a TCP transport does when its client does not read.
    """

    # Like FileDescriptor.producerPaused: whether it paused its producer,
    # apart from producerState, which says whether it is reading.
    writePaused = False

    def write(self, data: bytes) -> None:
        super().write(data)
        if len(self.value()) > QUEUE_LIMIT and not self.writePaused:
            self.writePaused = True
            self.producer.pauseProducing()

    def drain(self) -> bytes:
        """The client reads everything; the transport resumes its producer."""
        data = self.value()
        self.clear()
        if self.writePaused:
            self.writePaused = False
            self.producer.resumeProducing()
        return data


class SlicedParsingTests(SynchronousTestCase):
    """A read of many tiny pipelined requests is not answered all at once."""

    def setUp(self) -> None:
        factory, _ = httpFactory()
        self.transport = PausingTransport()
        self.user = Client(factory, self.transport)

    def test_readUnderOneSliceAnsweredWhole(self) -> None:
        """A read up to one slice of requests is answered whole, in one go."""
        one = request("/", host="h")
        count = PARSE_SLICE // len(one)
        self.user.send(one * count)
        self.assertEqual(len(parseResponses(self.transport.value())), count)

    def test_pausedStopsParsingAndResumes(self) -> None:
        """
        3,000 pipelined requests in one read: the responses queued at once
        stay within the transport's limit plus one slice's answers, parsing
        resumes as the client drains, and every request is answered once,
        in order.
        """
        requests = [request(f"/request?n={n}", host="h") for n in range(3000)]
        self.user.send(b"".join(requests))
        answered: list[bytes] = []
        for _ in range(1000):
            queued = self.transport.value()
            self.assertLess(len(queued), QUEUE_LIMIT + 16 * PARSE_SLICE)
            answered += [r.body.split(b" ")[1] for r in parseResponses(queued)]
            if self.transport.producerState != "paused":
                break
            self.transport.drain()
        self.assertEqual(answered, [f"/request?n={n}".encode() for n in range(3000)])
        self.assertEqual(self.transport.producerState, "producing")

    def test_readWhilePausedKept(self) -> None:
        """A read delivered while paused is kept, and parsed after the rest."""
        self.user.send(request("/request?n=0", host="h") * 2000)
        self.assertEqual(self.transport.producerState, "paused")
        self.user.send(request("/request?n=last", host="h"))
        data = b""
        for _ in range(1000):
            data += self.transport.drain()
            if self.transport.producerState != "paused":
                break
        data += self.transport.value()
        bodies = [r.body.split(b" ")[1] for r in parseResponses(data)]
        self.assertEqual(bodies, [b"/request?n=0"] * 2000 + [b"/request?n=last"])
