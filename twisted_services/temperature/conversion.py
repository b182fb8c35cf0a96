"""
The temperature conversion, with no network in it: a request such as C{100},
C{98.6F} or C{0 K} in, a reply such as C{100 C = 212 F} or C{ERROR not a
number} out.

No reply is a valid request: a reply holds C{=} or starts with C{ERROR}, and
L{answerable} refuses both, so a datagram spoofed from one converter to
another (or to and from a UDP echo) is answered once and goes no further.

L{convert} answers any text with one short line and never raises;
L{convertDatagram} does the same for bytes. The constants here are the wire
contract the server (L{twisted_services.temperature.protocol}) and the client
(L{twisted_services.temperature.client}) share.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

MAX_REQUEST = 512
"""Longest datagram answered, in bytes; longer ones are dropped unanswered."""

MAX_REPLY = 48
"""Longest reply, in bytes, errors included: the amplification bound."""

MAX_MAGNITUDE = 1e9
"""Largest absolute value converted; beyond it the reply is an error."""

ERROR_PREFIX = "ERROR"
"""What every error reply starts with; a datagram starting so is not answered."""

REPLY_SEPARATOR = " = "
"""Between the request as understood and its conversion, in every reply."""

_ERROR_BYTES = ERROR_PREFIX.encode()
_ERROR_LENGTH = len(_ERROR_BYTES)
_ERROR_FIRST = _ERROR_BYTES[0]
# An int: "61 in data" is a memchr, about a tenth of what "b'=' in data" costs.
(_REPLY_MARK,) = REPLY_SEPARATOR.strip().encode()

ABSOLUTE_ZERO = {"C": -273.15, "F": -459.67, "K": 0.0}
"""The lowest temperature in each unit."""

# ASCII digits only: str.isdigit and float() also accept other scripts' digits.
_NUMBER = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<nonFinite>[+-]?(?:infinity|inf|nan))",
    re.ASCII | re.IGNORECASE,
)
_UNIT = re.compile(r"\s*(?P<unit>[CFK]?)", re.ASCII | re.IGNORECASE)
# What follows a number but could not be part of one: taken for a unit.
_UNIT_LIKE = re.compile(r"\s*[^\s0-9.+\-]+(?:\s+[^\s0-9.+\-]+)*", re.ASCII)


class ConversionError(ValueError):
    """A request that has no answer; C{reason} is the error reply's text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parseTemperature(text: str) -> tuple[float, str]:
    """
    Parse a request such as C{" 98.6 f\\r\\n"} into a value and an upper-case
    unit, C{(98.6, "F")}; the unit defaults to C{"C"}.

    @raise ConversionError: for a request that is empty, not a number, in an
        unknown unit, not finite, out of range or below absolute zero.
    """
    text = text.strip()
    if not text:
        raise ConversionError("empty")
    number = _NUMBER.match(text)
    if number is None:
        raise ConversionError("not a number")
    unit = _UNIT.match(text, number.end())
    assert unit is not None  # every part of the pattern is optional
    if unit.end() != len(text):
        rest = text[number.end() :]
        # "100 X" names a unit we lack; "1.2.3" or "info" is no number at all.
        if number["number"] is not None and _UNIT_LIKE.fullmatch(rest):
            raise ConversionError("unknown unit")
        raise ConversionError("not a number")
    if number["nonFinite"] is not None:
        raise ConversionError("not finite")
    # A literal too big for a float (1e400) parses to infinity: out of range too.
    value = float(number["number"])
    if not abs(value) <= MAX_MAGNITUDE:
        raise ConversionError("out of range")
    scale = unit["unit"].upper() or "C"
    if value < ABSOLUTE_ZERO[scale]:
        raise ConversionError("below absolute zero")
    return value, scale


def formatTemperature(value: float, unit: str) -> str:
    """
    Write C{value} in C{unit} as a reply without its line end: rounded half
    away from zero to at most two decimals, no trailing zeros, and C{-0} as
    C{0} (C{99.5 F}, C{-273.15 C}, C{212 F}).
    """
    # The shortest decimal form of the float, so 2.675 rounds as written.
    rounded = Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    digits = f"{rounded:f}".rstrip("0").rstrip(".")
    if rounded.is_zero():
        digits = "0"
    return f"{digits} {unit}"


def convertTemperature(value: float, unit: str) -> tuple[float, str]:
    """Celsius to Fahrenheit; Fahrenheit and kelvin to Celsius."""
    if unit == "C":
        return value * 9 / 5 + 32, "F"
    if unit == "F":
        return (value - 32) * 5 / 9, "C"
    return value - 273.15, "C"


def convert(text: str) -> str:
    """
    The reply to a request, always ending with a line feed and never longer
    than L{MAX_REPLY} bytes: the request as understood and its conversion,
    such as C{"100 C = 212 F\\n"}, or an error such as C{"ERROR not a
    number\\n"}. Never raises.
    """
    try:
        value, unit = parseTemperature(text)
    except ConversionError as error:
        return f"{ERROR_PREFIX} {error.reason}\n"
    converted = formatTemperature(*convertTemperature(value, unit))
    return f"{formatTemperature(value, unit)}{REPLY_SEPARATOR}{converted}\n"


def answerable(data: bytes) -> bool:
    """
    Whether a datagram gets a reply at all: not empty, at most
    L{MAX_REQUEST} bytes, and not a reply itself (an error, or anything
    holding C{=}), so that converters and echoes cannot be made to trade
    replies.
    """
    # Runs for every datagram: comparing the first byte (an int) settles
    # nearly every request, and is cheaper than a slice (a new bytes object)
    # or startswith (a method call).
    return (
        0 < len(data) <= MAX_REQUEST
        and _REPLY_MARK not in data
        and (data[0] != _ERROR_FIRST or data[:_ERROR_LENGTH] != _ERROR_BYTES)
    )


def convertDatagram(data: bytes) -> bytes:
    """L{convert} for a datagram: UTF-8 in, UTF-8 out. Never raises."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"{ERROR_PREFIX} not UTF-8\n".encode()
    return convert(text).encode("utf-8")
