"""
The text side of the chat service, as pure functions: decoding what a client
sends, making it safe to show on someone else's terminal, parsing commands,
and the rules for nicks and room names.

Nothing here touches a transport, so every rule is tested on plain values.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

LINE_ENDING = b"\r\n"
"""What ends every line the server sends."""

MAX_NAME = 32
"""The longest nick or room name, in characters."""

_NICK = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_NAME}}}")
_ROOM = re.compile(rf"[A-Za-z0-9_#-]{{1,{MAX_NAME}}}")

# Terminal escape sequences (ECMA-48), so that their parameters go with the
# escape character instead of being left behind as litter like "[31m". The
# 8-bit C1 forms are here too: a client can send U+009B (CSI) as valid UTF-8,
# and some terminals act on it.
_SEQUENCES = re.compile(
    # CSI: parameters, intermediates, a final byte (which may be missing when
    # the line ends first).
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    # OSC, DCS, SOS, PM and APC carry a string up to a terminator (BEL or
    # ST); an unterminated one takes the rest of the line, as a terminal
    # would.
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)"
    # Any other escape: intermediates and a final byte.
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?",
    re.DOTALL,
)

# What is left after the sequences are gone: C0 and C1 controls and DEL (so
# no lone ESC, CR or BEL survives); the line and paragraph separators; every
# format character (category Cf: the bidirectional marks, overrides and
# isolates, which can make a line display as something other than what was
# sent, zero-width spaces and joiners, the soft hyphen, the byte order mark,
# tag characters, interlinear annotation marks); the Hangul fillers, letters
# that display as nothing; and lone surrogates (only an exotic fallback codec
# makes those, and they cannot be encoded as UTF-8).
_HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"


def _formatCharacters() -> str:
    """
    Every format (Cf) character this Python's Unicode database knows, as a
    regular expression class body. They are all in planes 0, 1 and 14.
    """
    found = [
        re.escape(chr(code))
        for plane in (0x00000, 0x10000, 0xE0000)
        for code in range(plane, plane + 0x10000)
        if unicodedata.category(chr(code)) == "Cf"
    ]
    return "".join(found)


_CONTROLS = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
    + _HANGUL_FILLERS
    + _formatCharacters()
    + "]"
)


def decodeLine(line: bytes, fallbackEncoding: str | None = None) -> str:
    """
    Decode one line a client sent: as UTF-8 if it is valid UTF-8, else with
    C{fallbackEncoding} if there is one, else as UTF-8 with each invalid byte
    sequence replaced by U+FFFD. Never raises.

    @param fallbackEncoding: a text encoding for clients that do not speak
        UTF-8, e.g. C{"gbk"} for old Windows telnet clients in Chinese
        locales. Bytes it cannot decode become U+FFFD too.
    """
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if fallbackEncoding is not None:
        try:
            return line.decode(fallbackEncoding, "replace")
        except (UnicodeError, LookupError, ValueError, TypeError):
            # Some codecs (idna, punycode) raise whatever the error handler.
            pass
    return line.decode("utf-8", "replace")


def sanitize(text: str) -> str:
    """
    Remove from C{text} everything that could drive another client's
    terminal or forge what it shows: escape sequences with their parameters,
    C0 and C1 control characters, DEL, line and paragraph separators,
    format characters (bidirectional marks and overrides, zero-width and
    other invisible characters) and the Hangul fillers, which show as
    nothing. A tab becomes a space.

    The result never contains a control character, so even a sequence this
    function does not recognise loses its escape character.
    """
    if text.isascii() and text.isprintable():
        # The common case: nothing to remove.
        return text
    text = _SEQUENCES.sub("", text)
    return _CONTROLS.sub("", text.replace("\t", " "))


def parseLine(text: str) -> tuple[str | None, str]:
    """
    Split a (sanitized) line into a command and its argument.

    @return: C{(name, argument)} for a command: C{name} lowercased without
        its C{/}, C{argument} without surrounding spaces. For a line to say
        to the room, C{(None, text)}, where a leading C{//} stands for a
        literal C{/}.
    """
    if not text.startswith("/"):
        return None, text
    if text.startswith("//"):
        return None, text[1:]
    name, _, argument = text[1:].partition(" ")
    return name.lower(), argument.strip()


def isValidNick(name: str) -> bool:
    """Whether C{name} is 1-32 ASCII letters, digits, C{_} or C{-}."""
    return _NICK.fullmatch(name) is not None


# Characters one can be taken for another in a nick (after lowercasing):
# capital I, lowercase l and 1; O and 0.
_LOOKALIKES = str.maketrans({"i": "l", "1": "l", "0": "o"})


def nickKey(nick: str) -> str:
    """
    What makes a nick unique: two nicks with the same key are one, so
    C{aIice} (capital i) cannot be claimed while C{alice} is online, nor
    C{B0B} while C{bob} is. Case is ignored, and so are the ASCII
    look-alikes I, l and 1, and O and 0.
    """
    return nick.lower().translate(_LOOKALIKES)


def isValidRoom(name: str) -> bool:
    """Whether C{name} is 1-32 ASCII letters, digits, C{_}, C{-} or C{#}."""
    return _ROOM.fullmatch(name) is not None


def encodeLine(text: str) -> bytes:
    """
    C{text} as one line on the wire: UTF-8, ending in CRLF.

    C{text} must be sanitized (or written by the server): it must not hold a
    line break or a lone surrogate.
    """
    return text.encode("utf-8") + LINE_ENDING


def isTextEncoding(name: str) -> bool:
    """
    Whether C{name} is a codec that decodes bytes to text (C{gbk} is;
    C{base64} and unknown names are not).
    """
    try:
        codecs.lookup(name)
        # Not b"": decoding nothing succeeds without asking the codec.
        b"x".decode(name, "replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return False
    return True
