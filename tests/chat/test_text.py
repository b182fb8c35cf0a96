"""
Tests for L{twisted_services.chat.text}: decoding, sanitizing and parsing what
chat clients send, on plain values.
"""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings, strategies
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.chat.text import (
    decodeLine,
    encodeLine,
    isTextEncoding,
    isValidNick,
    isValidRoom,
    nickKey,
    parseLine,
    sanitize,
)

# Pieces of terminal escape sequences, to mix into generated text.
ESCAPE_PIECES = [
    "\x1b",
    "\x1b[",
    "\x1b]",
    "\x1bP",
    "\x1b\\",
    "\x07",
    "\x9b",
    "\x9d",
    "\x9c",
    "31m",
    "0;title",
    "\r",
    "\t",
    "\u202e",
    "\u2028",
]

UNSAFE_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}


def isSafe(text: str) -> bool:
    """Whether C{text} holds nothing a terminal acts on or lays out oddly."""
    return not any(
        unicodedata.category(character) in UNSAFE_CATEGORIES
        or unicodedata.bidirectional(character)
        in {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
        for character in text
    )


class DecodeLineTests(SynchronousTestCase):
    """L{decodeLine} turns any bytes into text, never raising."""

    def test_utf8(self) -> None:
        """Valid UTF-8 is decoded as UTF-8."""
        self.assertEqual(decodeLine("héllo 你好".encode()), "héllo 你好")

    def test_invalidReplaced(self) -> None:
        """Without a fallback, each invalid sequence becomes U+FFFD."""
        self.assertEqual(decodeLine(b"a\xffb\xc3"), "a\ufffdb\ufffd")

    def test_fallbackEncoding(self) -> None:
        """Invalid UTF-8 is decoded with the fallback encoding, e.g. gbk."""
        self.assertEqual(decodeLine("你好".encode("gbk"), "gbk"), "你好")

    def test_validUTF8IgnoresFallback(self) -> None:
        """Valid UTF-8 stays UTF-8 even with a fallback encoding."""
        self.assertEqual(decodeLine("你好".encode(), "gbk"), "你好")

    def test_fallbackReplacesWhatItCannotDecode(self) -> None:
        """Bytes the fallback cannot decode become U+FFFD as well."""
        self.assertEqual(decodeLine(b"\xff\xff", "gbk"), "\ufffd\ufffd")

    def test_fallbackThatRaises(self) -> None:
        """A codec that raises whatever the error handler falls back to UTF-8."""
        self.assertEqual(decodeLine(b"a\xff", "idna"), "a\ufffd")

    @settings(max_examples=200, deadline=None)
    @given(
        strategies.binary(),
        strategies.sampled_from([None, "gbk", "latin-1", "utf-16", "shift_jis"]),
    )
    def test_neverRaises(self, line: bytes, fallback: str | None) -> None:
        """Any bytes decode to text with any of these fallbacks."""
        self.assertIsInstance(decodeLine(line, fallback), str)


class SanitizeTests(SynchronousTestCase):
    """L{sanitize} removes everything that could drive a terminal."""

    def test_plainUnchanged(self) -> None:
        """Printable text, non-ASCII and emoji included, is left alone."""
        for text in ["hello, world", "héllo 你好", "👩💻 café", "한글", ""]:
            self.assertEqual(sanitize(text), text)

    def test_csi(self) -> None:
        """CSI sequences go with their parameters (colours, cursor moves)."""
        self.assertEqual(sanitize("\x1b[31mred\x1b[0m"), "red")
        self.assertEqual(sanitize("a\x1b[2J\x1b[1;1Hb"), "ab")
        self.assertEqual(sanitize("x\x1b[?25l"), "x")

    def test_unterminatedCsi(self) -> None:
        """A CSI cut off by the end of the line goes too."""
        self.assertEqual(sanitize("ok\x1b[12;"), "ok")

    def test_eightBitCsi(self) -> None:
        """The 8-bit CSI (U+009B) is stripped with its parameters."""
        self.assertEqual(sanitize("a\x9b31mb"), "ab")

    def test_osc(self) -> None:
        """OSC strings (window titles, hyperlinks) go up to BEL or ST."""
        self.assertEqual(sanitize("\x1b]0;pwned\x07hi"), "hi")
        self.assertEqual(sanitize("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"), "link")
        self.assertEqual(sanitize("\x9d0;title\x9cok"), "ok")

    def test_unterminatedOsc(self) -> None:
        """An OSC without its terminator takes the rest of the line."""
        self.assertEqual(sanitize("hi\x1b]0;and the rest"), "hi")

    def test_deviceControlStrings(self) -> None:
        """DCS, SOS, PM and APC strings are stripped like OSC."""
        for opener in ["\x1bP", "\x1bX", "\x1b^", "\x1b_", "\x90", "\x98", "\x9e"]:
            self.assertEqual(sanitize(f"a{opener}payload\x1b\\b"), "ab", opener)

    def test_otherEscapes(self) -> None:
        """Two-character escapes and a lone ESC are stripped."""
        self.assertEqual(sanitize("a\x1bcb"), "ab")
        self.assertEqual(sanitize("a\x1b(0b"), "ab")
        self.assertEqual(sanitize("a\x1b"), "a")

    def test_controlCharacters(self) -> None:
        """C0 and C1 controls and DEL are removed, so are CR and BEL."""
        self.assertEqual(sanitize("a\x00b\x07c\rd\x08e\x7ff\x85g"), "abcdefg")

    def test_tabBecomesSpace(self) -> None:
        """A tab is turned into a space, not removed."""
        self.assertEqual(sanitize("a\tb"), "a b")

    def test_bidiAndSeparators(self) -> None:
        """Bidi overrides and line separators cannot forge what others see."""
        self.assertEqual(sanitize("abc\u202edcba\u2066x\u2069"), "abcdcbax")
        self.assertEqual(sanitize("hi\u2028<bob> fake"), "hi<bob> fake")

    def test_surrogates(self) -> None:
        """Lone surrogates (from an exotic fallback codec) are removed."""
        self.assertEqual(sanitize("a\ud800b"), "ab")

    @settings(max_examples=300, deadline=None)
    @given(
        strategies.lists(
            strategies.one_of(strategies.text(), strategies.sampled_from(ESCAPE_PIECES))
        )
    )
    def test_alwaysSafe(self, pieces: list[str]) -> None:
        """Whatever goes in, no control character comes out; twice is once."""
        result = sanitize("".join(pieces))
        self.assertTrue(isSafe(result), repr(result))
        self.assertEqual(sanitize(result), result)
        encodeLine(result)


class InvisibleTests(SynchronousTestCase):
    """L{sanitize} removes what shows as nothing, so nothing hides in a line."""

    # Every character issue 12 names, and a sample of the rest of Cf.
    INVISIBLE = (
        "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad"
        "\U000e0001\U000e0020\U000e0041\U000e007f\ufff9\ufffa\ufffb"
        "\u3164\u115f\u1160\uffa0\u180e\u061c\u2066"
    )

    def test_stripped(self) -> None:
        """Zero-width, format, tag characters and Hangul fillers go."""
        for character in self.INVISIBLE:
            self.assertEqual(sanitize(f"a{character}b"), "ab", hex(ord(character)))

    def test_everyFormatCharacter(self) -> None:
        """No format (Cf) character survives, whichever plane it is in."""
        for code in range(0x110000):
            character = chr(code)
            if unicodedata.category(character) == "Cf":
                self.assertEqual(sanitize(f"x{character}"), "x", hex(code))

    def test_onlyFillersLeavesNothing(self) -> None:
        """A line of Hangul fillers is empty once sanitized (and so dropped)."""
        self.assertEqual(sanitize("\u3164" * 20), "")
        self.assertEqual(sanitize("\u3164\u200b\ufeff"), "")

    @given(strategies.text())
    def test_noneLeft(self, text: str) -> None:
        """Whatever the text, nothing invisible is left in it."""
        self.assertFalse(set(sanitize(text)) & set(self.INVISIBLE))


class NickKeyTests(SynchronousTestCase):
    """L{nickKey}: nicks that look alike are one nick."""

    def test_lookAlikes(self) -> None:
        """Case, I/l/1 and O/0 are ignored."""
        self.assertEqual(nickKey("aIice"), nickKey("alice"))
        self.assertEqual(nickKey("a1ice"), nickKey("ALICE"))
        self.assertEqual(nickKey("B0B"), nickKey("bob"))

    def test_different(self) -> None:
        """Other letters still tell nicks apart."""
        self.assertNotEqual(nickKey("alice"), nickKey("alicia"))
        self.assertNotEqual(nickKey("bob"), nickKey("b0bb"))


class ParseLineTests(SynchronousTestCase):
    """L{parseLine} tells commands from lines to say."""

    def test_plain(self) -> None:
        """A line not starting with C{/} is said as it is."""
        self.assertEqual(parseLine(" hello /there "), (None, " hello /there "))

    def test_doubleSlash(self) -> None:
        """C{//} at the start stands for a literal C{/}."""
        self.assertEqual(parseLine("//etc"), (None, "/etc"))
        self.assertEqual(parseLine("//"), (None, "/"))

    def test_command(self) -> None:
        """A command's name is lowercased, its argument stripped."""
        self.assertEqual(parseLine("/MSG  bob  hi  there "), ("msg", "bob  hi  there"))

    def test_commandWithoutArgument(self) -> None:
        """A bare command has an empty argument; a bare C{/} an empty name."""
        self.assertEqual(parseLine("/who"), ("who", ""))
        self.assertEqual(parseLine("/"), ("", ""))


class NameTests(SynchronousTestCase):
    """The rules for nicks and room names."""

    def test_validNicks(self) -> None:
        """1-32 ASCII letters, digits, C{_} and C{-} make a nick."""
        for nick in ["a", "Alice_2", "x-y", "9", "a" * 32]:
            self.assertTrue(isValidNick(nick), nick)

    def test_invalidNicks(self) -> None:
        """Empty, too long, non-ASCII, spaces and punctuation are not nicks."""
        for nick in ["", "a" * 33, "é", "a b", "a.b", "#a", "a\n", "\uff41", "\u0663"]:
            self.assertFalse(isValidNick(nick), nick)

    def test_validRooms(self) -> None:
        """Room names may also hold C{#}."""
        for room in ["lobby", "#games", "#", "a-b_c#1", "r" * 32]:
            self.assertTrue(isValidRoom(room), room)

    def test_invalidRooms(self) -> None:
        """Empty, too long, non-ASCII and punctuation are not room names."""
        for room in ["", "r" * 33, "#jeux-vidéo", "a b", "a,b", "a\n"]:
            self.assertFalse(isValidRoom(room), room)


class EncodingTests(SynchronousTestCase):
    """Encoding outgoing lines and checking encoding names."""

    def test_encodeLine(self) -> None:
        """A line goes out as UTF-8 with CRLF."""
        self.assertEqual(encodeLine("<a> é"), b"<a> \xc3\xa9\r\n")

    def test_isTextEncoding(self) -> None:
        """Text codecs are accepted; bytes codecs and unknown names are not."""
        self.assertTrue(isTextEncoding("gbk"))
        self.assertTrue(isTextEncoding("latin-1"))
        self.assertFalse(isTextEncoding("base64"))
        self.assertFalse(isTextEncoding("rot13"))
        self.assertFalse(isTextEncoding("no-such-encoding"))
