"""
Tests for L{twisted_services.temperature.protocol}: the conversion as a pure function,
and L{TemperatureProtocol} on a fake UDP port with a L{Clock} for time.
"""

from __future__ import annotations

import errno

from hypothesis import given, settings, strategies
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.server.udpguard import DROP_LOG_INTERVAL, ReflectionGuard
from twisted_services.temperature.protocol import (
    MAX_REPLY,
    MAX_REQUEST,
    TemperatureProtocol,
    convert,
    convertDatagram,
    formatTemperature,
)
from twisted_services.testing import FakeDatagramTransport, attachDatagram

CLIENT = ("127.0.2.10", 40000)

EXAMPLES = [
    ("100", "212 F"),
    ("37.5", "99.5 F"),
    ("98.6F", "37 C"),
    ("-40 c", "-40 F"),
    ("0K", "-273.15 C"),
]

ERRORS = [
    ("", "ERROR empty"),
    (" \t\r\n", "ERROR empty"),
    ("abc", "ERROR not a number"),
    ("12.3.4", "ERROR not a number"),
    ("- 5", "ERROR not a number"),
    ("info", "ERROR not a number"),
    ("\N{FULLWIDTH DIGIT ONE}00", "ERROR not a number"),
    ("100 X", "ERROR unknown unit"),
    ("100 kelvin", "ERROR unknown unit"),
    ("100 \N{DEGREE SIGN}C", "ERROR unknown unit"),
    ("-273.16", "ERROR below absolute zero"),
    ("-459.68 F", "ERROR below absolute zero"),
    ("-0.01 K", "ERROR below absolute zero"),
    ("nan", "ERROR not finite"),
    ("NaN F", "ERROR not finite"),
    ("inf", "ERROR not finite"),
    ("-Infinity K", "ERROR not finite"),
    ("1e10", "ERROR out of range"),
    ("-1000000001", "ERROR out of range"),
    ("1e400", "ERROR out of range"),
    ("1000000000.01 K", "ERROR out of range"),
]


def temperatureProtocol(
    rate: float = 100.0, burst: int = 100, maxSources: int = 10000, port: int = 1314
) -> tuple[TemperatureProtocol, FakeDatagramTransport, ReflectionGuard, Clock]:
    """A started L{TemperatureProtocol} on a fake UDP port, with guard and clock."""
    clock = Clock()
    guard = ReflectionGuard("temperature", clock, rate, burst, maxSources)
    protocol = TemperatureProtocol(guard)
    transport = attachDatagram(protocol, FakeDatagramTransport(port=port))
    return protocol, transport, guard, clock


def replyValue(reply: str) -> float:
    """The number in a reply such as C{"212 F\\n"}."""
    value, _ = reply.split()
    return float(value)


class FailingTransport(FakeDatagramTransport):
    """A UDP port whose C{sendto} fails, as for a broadcast source address."""

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")


class ConvertTests(SynchronousTestCase):
    """L{convert} answers every request with a short reply line."""

    def test_examples(self) -> None:
        """The issue's examples convert as documented."""
        for request, reply in EXAMPLES:
            self.assertEqual(convert(request), reply + "\n", request)

    def test_errors(self) -> None:
        """Each kind of bad request gets its own short C{ERROR} reason."""
        for request, reply in ERRORS:
            self.assertEqual(convert(request), reply + "\n", request)

    def test_numberForms(self) -> None:
        """Signs, leading and trailing points and exponents are numbers."""
        for request, reply in [
            ("+5", "41 F"),
            (".5", "32.9 F"),
            ("5.", "41 F"),
            ("1e2", "212 F"),
            ("1E+2", "212 F"),
            ("+.5e1", "41 F"),
            ("-0", "32 F"),
        ]:
            self.assertEqual(convert(request), reply + "\n", request)

    def test_units(self) -> None:
        """Units are case-insensitive, with or without spaces before them."""
        for request in ["212F", "212 F", "212f", "212 \t f", "373.15K", "373.15 k"]:
            self.assertEqual(convert(request), "100 C\n", request)
        self.assertEqual(convert("100 C"), "212 F\n")

    def test_whitespaceAndLineEnds(self) -> None:
        """Surrounding whitespace and a trailing LF or CRLF are accepted."""
        for request in ["100\n", "100\r\n", "  100  ", "\t100 C\r\n"]:
            self.assertEqual(convert(request), "212 F\n", repr(request))

    def test_limitsAccepted(self) -> None:
        """Absolute zero and a magnitude of exactly 1e9 are still answered."""
        self.assertEqual(convert("-273.15"), "-459.67 F\n")
        self.assertEqual(convert("-459.67 F"), "-273.15 C\n")
        self.assertEqual(convert("0 K"), "-273.15 C\n")
        self.assertEqual(convert("1e9"), "1800000032 F\n")
        self.assertEqual(convert("1000000000 F"), "555555537.78 C\n")

    def test_longestReply(self) -> None:
        """The longest replies, in range, fit well inside L{MAX_REPLY}."""
        for request in ["-999999999.99 F", "999999999.99", "-273.14"]:
            self.assertLessEqual(len(convert(request).encode()), MAX_REPLY)


class FormatTests(SynchronousTestCase):
    """L{formatTemperature} writes at most two decimals, no trailing zeros."""

    def test_trailingZeros(self) -> None:
        """Whole numbers have no point; fractions have no trailing zeros."""
        self.assertEqual(formatTemperature(212.0, "F"), "212 F")
        self.assertEqual(formatTemperature(99.5, "F"), "99.5 F")
        self.assertEqual(formatTemperature(100.0, "C"), "100 C")
        self.assertEqual(formatTemperature(-273.15, "C"), "-273.15 C")

    def test_rounding(self) -> None:
        """Values round half away from zero to two decimals, as written."""
        self.assertEqual(formatTemperature(36.99999999999999, "C"), "37 C")
        self.assertEqual(formatTemperature(2.675, "F"), "2.68 F")
        self.assertEqual(formatTemperature(-273.145, "C"), "-273.15 C")
        self.assertEqual(formatTemperature(0.004, "C"), "0 C")

    def test_negativeZero(self) -> None:
        """A value that rounds to zero from below is written C{0}, not C{-0}."""
        self.assertEqual(formatTemperature(-0.0, "C"), "0 C")
        self.assertEqual(formatTemperature(-0.004, "C"), "0 C")
        self.assertEqual(convert("31.999 F"), "0 C\n")

    def test_noExponent(self) -> None:
        """Tiny and large values are written in plain decimals."""
        self.assertEqual(formatTemperature(1e-7, "C"), "0 C")
        self.assertEqual(formatTemperature(1800000032.0, "F"), "1800000032 F")


class ConvertDatagramTests(SynchronousTestCase):
    """L{convertDatagram} decodes UTF-8 and encodes the reply."""

    def test_utf8(self) -> None:
        """A UTF-8 request gets a UTF-8 reply."""
        self.assertEqual(convertDatagram(b"100\n"), b"212 F\n")

    def test_notUTF8(self) -> None:
        """Bytes that are not UTF-8 get C{ERROR not UTF-8}."""
        self.assertEqual(convertDatagram(b"100\xff"), b"ERROR not UTF-8\n")
        self.assertEqual(convertDatagram(b"\xc3"), b"ERROR not UTF-8\n")

    def test_empty(self) -> None:
        """An empty datagram gets C{ERROR empty}."""
        self.assertEqual(convertDatagram(b""), b"ERROR empty\n")


class ConvertPropertyTests(SynchronousTestCase):
    """Properties of the conversion over any input."""

    @settings(max_examples=300, deadline=None)
    @given(
        strategies.floats(
            min_value=-273.15,
            # Fahrenheit of this is the largest value a request may hold.
            max_value=(1e9 - 32) * 5 / 9,
            allow_nan=False,
        )
    )
    def test_roundTrip(self, celsius: float) -> None:
        """Celsius to Fahrenheit and back is within rounding of the start."""
        fahrenheit = convert(repr(celsius))
        self.assertTrue(fahrenheit.endswith(" F\n"), fahrenheit)
        back = convert(fahrenheit)
        self.assertTrue(back.endswith(" C\n"), back)
        # Two roundings by up to 0.005, the first scaled by 5/9 on the way
        # back. (Trial's assertAlmostEqual has no delta.)
        self.assertLessEqual(abs(replyValue(back) - celsius), 0.0078)

    @settings(max_examples=500, deadline=None)
    @given(strategies.text())
    def test_anyText(self, text: str) -> None:
        """Any text gets one short reply line, and no exception."""
        reply = convert(text)
        self.assertLessEqual(len(reply.encode("utf-8")), MAX_REPLY)
        self.assertTrue(reply.endswith("\n"))
        self.assertEqual(reply.count("\n"), 1)

    @settings(max_examples=100, deadline=None)
    @given(
        strategies.from_regex(
            r"\s*[+-]?[0-9]{0,12}\.?[0-9]{0,4}([eE][+-]?[0-9]{1,3})?\s*[cCfFkK]?\s*",
            fullmatch=True,
        )
    )
    def test_numberLikeText(self, text: str) -> None:
        """Text that is nearly a number gets a short reply line, no exception."""
        reply = convert(text)
        self.assertLessEqual(len(reply.encode("utf-8")), MAX_REPLY)
        self.assertTrue(reply.endswith("\n"))

    @settings(max_examples=500, deadline=None)
    @given(strategies.binary(max_size=MAX_REQUEST + 10))
    def test_anyBytes(self, data: bytes) -> None:
        """Any datagram gets one short reply line, and no exception."""
        reply = convertDatagram(data)
        self.assertLessEqual(len(reply), MAX_REPLY)
        self.assertTrue(reply.endswith(b"\n"))
        reply.decode("utf-8")


class TemperatureProtocolTests(SynchronousTestCase):
    """L{TemperatureProtocol} answers requests its guard and size rules allow."""

    def test_repliesToSender(self) -> None:
        """The conversion goes to the address the request came from."""
        protocol, transport, _, _ = temperatureProtocol()
        protocol.datagramReceived(b"100\n", CLIENT)
        protocol.datagramReceived(b"98.6F", ("2001:db8::5", 50000))
        self.assertEqual(
            transport.written,
            [(b"212 F\n", CLIENT), (b"37 C\n", ("2001:db8::5", 50000))],
        )

    def test_badInput(self) -> None:
        """Bad input gets an C{ERROR} reply, and the protocol keeps serving."""
        protocol, transport, _, _ = temperatureProtocol()
        protocol.datagramReceived(b"\xff\xfe", CLIENT)
        protocol.datagramReceived(b"hot", CLIENT)
        protocol.datagramReceived(b"0K", CLIENT)
        self.assertEqual(
            [data for data, _ in transport.written],
            [b"ERROR not UTF-8\n", b"ERROR not a number\n", b"-273.15 C\n"],
        )

    def test_oversizeDropped(self) -> None:
        """A 513-byte datagram is dropped unanswered; 512 bytes are answered."""
        protocol, transport, guard, _ = temperatureProtocol()
        protocol.datagramReceived(b" " * (MAX_REQUEST - 3) + b"100", CLIENT)
        protocol.datagramReceived(b" " * (MAX_REQUEST - 2) + b"100", CLIENT)
        self.assertEqual(transport.written, [(b"212 F\n", CLIENT)])
        self.assertEqual(guard.dropped, 1)

    def test_errorRepliesDropped(self) -> None:
        """A datagram starting with C{ERROR} (another converter's reply) is dropped."""
        protocol, transport, guard, _ = temperatureProtocol()
        protocol.datagramReceived(b"ERROR not a number\n", CLIENT)
        protocol.datagramReceived(b"ERROR", CLIENT)
        self.assertEqual(transport.written, [])
        self.assertEqual(guard.dropped, 2)

    def test_replyIsRequestButNotLoop(self) -> None:
        """An error reply bounced from one converter to another stops there."""
        first, firstPort, _, _ = temperatureProtocol()
        second, secondPort, _, _ = temperatureProtocol()
        first.datagramReceived(b"hot", ("127.0.2.2", 1314 + 1))
        [(reply, _)] = firstPort.written
        second.datagramReceived(reply, ("127.0.2.1", 1314 + 1))
        self.assertEqual(secondPort.written, [])

    def test_reservedSourcePortsDropped(self) -> None:
        """Datagrams from ports below 1024 go unanswered; 1024 is answered."""
        protocol, transport, guard, _ = temperatureProtocol()
        for port in (0, 7, 19, 53, 1023):
            protocol.datagramReceived(b"100", ("127.0.2.10", port))
        protocol.datagramReceived(b"100", ("127.0.2.10", 1024))
        self.assertEqual(transport.written, [(b"212 F\n", ("127.0.2.10", 1024))])
        self.assertEqual(guard.dropped, 5)

    def test_ownPortDropped(self) -> None:
        """A datagram from our own port number (another converter) is dropped."""
        protocol, transport, guard, _ = temperatureProtocol(port=7777)
        self.assertEqual(guard.ownPort, 7777)
        protocol.datagramReceived(b"212 F\n", ("127.0.2.10", 7777))
        self.assertEqual(transport.written, [])
        self.assertEqual(guard.dropped, 1)

    def test_rateLimitedPerSourceAddress(self) -> None:
        """
        One address gets its burst, then its rate, whatever its source port;
        another address keeps its own allowance.
        """
        protocol, transport, guard, clock = temperatureProtocol(rate=2, burst=3)
        for port in range(40000, 40005):
            protocol.datagramReceived(b"100", ("127.0.2.10", port))
        protocol.datagramReceived(b"0K", ("127.0.2.99", 40000))
        self.assertEqual(len(transport.written), 4)
        self.assertEqual(guard.dropped, 2)
        clock.advance(0.5)
        protocol.datagramReceived(b"37.5", ("127.0.2.10", 40009))
        protocol.datagramReceived(b"37.5", ("127.0.2.10", 40009))
        self.assertEqual(transport.written[-1], (b"99.5 F\n", ("127.0.2.10", 40009)))
        self.assertEqual(len(transport.written), 5)

    def test_droppedSpendNoTokens(self) -> None:
        """Oversize and C{ERROR} datagrams do not use up the source's allowance."""
        protocol, transport, _, _ = temperatureProtocol(rate=1, burst=1)
        protocol.datagramReceived(b"x" * (MAX_REQUEST + 1), CLIENT)
        protocol.datagramReceived(b"ERROR empty\n", CLIENT)
        protocol.datagramReceived(b"100", CLIENT)
        self.assertEqual(transport.written, [(b"212 F\n", CLIENT)])

    def test_floodOfSourcesBounded(self) -> None:
        """
        The table of sources holds at most C{maxSources}: one more new source
        forgets the least recently seen, so a flood of spoofed sources costs
        bounded memory and at worst one more burst for a forgotten source.
        """
        protocol, transport, guard, _ = temperatureProtocol(
            rate=1, burst=1, maxSources=100
        )
        others = [(f"127.9.0.{index}", 5000) for index in range(99)]
        protocol.datagramReceived(b"1", CLIENT)
        for source in others:
            protocol.datagramReceived(b"2", source)
        protocol.datagramReceived(b"3", CLIENT)
        self.assertEqual(guard.dropped, 1, "all 100 sources remembered")
        protocol.datagramReceived(b"4", ("127.9.1.0", 5000))
        protocol.datagramReceived(b"5", others[0])
        self.assertEqual(transport.written[-1], (b"41 F\n", others[0]))
        for index in range(5000):
            source = (f"127.10.{index // 256}.{index % 256}", 5000)
            protocol.datagramReceived(b"6", source)
        self.assertEqual(len(transport.written), 1 + 99 + 1 + 1 + 5000)
        self.assertEqual(guard.dropped, 1)

    def test_dropsLoggedOncePerInterval(self) -> None:
        """
        A flood of dropped datagrams logs one warning at once and then one
        per interval with the count, never one per datagram.
        """
        protocol, _, _, clock = temperatureProtocol(rate=1, burst=1)
        with capturedLogs() as events:
            for _ in range(100):
                protocol.datagramReceived(b"100", CLIENT)
                protocol.datagramReceived(b"ERROR", CLIENT)
                protocol.datagramReceived(b"100", ("127.0.2.10", 53))
            atOnce = len(events)
            clock.advance(DROP_LOG_INTERVAL)
            clock.advance(DROP_LOG_INTERVAL)
        text = [formatEvent(event) for event in events]
        self.assertEqual(atOnce, 1)
        self.assertEqual(len(text), 2)
        self.assertTrue(text[0].startswith("temperature: dropped 1 datagram(s)"))
        self.assertTrue(text[1].startswith("temperature: dropped 298 datagram(s)"))
        self.assertEqual(events[0]["log_level"], LogLevel.warn)

    def test_sendFailureCountedNotRaised(self) -> None:
        """A reply the system refuses to send is counted as a drop, not raised."""
        clock = Clock()
        guard = ReflectionGuard("temperature", clock, 10, 10)
        protocol = TemperatureProtocol(guard)
        attachDatagram(protocol, FailingTransport())
        with capturedLogs() as events:
            protocol.datagramReceived(b"100", ("127.0.2.255", 5000))
            protocol.datagramReceived(b"100", ("127.0.2.255", 5000))
        self.assertEqual(guard.dropped, 2)
        self.assertEqual(len(events), 1)

    def test_stopReportsDropsAndLeavesNoTimer(self) -> None:
        """Stopping logs drops not yet reported and leaves no timer behind."""
        protocol, _, _, clock = temperatureProtocol()
        protocol.datagramReceived(b"ERROR", CLIENT)
        with capturedLogs() as events:
            protocol.datagramReceived(b"ERROR", CLIENT)
            protocol.doStop()
        self.assertEqual(len(events), 1)
        self.assertIn("dropped 1 datagram(s)", formatEvent(events[0]))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_quiet(self) -> None:
        """The protocol does not log each start and stop of its port."""
        self.assertFalse(TemperatureProtocol.noisy)
