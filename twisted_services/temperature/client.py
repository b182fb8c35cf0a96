"""
The temperature client: C{python -m twisted_services.temperature VALUE
[--server HOST:PORT] [--timeout SECONDS]}.

It sends VALUE (C{100}, C{98.6F}, C{-40 c}, ...) to the temperature service
in one datagram and prints the reply. An C{ERROR ...} reply goes to standard
error. UDP loses datagrams, so a request that gets no reply within half of
C{--timeout} is sent once more; when the whole timeout passes without a reply
the client says C{no reply from HOST:PORT}. With C{-} for VALUE the values
are read from standard input, one per line, and each gets its reply (or its
error) on a line of its own; input is read no faster than it is answered.

Exit status: 0 when every value was converted, 1 when any got an C{ERROR}
reply (or was too long to send), 2 when any got no reply (or the server
could not be resolved or reached, or the command line was wrong).

Each request goes out from a UDP port of its own, opened for that request and
closed once it is answered: the reply to a resent request may arrive twice,
and the late copy must not be taken for the answer to the next value. Only
datagrams from the server's address and port count as replies.
"""

from __future__ import annotations

import math
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TextIO

from twisted.internet import stdio
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IReactorTime,
)
from twisted.internet.protocol import DatagramProtocol, connectionDone
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_services.clients.endpoints import oneLine, parseHostPort
from twisted_services.clients.runner import ClientOptions, runClient
from twisted_services.clients.terminal import (
    FinishingStandardIO,
    StandardIOFactory,
    cleanLine,
)
from twisted_services.core.lines import BoundedLineReceiver
from twisted_services.core.twistedprivate import getoptSpecification
from twisted_services.temperature.conversion import ERROR_PREFIX, MAX_REQUEST

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 1314
DEFAULT_SERVER = f"{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_TIMEOUT = 2.0

ATTEMPTS = 2
"""How many times a request is sent: once, and one retry."""

OK = 0
ERROR_REPLY = 1
NO_REPLY = 2


class NoReply(Exception):
    """Every attempt went unanswered within the timeout."""


class ValueTooLong(Exception):
    """A value longer than L{MAX_REQUEST} bytes, which the service would drop."""


@dataclass(frozen=True)
class Server:
    """Where the service is: as the user wrote it, and the address it resolved to."""

    host: str
    port: int
    family: int
    address: str

    def describe(self) -> str:
        """C{HOST:PORT}, or C{[HOST]:PORT} for an IPv6 host, as given."""
        return describeServer(self.host, self.port)

    @property
    def interface(self) -> str:
        """The wildcard address our own port binds, in the server's family."""
        return "::" if self.family == socket.AF_INET6 else ""


def describeServer(host: str, port: int) -> str:
    """C{localhost:1314}; an IPv6 host is bracketed: C{[::1]:1314}."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def normalHost(host: str) -> str:
    """
    One spelling per address (C{0:0::1} is C{::1}), so the source of a reply
    can be compared with the server's address as strings.
    """
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_ntop(family, socket.inet_pton(family, host))
        except (OSError, ValueError):
            continue
    return host  # a scoped IPv6 address (fe80::1%eth0) is kept as it is


AddressInfo = tuple[Any, Any, int, str, tuple[Any, ...]]


def pickAddress(infos: Sequence[AddressInfo]) -> tuple[int, str]:
    """
    The C{(family, address)} to use among C{getaddrinfo} results: the first
    IPv4 address if there is one (the service listens on all IPv4 addresses
    by default, and C{::} serves both), else the first IPv6 address.

    @raise LookupError: if there is neither.
    """
    for wanted in (socket.AF_INET, socket.AF_INET6):
        for family, _, _, _, sockaddr in infos:
            if family == wanted:
                return wanted, normalHost(sockaddr[0])
    raise LookupError("no IPv4 or IPv6 address")


Resolver = Callable[[str, int], Awaitable[Sequence[AddressInfo]]]


def threadedResolver(reactor: Any) -> Resolver:
    """Resolve with C{getaddrinfo} in the reactor's thread pool, never blocking it."""

    def resolve(host: str, port: int) -> Deferred[Sequence[AddressInfo]]:
        return deferToThreadPool(
            reactor,
            reactor.getThreadPool(),
            socket.getaddrinfo,
            host,
            port,
            0,
            socket.SOCK_DGRAM,
        )

    return resolve


async def resolveServer(host: str, port: int, resolve: Resolver) -> Server:
    """
    The L{Server} for C{host}: an IP address is used as it is; a name is
    resolved (see L{pickAddress} for which of its addresses is used).
    """
    if isIPAddress(host):
        return Server(host, port, socket.AF_INET, normalHost(host))
    if isIPv6Address(host):
        return Server(host, port, socket.AF_INET6, normalHost(host))
    family, address = pickAddress(await resolve(host, port))
    return Server(host, port, family, address)


class TemperatureRequest(DatagramProtocol):
    """
    One request and its reply, on a UDP port of its own: sends C{request} to
    C{server}, resends it once if no reply came within half the timeout, and
    fires L{reply} with the first datagram from the server's address and
    port, or fails it with L{NoReply} (or the error that stopped sending).
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        server: tuple[str, int],
        request: bytes,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = ATTEMPTS,
    ) -> None:
        self._clock = clock
        self._server = (normalHost(server[0]), server[1])
        self._request = request
        self._wait = timeout / attempts
        self._attemptsLeft = attempts
        self._timer: IDelayedCall | None = None
        self.sent = 0
        self.ignored = 0
        self.reply: Deferred[bytes] = Deferred()

    def startProtocol(self) -> None:
        self._send()

    def _send(self) -> None:
        self._attemptsLeft -= 1
        try:
            self.transport.write(self._request, self._server)
        except OSError as error:
            # No route, a refused address, ...: retrying will not help.
            self._finish(Failure(error))
            return
        self.sent += 1
        self._timer = self._clock.callLater(self._wait, self._expired)

    def _expired(self) -> None:
        self._timer = None
        if self._attemptsLeft > 0:
            self._send()
        else:
            self._finish(Failure(NoReply()))

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        if self.reply.called:
            return  # a duplicate, or something late
        if (normalHost(addr[0]), addr[1]) != self._server:
            # Anyone can send us a datagram; only the server's count.
            self.ignored += 1
            self._log.debug("ignored a datagram from {address}", address=addr)
            return
        self._finish(datagram)

    def _finish(self, result: bytes | Failure) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if not self.reply.called:
            self.reply.callback(result)

    def stopProtocol(self) -> None:
        """The port closed under us: stop waiting."""
        self._finish(Failure(NoReply()))


class Values(Protocol):
    """Where the values come from and their replies go."""

    def nextValue(self) -> Deferred[bytes | None]:
        """The next value, L{None} after the last; fails with L{ValueTooLong}."""

    def show(self, text: str) -> None:
        """Print one reply line."""

    def finish(self) -> Deferred[None]:
        """Flush what was printed; fires when done."""


class OneValue:
    """The VALUE given on the command line; replies go to C{output}."""

    def __init__(self, value: bytes, output: TextIO) -> None:
        self._value: bytes | None = value
        self._output = output

    def nextValue(self) -> Deferred[bytes | None]:
        value, self._value = self._value, None
        return succeed(value)

    def show(self, text: str) -> None:
        self._output.write(text + "\n")
        self._output.flush()

    def finish(self) -> Deferred[None]:
        return succeed(None)


@implementer(IHalfCloseableProtocol)
class StandardInputValues(FinishingStandardIO, BoundedLineReceiver):
    """
    Values from standard input, one per line (LF or CRLF; a last line
    without LF counts), and replies to standard output. Reading stays paused
    except while a value is wanted, so a long input is read no faster than
    the server answers it and never held in memory.
    """

    # The service drops longer datagrams, so a longer line is never sent;
    # +1 leaves room for the CR of a CRLF.
    MAX_LENGTH = MAX_REQUEST + 1
    hasProducer = False

    def __init__(self) -> None:
        self._wanted: Deferred[bytes | None] | None = None
        self._inputEnded = False

    def connectionMade(self) -> None:
        self.pauseProducing()

    def nextValue(self) -> Deferred[bytes | None]:
        if self._wanted is not None:
            raise RuntimeError("nextValue called again before its result")
        wanted: Deferred[bytes | None] = Deferred()
        self._wanted = wanted
        if self.outputGone or self._lost:
            self._give(None)
        else:
            # Lines already buffered are handed over before anything is read.
            self.resumeProducing()
            self._maybeEnded()
        return wanted

    def _give(self, result: bytes | Failure | None) -> None:
        wanted, self._wanted = self._wanted, None
        if not self.paused and not self._lost:
            self.pauseProducing()
        if wanted is not None:
            wanted.callback(result)

    def completeLineReceived(self, line: bytes) -> None:
        self._give(line.removesuffix(b"\r"))

    def longLineDropped(self) -> None:
        self._give(Failure(ValueTooLong()))

    def _maybeEnded(self) -> None:
        """At the end of input, hand over a last unterminated line, then L{None}."""
        if self._wanted is None or not self._inputEnded or self.paused:
            return
        rest = self.clearLineBuffer()
        if rest and not self._discarding:
            self.completeLineReceived(rest)
        else:
            self._give(None)

    def readConnectionLost(self) -> None:
        self._inputEnded = True
        self._maybeEnded()

    def writeConnectionLost(self) -> None:
        """Nobody reads the replies any more (a closed pipe): stop."""
        self.outputGone = True
        if self._wanted is not None:
            self._give(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._inputEnded = True
        if self._wanted is not None:
            self._give(None)
        super().connectionLost(reason)


async def ask(reactor: Any, server: Server, value: bytes, timeout: float) -> bytes:
    """Send C{value} to C{server} from a fresh UDP port; the reply's bytes."""
    request = TemperatureRequest(reactor, (server.address, server.port), value, timeout)
    port = reactor.listenUDP(0, request, interface=server.interface)
    try:
        return await request.reply
    finally:
        await maybeDeferred(port.stopListening)


async def convert(
    reactor: Any,
    options: Options,
    values: Values,
    stderr: TextIO | None = None,
    resolve: Resolver | None = None,
) -> int:
    """
    Convert every value from C{values} in turn, printing each reply; return
    the exit status (the worst of L{OK}, L{ERROR_REPLY} and L{NO_REPLY}).
    Errors go to C{stderr} (by default C{sys.stderr}).
    """

    def complain(text: str) -> None:
        output = sys.stderr if stderr is None else stderr
        output.write(text + "\n")
        output.flush()

    host, port = options["host"], options["port"]
    try:
        server = await resolveServer(
            host, port, resolve if resolve is not None else threadedResolver(reactor)
        )
    except (OSError, LookupError) as error:
        complain(f"temperature: cannot resolve {host}: {oneLine(error)}")
        await values.finish()
        return NO_REPLY
    status = OK
    while True:
        try:
            value = await values.nextValue()
        except ValueTooLong:
            complain(f"temperature: value too long (over {MAX_REQUEST} bytes)")
            status = max(status, ERROR_REPLY)
            continue
        if value is None:
            break
        if len(value) > MAX_REQUEST:
            complain(f"temperature: value too long (over {MAX_REQUEST} bytes)")
            status = max(status, ERROR_REPLY)
            continue
        try:
            reply = await ask(reactor, server, value, options["timeout"])
        except NoReply:
            complain(f"no reply from {server.describe()}")
            status = NO_REPLY
            continue
        except (OSError, CannotListenError) as error:
            complain(
                f"temperature: cannot send to {server.describe()}: {oneLine(error)}"
            )
            status = NO_REPLY
            continue
        text = cleanLine(reply.removesuffix(b"\n"))
        if text.startswith(ERROR_PREFIX):
            complain(text)
            status = max(status, ERROR_REPLY)
        else:
            values.show(text)
    await values.finish()
    return status


def _looksLikeOption(argument: str) -> bool:
    # "-40", "-.5", "-40c" and "-" are values; "-s", "-t5" and "--server" are
    # options.
    if argument.startswith("--"):
        return len(argument) > 2
    return argument.startswith("-") and argument[1:2].isalpha()


class Options(ClientOptions):
    """Command line of the temperature client."""

    synopsis = (
        "Usage: python -m twisted_services.temperature VALUE "
        "[--server HOST:PORT] [--timeout SECONDS]"
    )
    longdesc = (
        "Convert VALUE (a number with an optional unit C, F or K; Celsius by "
        "default) with the twisted-services temperature service. VALUE - reads "
        "values from standard input, one per line. A value starting with - is "
        "a negative number, not an option."
    )
    optParameters = [
        ["server", "s", DEFAULT_SERVER, "HOST:PORT or [IPV6]:PORT of the service."],
        [
            "timeout",
            "t",
            DEFAULT_TIMEOUT,
            "Seconds to wait for each reply (the request is resent once, "
            "halfway through).",
            float,
        ],
    ]

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Options may come after VALUE (C{100 --server h:1}), and a value may
        look like one (C{-40}): move the options first for C{getopt}.
        """
        arguments = list(sys.argv[1:] if options is None else options)
        flags: list[str] = []
        positional: list[str] = []
        while arguments:
            argument = arguments.pop(0)
            if argument == "--":
                positional.extend(arguments)
                break
            if not _looksLikeOption(argument):
                positional.append(argument)
                continue
            flags.append(argument)
            if self._needsValue(argument) and arguments:
                flags.append(arguments.pop(0))
        super().parseOptions([*flags, "--", *positional])

    def _needsValue(self, argument: str) -> bool:
        longOptions, shortOptions = getoptSpecification(self)
        if argument.startswith("--"):
            name = argument[2:]
            if "=" in name:
                return False
            # getopt accepts any unambiguous prefix of a long option.
            matches = [o for o in longOptions if o.rstrip("=").startswith(name)]
            return len(matches) == 1 and matches[0].endswith("=")
        return len(argument) == 2 and f"{argument[1]}:" in shortOptions

    def parseArgs(self, value: str) -> None:
        """The one positional argument: the value to convert, or C{-}."""
        self["value"] = value

    def postOptions(self) -> None:
        """Check the server and the timeout."""
        self["host"], self["port"] = parseHostPort(self["server"], DEFAULT_PORT)
        timeout = self["timeout"]
        if not math.isfinite(timeout) or timeout <= 0:
            raise usage.UsageError(f"bad timeout {timeout}: expected seconds > 0")


async def _run(
    reactor: Any,
    options: Options,
    standardIO: StandardIOFactory = stdio.StandardIO,
) -> None:
    values: Values
    if options["value"] == "-":
        lines = StandardInputValues()
        standardIO(lines, reactor=reactor)
        values = lines
    else:
        # The bytes as given, even those the locale could not decode.
        values = OneValue(os.fsencode(options["value"]), sys.stdout)
    status = await convert(reactor, options, values)
    if status != OK:
        raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the client with C{argv} (default: C{sys.argv[1:]}) and exit."""
    runClient("temperature", Options(), _run, argv)
