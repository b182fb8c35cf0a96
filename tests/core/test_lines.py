"""
Tests for L{twisted_services.core.lines}: L{BoundedLineReceiver} drops an
over-long line, and only that line, on a L{StringTransport}.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings, strategies
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.core.lines import BoundedLineReceiver

MAX = 10


class Recorder(BoundedLineReceiver):
    """
    Records what it is handed: each complete line, and C{DROPPED} for each
    over-long line. It closes the connection on a line C{quit}.
    """

    MAX_LENGTH = MAX

    def __init__(self) -> None:
        self.events: list[bytes] = []

    def completeLineReceived(self, line: bytes) -> None:
        self.events.append(line)
        if line == b"quit":
            self.transport.loseConnection()

    def longLineDropped(self) -> None:
        self.events.append(b"DROPPED")


def receiver() -> Recorder:
    """A L{Recorder} connected to a L{StringTransport}."""
    protocol = Recorder()
    protocol.makeConnection(StringTransport())
    return protocol


def fed(*chunks: bytes) -> list[bytes]:
    """What a fresh L{Recorder} records from C{chunks}, one read each."""
    protocol = receiver()
    for chunk in chunks:
        protocol.dataReceived(chunk)
    return protocol.events


class LengthTests(SynchronousTestCase):
    """Lines up to C{MAX_LENGTH} bytes pass; longer ones are dropped."""

    def test_justUnder(self) -> None:
        """A line one byte under C{MAX_LENGTH} is delivered whole."""
        self.assertEqual(fed(b"x" * (MAX - 1) + b"\n"), [b"x" * (MAX - 1)])

    def test_atLimit(self) -> None:
        """A line of exactly C{MAX_LENGTH} bytes is delivered whole."""
        self.assertEqual(fed(b"x" * MAX + b"\n"), [b"x" * MAX])

    def test_oneOver(self) -> None:
        """A line one byte over is dropped, reported once, and not delivered."""
        self.assertEqual(fed(b"x" * (MAX + 1) + b"\n"), [b"DROPPED"])

    def test_delimiterNotCounted(self) -> None:
        """The delimiter is not part of the length; a CR before it is."""
        self.assertEqual(
            fed(b"x" * MAX + b"\n", b"y" * MAX + b"\r\n"), [b"x" * MAX, b"DROPPED"]
        )

    def test_atLimitWaitsForDelimiter(self) -> None:
        """C{MAX_LENGTH} bytes without a delimiter may still be a line: kept."""
        protocol = receiver()
        protocol.dataReceived(b"x" * MAX)
        self.assertEqual(protocol.events, [])
        protocol.dataReceived(b"\n")
        self.assertEqual(protocol.events, [b"x" * MAX])

    def test_overLimitDroppedBeforeDelimiter(self) -> None:
        """
        Past C{MAX_LENGTH} bytes without a delimiter the line is dropped at
        once, so it is never buffered whole.
        """
        protocol = receiver()
        protocol.dataReceived(b"x" * (MAX + 1))
        self.assertEqual(protocol.events, [b"DROPPED"])
        self.assertEqual(protocol.clearLineBuffer(), b"")


class SplitTests(SynchronousTestCase):
    """An over-long line across many reads is one dropped line."""

    def test_manyReads(self) -> None:
        """
        A long line in many reads is reported once, none of it is delivered
        (not even its tail), and the line after it is.
        """
        chunks = [b"0123456789"] * 50 + [b"tail\nnext\n"]
        self.assertEqual(fed(*chunks), [b"DROPPED", b"next"])

    def test_byteByByte(self) -> None:
        """One byte per read makes no difference."""
        data = b"a" * 30 + b"\nok\n"
        self.assertEqual(fed(*(data[i : i + 1] for i in range(len(data)))), fed(data))
        self.assertEqual(fed(data), [b"DROPPED", b"ok"])

    def test_longTail(self) -> None:
        """A tail longer than C{MAX_LENGTH} after the first drop is still one line."""
        self.assertEqual(
            fed(b"x" * (MAX + 1), b"y" * (3 * MAX) + b"\nz\n"), [b"DROPPED", b"z"]
        )

    def test_tailIsDelimiter(self) -> None:
        """A long line whose delimiter arrives alone is still one line."""
        self.assertEqual(
            fed(b"x" * (MAX + 1), b"\n", b"after\n"), [b"DROPPED", b"after"]
        )


class FollowingLinesTests(SynchronousTestCase):
    """Lines after an over-long one in the same read are kept."""

    def test_linesAfter(self) -> None:
        """Every line after an over-long one, in the same read, is delivered."""
        self.assertEqual(
            fed(b"x" * 50 + b"\nafter\nmore\n"), [b"DROPPED", b"after", b"more"]
        )

    def test_severalLongLines(self) -> None:
        """Several over-long lines in one read are each reported, once."""
        self.assertEqual(
            fed(
                b"a\n" + b"b" * 20 + b"\nc\n" + b"d" * 20 + b"\n" + b"e" * 20 + b"\nf\n"
            ),
            [b"a", b"DROPPED", b"c", b"DROPPED", b"DROPPED", b"f"],
        )

    def test_partialLineAfter(self) -> None:
        """An unfinished line after an over-long one waits for its end."""
        protocol = receiver()
        protocol.dataReceived(b"x" * 20 + b"\nhal")
        self.assertEqual(protocol.events, [b"DROPPED"])
        protocol.dataReceived(b"f\n")
        self.assertEqual(protocol.events, [b"DROPPED", b"half"])

    def test_stopsWhenDisconnecting(self) -> None:
        """
        Once a line closes the connection, the lines after it in the same
        read are not delivered, even past an over-long line.
        """
        self.assertEqual(fed(b"x" * 20 + b"\nquit\nignored\n"), [b"DROPPED", b"quit"])


class ChunkingTests(SynchronousTestCase):
    """How the bytes are cut into reads never changes what is delivered."""

    @settings(max_examples=200, deadline=None)
    @given(
        strategies.lists(
            strategies.sampled_from([b"x", b"yy", b"z" * 7, b"w" * 13, b"\n", b"\r"]),
            max_size=40,
        ).map(b"".join),
        strategies.lists(strategies.integers(min_value=0, max_value=200)),
    )
    def test_anyCuts(self, data: bytes, cuts: list[int]) -> None:
        """Cut anywhere, the same bytes give the same lines and drops."""
        bounds = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
        pieces = [data[start:end] for start, end in pairwise(bounds)]
        self.assertEqual(fed(*pieces), fed(data))
