"""
The listening options every TCP service shares (C{--port}, C{--interface},
C{--listen}), the option rows they all have, and the coercers behind them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from twisted.internet.endpoints import quoteStringArgument
from twisted.python import usage

from twisted_services.server.dualstack import WILDCARD, hostHasIPv6

T = TypeVar("T")

# Twisted's default listen backlog is 50: a burst of more connects than that
# overflows it and stalls clients on SYN retransmits for a second or more.
DEFAULT_BACKLOG = 1024


def _number(kind: Callable[[str], float], value: str) -> float | None:
    """C{value} as a number of C{kind}, or L{None} if it is not one."""
    try:
        return kind(value)
    except ValueError:
        return None


def portNumber(value: str) -> int:
    """Coerce an option to a port number, 0 (any free port) to 65535."""
    port = _number(int, value)
    if port is None or not 0 <= port <= 65535:
        raise ValueError(f"{value!r} is not a port number (0-65535)")
    return int(port)


portNumber.coerceDoc = "A port number, 0-65535."  # type: ignore[attr-defined]


def positiveInt(value: str) -> int:
    """Coerce an option to an integer of at least 1."""
    number = _number(int, value)
    if number is None or number < 1:
        raise ValueError(f"{value!r} is not a whole number of at least 1")
    return int(number)


positiveInt.coerceDoc = "A whole number, at least 1."  # type: ignore[attr-defined]


def nonNegativeInt(value: str) -> int:
    """Coerce an option to an integer, 0 or more."""
    number = _number(int, value)
    if number is None or number < 0:
        raise ValueError(f"{value!r} is not a whole number, 0 or more")
    return int(number)


nonNegativeInt.coerceDoc = "A whole number, 0 or more."  # type: ignore[attr-defined]


def nonNegativeFloat(value: str) -> float:
    """Coerce an option to a number of seconds, 0 or more."""
    number = _number(float, value)
    if number is None or not number >= 0 or number == float("inf"):
        raise ValueError(f"{value!r} is not a finite number, 0 or more")
    return number


nonNegativeFloat.coerceDoc = "A number, 0 or more."  # type: ignore[attr-defined]


def positiveFloat(value: str) -> float:
    """Coerce an option to a finite number above 0."""
    number = _number(float, value)
    if number is None or not number > 0 or number == float("inf"):
        raise ValueError(f"{value!r} is not a finite number above 0")
    return number


positiveFloat.coerceDoc = "A number above 0."  # type: ignore[attr-defined]


def forOption(name: str, coerce: Callable[[str], T]) -> Callable[[str], T]:
    """
    C{coerce} for option C{--name}: a bad value is a usage error naming the
    option and what it takes (C{--port: 'abc' is not a port number
    (0-65535)}), where L{usage.Options} would say C{Parameter type
    enforcement failed: ...} without naming the option.
    """

    def coerced(value: str) -> T:
        try:
            return coerce(value)
        except ValueError as error:
            # usage.Options passes a UsageError on as it is.
            raise usage.UsageError(f"--{name}: {error}") from None

    coerced.coerceDoc = getattr(coerce, "coerceDoc", "")  # type: ignore[attr-defined]
    return coerced


def idleTimeoutParameter(default: float) -> list[object]:
    """The C{--idle-timeout} option every TCP service has, with its default."""
    return [
        "idle-timeout",
        None,
        default,
        "Close a connection after this many seconds without data from "
        "the client (0: never).",
        forOption("idle-timeout", nonNegativeFloat),
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
        forOption("max-connections", positiveInt),
    ]


def metricsParameter() -> list[object]:
    """
    The C{--metrics} option every plugin has: where to serve Prometheus
    metrics; off by default.
    """
    return [
        "metrics",
        None,
        None,
        "Serve Prometheus metrics (GET /metrics) on this server endpoint "
        "description, e.g. tcp:9100:interface=127.0.0.1 (default: off).",
    ]


def tcpDescription(port: int, interface: str | None, ipv6: bool | None = None) -> str:
    """
    The endpoint description for TCP C{port} on C{interface} (IPv6 allowed).
    Without an interface: C{::}, which serves IPv4 clients too (one socket,
    IPv4-mapped), when the host has IPv6 (C{ipv6}; by default, whether it
    has), all IPv4 addresses otherwise.
    """
    if not interface:
        if ipv6 is None:
            ipv6 = hostHasIPv6()
        if not ipv6:
            return f"tcp:{port}"
        interface = WILDCARD
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
        [
            "port",
            "p",
            None,
            "Listen on this TCP port (0: any free port)",
            forOption("port", portNumber),
        ],
        [
            "interface",
            "i",
            None,
            "With --port or the default port: the address to listen on "
            "(default: ::, IPv6 and IPv4 on one socket, or all IPv4 "
            "interfaces on a host without IPv6; 0.0.0.0: IPv4 only).",
        ],
        [
            "backlog",
            None,
            DEFAULT_BACKLOG,
            "Connections the kernel queues for each listener until they are "
            "accepted (capped by net.core.somaxconn); a burst beyond it "
            "waits for SYN retransmits. A listen description's own "
            "backlog= wins.",
            forOption("backlog", positiveInt),
        ],
        metricsParameter(),
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
