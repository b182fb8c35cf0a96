"""
What the chat server says, as it goes on the wire.

Three forms, told apart by how the line starts, and no user can make the
server send a line in the first: C{*** } for the server's own notices,
C{! } for errors (sent only to the client concerned), and everything users
say: C{<nick> text}, C{* nick action} for C{/me} (a nick never holds C{*}),
C{*nick* text} for a private message.
"""

from __future__ import annotations

from twisted_services.chat.text import encodeLine

NOTICE = "*** "
"""How every server notice starts; no line a user causes starts so."""

ERROR = "! "
"""How every error starts."""


def encodeNotice(text: str) -> bytes:
    """A server notice, on the wire."""
    return encodeLine(NOTICE + text)


def encodeError(text: str) -> bytes:
    """An error for one client, on the wire."""
    return encodeLine(ERROR + text)


LINE_TOO_LONG = encodeError("line too long")
SLOW_DOWN = encodeError("slow down")
END_LINES = encodeError("end each line with a newline")
SHUTTING_DOWN = encodeNotice("server shutting down")
IDLE_CLOSING = encodeNotice("idle too long, closing")
SERVER_FULL = encodeError("server full, try later")
BYE = encodeNotice("bye")

NICK_USAGE = encodeError("usage: /nick NAME")
NICK_INVALID = encodeError("invalid nick: 1-32 letters, digits, _ or -")
ME_USAGE = encodeError("usage: /me ACTION")
WHO_USAGE = encodeError("usage: /who")
JOIN_USAGE = encodeError("usage: /join ROOM")
ROOM_INVALID = encodeError("invalid room name: 1-32 letters, digits, _, - or #")
ROOMS_USAGE = encodeError("usage: /rooms")
MSG_USAGE = encodeError("usage: /msg NICK TEXT")
NO_SUCH_NICK = encodeError("no such nick")
HELP_USAGE = encodeError("usage: /help")

HELP = b"".join(
    encodeNotice(line)
    for line in [
        "commands:",
        "  /nick NAME      change your nick (1-32 letters, digits, _ or -)",
        "  /me ACTION      tell your room what you are doing",
        "  /who            list who is in your room",
        "  /join ROOM      move to ROOM (1-32 letters, digits, _, - or #), "
        "creating it if needed",
        "  /rooms          list the rooms and how many are in each",
        "  /msg NICK TEXT  send TEXT to NICK alone, in whichever room",
        "  /quit [REASON]  leave the chat (/exit and /bye too)",
        "  /help           this list",
        "any other line goes to everyone else in your room; "
        "start it with // to send a line that begins with /",
        "lines from the server start with ***, errors with !, "
        "and /me actions with * and the nick",
    ]
)
