"""
The services that listen: one L{Listener} per endpoint description or UDP
port, each logging the address it actually bound (so C{--port 0} is usable
by tests and scripts), and L{serviceWith}, which puts a plugin's services
together under one parent with the process-level ones after them (SIGHUP
handling, and systemd's readiness notifier last).

A listener that cannot be parsed or bound ends the process with a one-line
error and exit status 1 instead of a traceback, in daemon mode too (see
L{StartupFailed}).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence

from twisted.application.service import (
    IService,
    MultiService,
    Service,
)
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.internet.error import CannotListenError
from twisted.internet.fdesc import setNonBlocking
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IReactorUDP,
)
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from twisted_services.core.addresses import describeAddress
from twisted_services.core.twistedprivate import (
    splitDescription,
    sslContextFactoryOf,
    unixPathOf,
)
from twisted_services.server.dualstack import (
    WILDCARD,
    DualStackServerEndpoint,
    hostHasIPv6,
    listenDualStackUDP,
)
from twisted_services.server.hangup import HangupService
from twisted_services.server.heap import StartupHeapFreezer
from twisted_services.server.limits import reserveDescriptors
from twisted_services.server.options import DEFAULT_BACKLOG
from twisted_services.server.tls import prepareTLS
from twisted_services.server.tree import rootOf, walk
from twisted_services.systemd.journal import errorLine
from twisted_services.systemd.notify import SystemdNotifier
from twisted_services.systemd.sockets import adoptDatagram, missingSocket


class StartupFailed(SystemExit, Exception):
    """
    A listener could not bind at start-up: the process ends with status 1.

    A L{SystemExit}, so that C{twistd -n} ends without a traceback (the
    reason is already logged), and an L{Exception} too, because daemon-mode
    twistd catches only C{Exception} around start-up: that is how the
    failure reaches its status pipe (the launching command then prints it
    and exits 1) and the pidfile is removed. A bare C{SystemExit} leaves the
    launching command waiting forever on a pipe it holds open itself.
    """

    # twistd sends "ClassName: message", cut at 100 bytes, down the status
    # pipe: our module path in front would crowd the message out.
    __module__ = "builtins"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = 1


def failureReason(failure: Failure) -> str:
    """
    Why a listen failed, short: the socket error alone for a port in use
    (C{Address already in use}), not Twisted's C{Couldn't listen on any:N:
    [Errno 98] ...}, so that it fits twistd's 100-byte status pipe.
    """
    error = failure.value
    if isinstance(error, CannotListenError) and isinstance(error.socketError, OSError):
        return error.socketError.strerror or str(error.socketError)
    return failure.getErrorMessage() or failure.type.__name__


Adopt = Callable[[int], IListeningPort]


class Listener(Service):
    """
    Listens while running, through a C{listen} callable that returns the
    port (or a L{Deferred} of it), and logs the address bound.

    A listener that knows how to C{adopt} a descriptor can be told to
    L{inherit} one instead: a worker process serves, that way, the very
    socket its supervisor bound (see L{twisted_services.server.workers}).
    """

    _log = Logger()

    def __init__(
        self,
        serviceName: str,
        description: str,
        listen: Callable[[], IListeningPort | Deferred[IListeningPort]],
        reactor: IReactorCore,
        adopt: Adopt | None = None,
    ) -> None:
        """
        @param adopt: serves, given the descriptor of a bound socket of the
            kind C{listen} would bind, on that socket as C{listen} would on
            its own; L{None} if the listener cannot.
        """
        self._reactor = reactor
        self.serviceName = serviceName
        self.description = description
        self._listen = listen
        self.adopt = adopt
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort | None] | None = None

    def inherit(self, fd: int) -> None:
        """
        Serve the bound socket C{fd} from now on, instead of binding one.

        @raise ValueError: if this listener cannot adopt a socket.
        """
        adopt = self.adopt
        if adopt is None:
            raise ValueError(f"{self.description} cannot adopt a socket")
        self._listen = lambda: adopt(fd)

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        failedNow: list[Failure] = []

        def failed(failure: Failure) -> None:
            if self._listening is None:
                failedNow.append(failure)
            else:
                self._failedLater(failure)

        # Twisted's server endpoints listen synchronously, so a port in use
        # can end startup here with a one-line message instead of a traceback.
        listening = maybeDeferred(self._listen).addCallbacks(self._bound, failed)
        if failedNow:
            raise StartupFailed(self._logCannotListen(failedNow[0]))
        self._listening = listening

    def startService(self) -> None:
        super().startService()
        if self._listening is None:
            self.privilegedStartService()

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        # Forget the last start, so that starting again listens again.
        self._listening = None
        port, self.port = self.port, None
        if port is not None:
            return maybeDeferred(port.stopListening)
        return None

    def _bound(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        self._log.info(
            "{service} listening on {address}",
            service=self.serviceName,
            address=describeAddress(port.getHost()),
        )
        return port

    def _failedLater(self, failure: Failure) -> None:
        self._logCannotListen(failure)
        self._reactor.stop()

    def _logCannotListen(self, failure: Failure) -> str:
        """Log one critical line saying why listening failed, and return it."""
        line = (
            f"{self.serviceName}: cannot listen on {self.description}: "
            f"{failureReason(failure)}"
        )
        # Not a "message" field: Twisted's legacy-log bridge overwrites that
        # key in the shared event, blanking the line for later observers.
        self._log.critical("{line}", line=line)
        return line


# Endpoint types whose descriptions take backlog=.
_BACKLOG_TYPES = {"tcp", "tcp6", "ssl", "unix"}


def streamListeners(
    serviceName: str,
    descriptions: Sequence[str],
    factory: IProtocolFactory,
    reactor: IReactorCore,
    backlog: int = DEFAULT_BACKLOG,
) -> list[IService]:
    """
    One L{Listener} per endpoint description, all serving C{factory}.

    @param backlog: the listen backlog of every listener whose description
        does not give its own C{backlog=} (the kernel caps it at
        C{net.core.somaxconn}).

    @raise SystemExit: with a one-line message, for a description that Twisted
        cannot parse, or a TLS one whose key and certificate cannot be read,
        do not match, or are refused by OpenSSL.
    """
    listeners: list[IService] = []
    for description in descriptions:
        try:
            listen, adopt = _listenCallable(description, factory, reactor, backlog)
        except Exception as error:
            # Endpoint parsers raise anything from ValueError to SSL errors.
            raise startupExit(
                f"{serviceName}: bad listen description {description!r}: "
                f"{_parseError(description, error)}"
            ) from None
        listeners.append(Listener(serviceName, description, listen, reactor, adopt))
    return listeners


def _listenCallable(
    description: str,
    factory: IProtocolFactory,
    reactor: IReactorCore,
    backlog: int,
) -> tuple[Callable[[], Deferred[IListeningPort]], Adopt | None]:
    """
    What a L{Listener} calls to listen on C{description}, and to adopt a
    socket bound so (L{None} for a UNIX socket: Twisted's UNIX port removes
    its file when it stops, so one worker stopping would take the path away
    from all).
    """
    args, kwargs = splitDescription(description)
    kind = args[0] if args else ""
    if kind in _BACKLOG_TYPES and "backlog" not in kwargs:
        # Appended to the description, so Twisted parses it as it would one
        # the user gave; messages still quote the user's description.
        endpoint = serverFromString(reactor, f"{description}:backlog={backlog}")
    else:
        endpoint = serverFromString(reactor, description)
    prepareTLS(endpoint)

    def adopt(fd: int) -> IListeningPort:
        served = factory
        if isinstance(endpoint, SSL4ServerEndpoint):
            # What listenSSL does to the factory, done here for a socket
            # bound elsewhere.
            served = TLSMemoryBIOFactory(sslContextFactoryOf(endpoint), False, factory)
        return adoptStream(reactor, fd, served)

    if isinstance(endpoint, TCP6ServerEndpoint) and kwargs.get("interface") == WILDCARD:
        # IPv4 clients too, even where IPv6 sockets are IPv6-only by default.
        dualStack = DualStackServerEndpoint(
            reactor,
            int(kwargs.get("port", args[1])),
            int(kwargs.get("backlog", backlog)),
        )
        return (lambda: dualStack.listen(factory)), adopt
    if isinstance(endpoint, UNIXServerEndpoint):
        path = unixPathOf(endpoint)

        def listenUNIX() -> Deferred[IListeningPort]:
            directory = os.path.dirname(path)
            if directory and not os.path.isdir(directory):
                # Twisted's lock file would fail first, with ENOENT naming
                # the lock file and a pid: say what is really missing.
                raise FileNotFoundError(f"directory {directory} does not exist")
            return endpoint.listen(factory)

        return listenUNIX, None
    return (lambda: endpoint.listen(factory)), adopt


def adoptStream(
    reactor: IReactorCore, fd: int, factory: IProtocolFactory
) -> IListeningPort:
    """
    Serve C{factory} on the listening TCP socket C{fd}, which stays open and
    the caller's (the reactor serves a duplicate of it).

    @raise ValueError: if C{fd} is not a listening IPv4 or IPv6 stream socket.
    """
    with socket.socket(fileno=os.dup(fd)) as probe:
        family, kind = probe.family, probe.type
    if family not in (socket.AF_INET, socket.AF_INET6) or kind != socket.SOCK_STREAM:
        raise ValueError(f"descriptor {fd} is not a TCP socket")
    setNonBlocking(fd)
    os.set_inheritable(fd, False)
    port = reactor.adoptStreamPort(fd, family, factory)  # type: ignore[attr-defined]
    acceptOneAtATime(port)
    return port


def acceptOneAtATime(port: IListeningPort) -> None:
    """
    Make C{port} accept one connection each time the reactor finds it
    readable, where Twisted accepts as many as 100 (adapting to the load).

    For a socket several processes serve: every one of them is woken by a
    new connection, and the first to run would take a whole burst (wrk's 50
    connections all went to one of two workers in half the runs), leaving
    the others idle for as long as those connections last. One at a time,
    the burst is shared (28/22 in every run).
    """
    if not hasattr(port, "numberAccepts"):
        return
    doRead = port.doRead  # type: ignore[attr-defined]

    def doReadOne() -> object:
        port.numberAccepts = 1  # type: ignore[attr-defined]
        return doRead()

    port.doRead = doReadOne  # type: ignore[attr-defined]


def startupExit(message: str) -> SystemExit:
    """
    The exit for a start-up error found while the service is built, before
    any log observer runs: C{message} goes to standard error, as an error
    (C{<3>}) for journald under systemd, and the status is 1.
    """
    return SystemExit(errorLine(message))


def _parseError(description: str, error: Exception) -> str:
    """What is wrong with C{description}, given what its parser raised."""
    # The systemd: parser looks its name= up in the passed sockets, and says
    # only KeyError('name') when it is not there.
    if isinstance(error, KeyError) and description.startswith("systemd:"):
        return missingSocket(str(error.args[0]))
    return str(error) or type(error).__name__


def serviceWith(
    children: Sequence[IService], notify: bool = True, connections: int = 0
) -> MultiService:
    """
    A L{MultiService} that starts and stops C{children} together.

    @param notify: the process-level services too, once per process: a
        L{HangupService} (SIGHUP reopens log files), a
        L{StartupHeapFreezer} and, last, a L{SystemdNotifier}, so that under
        systemd C{READY=1} is sent once every child has started (and
        C{STOPPING=1} before any stops); and the descriptor limit is raised
        for C{connections}. A service nested
        in another one that has them passes C{False}.
    @param connections: how many connections the process may hold at once
        (the sum of its C{--max-connections}).
    """
    parent = MultiService()
    for child in children:
        child.setServiceParent(parent)
    if notify:
        reserveDescriptors(connections)
        HangupService().setServiceParent(parent)
        StartupHeapFreezer().setServiceParent(parent)
        SystemdNotifier(describe=describeListeners).setServiceParent(parent)
    return parent


def datagramListener(
    serviceName: str,
    port: int,
    interface: str,
    protocol: DatagramProtocol,
    reactor: IReactorUDP,
) -> Listener:
    """
    A L{Listener} for UDP C{port} on C{interface}: C{""} for the default,
    which is C{"::"} when the host has IPv6, all IPv4 addresses otherwise;
    C{"::"} serves IPv4 senders too (IPv4-mapped), C{"0.0.0.0"} IPv4 only.
    UDP has no endpoint descriptions, so this is the datagram counterpart of
    L{streamListeners}.
    """
    if not interface and hostHasIPv6():
        interface = WILDCARD
    if interface == WILDCARD:

        def listen() -> IListeningPort:
            return listenDualStackUDP(reactor, port, protocol)

    else:

        def listen() -> IListeningPort:
            return reactor.listenUDP(port, protocol, interface=interface)

    return Listener(
        serviceName,
        f"udp:{port}" + (f":interface={interface}" if interface else ""),
        listen,
        reactor,
        lambda fd: adoptDatagram(reactor, fd, protocol),  # type: ignore[arg-type]
    )


def describeListeners(service: IService) -> str:
    """
    One line naming every bound listener in the whole tree C{service} belongs
    to, e.g. C{"echo on tcp:0.0.0.0:8888, chat on tcp:0.0.0.0:12345"}.
    """
    listening = [
        f"{child.serviceName} on {describeAddress(child.port.getHost())}"
        for child in walk(rootOf(service))
        if isinstance(child, Listener) and child.port is not None
    ]
    return "serving " + ", ".join(listening) if listening else "running"
