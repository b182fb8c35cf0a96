"""
C{twistd temperature}: options and service for L{twisted_services.temperature.protocol}.

UDP has no endpoint descriptions, so, as in C{twisted/names/tap.py}, the
options are a port and an interface rather than C{--listen}; a socket passed
by systemd is named with C{--systemd-socket} instead.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorSocket, IReactorUDP

from twisted_services.server.listeners import (
    Listener,
    datagramListener,
    serviceWith,
    startupExit,
)
from twisted_services.server.metrics.plugin import metricsServices
from twisted_services.server.options import (
    metricsParameter,
    portNumber,
    positiveFloat,
    positiveInt,
)
from twisted_services.server.udpguard import ReflectionGuard
from twisted_services.server.workers.options import WorkerOptions, supervising
from twisted_services.systemd.sockets import NoSuchSocket, adoptDatagram, descriptorFor
from twisted_services.temperature.metrics import TemperatureCollector
from twisted_services.temperature.protocol import TemperatureProtocol


class Options(WorkerOptions):
    """Options for C{twistd temperature}."""

    synopsis = "[--port N] [--interface ADDR] [--systemd-socket SPEC] [options]"
    longdesc = (
        "UDP temperature converter: a datagram such as 100, 98.6F or 0 K gets "
        "back 212 F, 37 C or -273.15 C. Safe against reflection: replies are "
        "at most 48 bytes, and oversize datagrams, reserved source ports and "
        "sources over their rate limit go unanswered. Default: UDP port 1314 "
        "on :: (IPv6 and IPv4)."
    )

    optParameters = [
        ["port", "p", 1314, "UDP port to listen on (0: any free port).", portNumber],
        [
            "interface",
            "i",
            None,
            "Address to listen on (default: ::, IPv6 and IPv4 on one socket, or "
            "all IPv4 interfaces on a host without IPv6; 0.0.0.0: IPv4 only)",
        ],
        [
            "rate",
            None,
            20.0,
            "Replies per second allowed to one source IP address (any port).",
            positiveFloat,
        ],
        [
            "burst",
            None,
            40,
            "Replies one source IP address may get at once.",
            positiveInt,
        ],
        [
            "max-sources",
            None,
            10000,
            "Rate-limit at most this many source addresses at once; the least "
            "recently seen is forgotten first.",
            positiveInt,
        ],
        [
            "systemd-socket",
            None,
            None,
            "Adopt the UDP socket systemd passed (socket activation) instead "
            "of binding one: SPEC is its FileDescriptorName= (from "
            "LISTEN_FDNAMES) or its index among the passed sockets, from 0. "
            "--port and --interface are then unused",
        ],
        metricsParameter(),
    ]


def makeService(
    options: Options,
    reactor: IReactorUDP | IReactorSocket | None = None,
    notify: bool = True,
) -> MultiService:
    """
    The temperature service on the port, or the systemd socket, that
    C{options} name.

    @raise SystemExit: with a one-line message, if C{--systemd-socket} names
        a socket systemd did not pass.
    """
    if reactor is None:
        from twisted.internet import reactor
    if supervising(options):
        # Imported only for workers: it costs any other start ~50 ms.
        from twisted_services.server.workers.supervisor import supervisorService

        return supervisorService(options, reactor)
    guard = ReflectionGuard(
        "temperature",
        reactor,
        options["rate"],
        options["burst"],
        options["max-sources"],
    )
    protocol = TemperatureProtocol(guard)
    spec = options["systemd-socket"]
    if spec is None:
        listener = datagramListener(
            "temperature",
            options["port"],
            options["interface"] or "",
            protocol,
            reactor,
        )
    else:
        try:
            fd = descriptorFor(spec)
        except NoSuchSocket as error:
            raise startupExit(
                f"temperature: bad --systemd-socket {spec!r}: {error}"
            ) from None
        listener = Listener(
            "temperature",
            f"systemd socket {spec!r} (descriptor {fd})",
            lambda: adoptDatagram(reactor, fd, protocol),
            reactor,
            lambda inherited: adoptDatagram(reactor, inherited, protocol),
        )
    metrics = metricsServices(
        TemperatureCollector(protocol.results, guard.counters),
        options["metrics"],
        reactor,
    )
    return serviceWith([listener, *metrics], notify=notify)
