"""
Sockets passed by systemd socket activation (C{LISTEN_FDS}), for services
that adopt a datagram socket instead of binding their own.

systemd hands over sockets as descriptors 3, 4, ... and describes them in the
environment: C{LISTEN_PID} (the process they are for), C{LISTEN_FDS} (how
many) and C{LISTEN_FDNAMES} (their C{FileDescriptorName=}s, colon-separated).
Importing C{twisted.internet.endpoints} reads that environment once, for the
C{systemd:} endpoint parser, and deletes C{LISTEN_PID} and C{LISTEN_FDS} so
that no second reader adopts the same socket. So this module does not read
C{os.environ}: it uses the parser's own reading, and a socket named or
numbered here is the socket C{systemd:name=...} or C{systemd:index=...} would
adopt.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from twisted.internet.fdesc import setNonBlocking
from twisted.internet.interfaces import IListeningPort, IReactorSocket
from twisted.internet.protocol import DatagramProtocol
from twisted.python.systemd import ListenFDs

from twisted_services.core.twistedprivate import systemdListenFDs


class NoSuchSocket(LookupError):
    """systemd passed no socket by the name or index asked for."""


def inheritedSockets() -> ListenFDs:
    """
    The sockets systemd passed to this process, as the C{systemd:} endpoint
    parser sees them.

    Read on each call, not at import, so that tests can replace it.
    """
    return systemdListenFDs()


def describeInherited(listenFDs: ListenFDs) -> str:
    """What systemd passed, for error messages: C{"index 0: temperature, index 1"}."""
    descriptors = listenFDs.inheritedDescriptors()
    if not descriptors:
        return "none"
    names = {fd: name for name, fd in listenFDs.inheritedNamedDescriptors().items()}
    return ", ".join(
        f"index {index}: {names[fd]}" if fd in names else f"index {index}"
        for index, fd in enumerate(descriptors)
    )


def missingSocket(name: str, environ: Mapping[str, str] | None = None) -> str:
    """
    Why a C{systemd:name=NAME} description has no socket: the name was not
    among those systemd passed, which C{LISTEN_FDNAMES} lists.
    """
    if environ is None:
        environ = os.environ
    names = environ.get("LISTEN_FDNAMES")
    passed = f"LISTEN_FDNAMES={names}" if names is not None else "LISTEN_FDNAMES unset"
    return f"no socket named {name!r} was passed by systemd; {passed}"


def descriptorFor(spec: str, listenFDs: ListenFDs | None = None) -> int:
    """
    The descriptor of the socket systemd passed as C{spec}: a name from
    C{LISTEN_FDNAMES} (a socket unit's C{FileDescriptorName=}), or else a
    decimal index into the passed sockets (C{0} for the first).

    @param listenFDs: the passed sockets; by default L{inheritedSockets}.

    @raise NoSuchSocket: with a message saying what systemd did pass.
    """
    if listenFDs is None:
        listenFDs = inheritedSockets()
    named = listenFDs.inheritedNamedDescriptors()
    if spec in named:
        return named[spec]
    descriptors = listenFDs.inheritedDescriptors()
    # isascii: str.isdigit alone also accepts digits such as "²".
    if spec.isascii() and spec.isdigit() and int(spec) < len(descriptors):
        return descriptors[int(spec)]
    if not descriptors:
        raise NoSuchSocket(
            "systemd passed no sockets (LISTEN_FDS and LISTEN_PID unset or for "
            "another process, or LISTEN_FDNAMES not naming every socket)"
        )
    raise NoSuchSocket(
        f"systemd passed no socket named or numbered {spec!r} "
        f"(passed: {describeInherited(listenFDs)})"
    )


def adoptDatagram(
    reactor: IReactorSocket,
    fd: int,
    protocol: DatagramProtocol,
    maxPacketSize: int = 8192,
) -> IListeningPort:
    """
    Serve C{protocol} on the bound UDP socket C{fd}, as C{listenUDP} would on
    a port it bound itself.

    The socket is made non-blocking, since systemd passes blocking sockets
    and a blocking one would stall the reactor in C{recvfrom}, and
    close-on-exec, so child processes do not hold the port open. C{fd} stays
    open and the caller's: the reactor serves a duplicate of it, so the same
    socket can be adopted again after the port stops listening.

    @raise ValueError: if C{fd} is not an IPv4 or IPv6 datagram socket.
    @raise OSError: if C{fd} is not an open socket at all.
    """
    # socket() with a fileno asks the kernel for the family and type; the
    # duplicate keeps the socket object from closing the caller's descriptor.
    with socket.socket(fileno=os.dup(fd)) as probe:
        family, kind = probe.family, probe.type
    if family not in (socket.AF_INET, socket.AF_INET6) or kind != socket.SOCK_DGRAM:
        raise ValueError(
            f"descriptor {fd} is not a UDP socket ({_name(family)}, {_name(kind)})"
        )
    setNonBlocking(fd)
    os.set_inheritable(fd, False)
    return reactor.adoptDatagramPort(fd, family, protocol, maxPacketSize)


def _name(constant: int) -> str:
    """C{AF_UNIX} for an enum member; the number for one Python does not know."""
    return getattr(constant, "name", str(constant))
