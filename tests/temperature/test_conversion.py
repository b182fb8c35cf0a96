"""
Tests for L{twisted_services.temperature.conversion}: the conversion as pure
functions, with no transport.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.temperature.conversion import (
    MAX_REPLY,
    MAX_REQUEST,
    REPLY_SEPARATOR,
    ConversionError,
    answerable,
    convert,
    convertDatagram,
    convertTemperature,
    formatTemperature,
    parseTemperature,
)

EXAMPLES = [
    ("100", "100 C = 212 F"),
    ("37.5", "37.5 C = 99.5 F"),
    ("98.6F", "98.6 F = 37 C"),
    ("-40 c", "-40 C = -40 F"),
    ("0K", "0 K = -273.15 C"),
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


def result(reply: str) -> str:
    """The conversion in a reply: C{"212 F"} from C{"100 C = 212 F\\n"}."""
    _, separator, converted = reply.rstrip("\n").partition(REPLY_SEPARATOR)
    if not separator:
        raise AssertionError(f"not a conversion: {reply!r}")
    return converted


def replyValue(reply: str) -> float:
    """The number a reply converted to: C{212.0} from C{"100 C = 212 F\\n"}."""
    value, _ = result(reply).split()
    return float(value)


class ConvertTests(SynchronousTestCase):
    """L{convert} answers every request with a short reply line."""

    def test_examples(self) -> None:
        """
        The README's examples convert as documented, each reply saying what
        was understood: the value rounded as the result is, and its unit.
        """
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
            self.assertEqual(result(convert(request)), reply, request)

    def test_units(self) -> None:
        """Units are case-insensitive, with or without spaces before them."""
        for request in ["212F", "212 F", "212f", "212 \t f", "373.15K", "373.15 k"]:
            self.assertEqual(result(convert(request)), "100 C", request)
        self.assertEqual(convert("100 C"), "100 C = 212 F\n")
        self.assertEqual(convert("212 \t f"), "212 F = 100 C\n")

    def test_whitespaceAndLineEnds(self) -> None:
        """Surrounding whitespace and a trailing LF or CRLF are accepted."""
        for request in ["100\n", "100\r\n", "  100  ", "\t100 C\r\n"]:
            self.assertEqual(convert(request), "100 C = 212 F\n", repr(request))

    def test_limitsAccepted(self) -> None:
        """Absolute zero and a magnitude of exactly 1e9 are still answered."""
        self.assertEqual(convert("-273.15"), "-273.15 C = -459.67 F\n")
        self.assertEqual(convert("-459.67 F"), "-459.67 F = -273.15 C\n")
        self.assertEqual(convert("0 K"), "0 K = -273.15 C\n")
        self.assertEqual(convert("1e9"), "1000000000 C = 1800000032 F\n")
        self.assertEqual(convert("1000000000 F"), "1000000000 F = 555555537.78 C\n")

    def test_longestReply(self) -> None:
        """The longest replies, in range, fit well inside L{MAX_REPLY}."""
        for request in ["-999999999.99 F", "999999999.99", "-273.14"]:
            self.assertLessEqual(len(convert(request).encode()), MAX_REPLY)


class ParseTests(SynchronousTestCase):
    """L{parseTemperature} reads a value and an upper-case unit, or says why not."""

    def test_valueAndUnit(self) -> None:
        """The unit is upper-cased and defaults to Celsius."""
        self.assertEqual(parseTemperature(" 98.6 f\r\n"), (98.6, "F"))
        self.assertEqual(parseTemperature("-40"), (-40.0, "C"))
        self.assertEqual(parseTemperature("0k"), (0.0, "K"))

    def test_reason(self) -> None:
        """A request with no answer raises L{ConversionError} with the reply's text."""
        error = self.assertRaises(ConversionError, parseTemperature, "100 X")
        self.assertEqual(error.reason, "unknown unit")


class ConvertTemperatureTests(SynchronousTestCase):
    """L{convertTemperature} maps Celsius to Fahrenheit and the others to Celsius."""

    def test_units(self) -> None:
        """Each unit converts to the one its reply is written in."""
        self.assertEqual(convertTemperature(100.0, "C"), (212.0, "F"))
        self.assertEqual(convertTemperature(212.0, "F"), (100.0, "C"))
        self.assertEqual(convertTemperature(273.15, "K"), (0.0, "C"))


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
        self.assertEqual(convert("31.999 F"), "32 F = 0 C\n")

    def test_noExponent(self) -> None:
        """Tiny and large values are written in plain decimals."""
        self.assertEqual(formatTemperature(1e-7, "C"), "0 C")
        self.assertEqual(formatTemperature(1800000032.0, "F"), "1800000032 F")


class ConvertDatagramTests(SynchronousTestCase):
    """L{convertDatagram} decodes UTF-8 and encodes the reply."""

    def test_utf8(self) -> None:
        """A UTF-8 request gets a UTF-8 reply."""
        self.assertEqual(convertDatagram(b"100\n"), b"100 C = 212 F\n")

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
        fahrenheit = result(convert(repr(celsius)))
        self.assertTrue(fahrenheit.endswith(" F"), fahrenheit)
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


class AnswerableTests(SynchronousTestCase):
    """L{answerable} says which datagrams get a reply at all."""

    def test_requests(self) -> None:
        """Requests, bad ones included, up to L{MAX_REQUEST} bytes are answered."""
        for data in [b"100", b"98.6F\r\n", b" ", b"hot", b"\xff", b" " * 509 + b"100"]:
            self.assertTrue(answerable(data), data[:20])

    def test_nearlyErrors(self) -> None:
        """Requests that start as C{ERROR} does, but are not one, are answered."""
        for data in [b"E", b"ERRO", b"Error", b"ERRAND", b"EROR 5"]:
            self.assertTrue(answerable(data), data)

    def test_emptyAndOversize(self) -> None:
        """An empty datagram, and one of L{MAX_REQUEST} + 1 bytes, get nothing."""
        self.assertFalse(answerable(b""))
        self.assertFalse(answerable(b" " * 510 + b"100"))

    def test_replies(self) -> None:
        """A reply, ours or an error, is never answered: that is how loops start."""
        for data in [
            b"100 C = 212 F\n",
            b"=",
            b"100=",
            b"ERROR not a number\n",
            b"ERROR",
        ]:
            self.assertFalse(answerable(data), data)


# Requests: any text, and text close to a valid request (so that most of the
# examples convert rather than fail).
REQUESTS = strategies.text() | strategies.from_regex(
    r"\s*[+-]?[0-9]{0,10}\.?[0-9]{0,4}([eE][+-]?[0-9]{1,2})?\s*[cCfFkK]?\s*",
    fullmatch=True,
)


class NoLoopPropertyTests(SynchronousTestCase):
    """No reply is a request: converters and echoes cannot trade replies."""

    @settings(max_examples=500, deadline=None)
    @given(REQUESTS)
    def test_replyToAnyReplyIsNothing(self, request: str) -> None:
        """
        The reply to any request, conversion or error, is not answered; and
        were it answered, the parser would reject it with an C{ERROR} that is
        itself never answered.
        """
        reply = convertDatagram(request.encode("utf-8"))
        self.assertFalse(answerable(reply), reply)
        # The parser alone stops it too: its answer is an error...
        error = convertDatagram(reply)
        self.assertTrue(error.startswith(b"ERROR "), (reply, error))
        # ... and an error is never answered.
        self.assertFalse(answerable(error), error)

    @settings(max_examples=300, deadline=None)
    @given(strategies.binary(max_size=MAX_REQUEST + 10))
    def test_replyToAnyDatagramIsNothing(self, data: bytes) -> None:
        """The same for any bytes, UTF-8 or not."""
        reply = convertDatagram(data)
        self.assertFalse(answerable(reply), reply)
        self.assertFalse(answerable(convertDatagram(reply)))
