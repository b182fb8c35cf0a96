"""
The listening options every TCP service shares (C{--port}, C{--interface},
C{--listen}), the option rows they all have, and the coercers behind them.
"""

from __future__ import annotations

from twisted.internet.endpoints import quoteStringArgument
from twisted.python import usage


def portNumber(value: str) -> int:
    """Coerce an option to a port number, 0 (any free port) to 65535."""
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"{value} is not a port number (0-65535)")
    return port


portNumber.coerceDoc = "A port number, 0-65535."  # type: ignore[attr-defined]


def positiveInt(value: str) -> int:
    """Coerce an option to an integer of at least 1."""
    number = int(value)
    if number < 1:
        raise ValueError(f"{value} is not a positive whole number")
    return number


positiveInt.coerceDoc = "A whole number, at least 1."  # type: ignore[attr-defined]


def nonNegativeFloat(value: str) -> float:
    """Coerce an option to a number of seconds, 0 or more."""
    number = float(value)
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"{value} is not a finite number, 0 or more")
    return number


nonNegativeFloat.coerceDoc = "A number, 0 or more."  # type: ignore[attr-defined]


def positiveFloat(value: str) -> float:
    """Coerce an option to a finite number above 0."""
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{value} is not a finite number above 0")
    return number


positiveFloat.coerceDoc = "A number above 0."  # type: ignore[attr-defined]


def idleTimeoutParameter(default: float) -> list[object]:
    """The C{--idle-timeout} option every TCP service has, with its default."""
    return [
        "idle-timeout",
        None,
        default,
        "Close a connection after this many seconds without data from "
        "the client (0: never).",
        nonNegativeFloat,
    ]


def maxConnectionsParameter(whenFull: str) -> list[object]:
    """
    The C{--max-connections} option every TCP service has; C{whenFull} says
    what happens to a connection past the limit.
    """
    return [
        "max-connections",
        None,
        10000,
        f"Accept at most this many connections at once; {whenFull}.",
        positiveInt,
    ]


def tcpDescription(port: int, interface: str | None) -> str:
    """The endpoint description for TCP C{port} on C{interface} (IPv6 allowed)."""
    if not interface:
        return f"tcp:{port}"
    kind = "tcp6" if ":" in interface else "tcp"
    return f"{kind}:{port}:interface={quoteStringArgument(interface)}"


class ListenOptions(usage.Options):
    """
    C{--port}, C{--interface} and the repeatable C{--listen}, for a service
    whose default port is L{defaultPort}. After parsing, C{self["listen"]}
    holds every endpoint description to listen on.
    """

    defaultPort: int

    optParameters = [
        ["port", "p", None, "Listen on this TCP port (0: any free port)", portNumber],
        [
            "interface",
            "i",
            None,
            "With --port or the default port: the address to listen on "
            "(default: all IPv4 interfaces; IPv6 addresses allowed).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        self["listen"].append(description)

    # One line: usage.Options prints an opt_ docstring's line breaks verbatim.
    opt_listen.__doc__ = (
        "Listen on a Twisted server endpoint description, e.g. tcp:8888, "
        "'tcp6:8888:interface=\\:\\:1' (quoted, or the shell eats the "
        "backslashes), unix:/run/echo.sock, "
        "ssl:8443:privateKey=key.pem:certKey=cert.pem or "
        "systemd:domain=INET:index=0. Repeatable: every listener is used."
    )

    def postOptions(self) -> None:
        if self["port"] is not None or not self["listen"]:
            port = self["port"] if self["port"] is not None else self.defaultPort
            self["listen"].insert(0, tcpDescription(port, self["interface"]))
        elif self["interface"]:
            raise usage.UsageError("--interface goes with --port, not with --listen")
