"""
C{twistd echo}: options and service for L{twisted_services.echo.protocol}.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTCP

from twisted_services.echo.metrics import EchoCollector
from twisted_services.echo.protocol import DatagramEcho, EchoFactory
from twisted_services.server.connections import ShutdownService
from twisted_services.server.listeners import (
    datagramListener,
    serviceWith,
    streamListeners,
)
from twisted_services.server.metrics.plugin import metricsServices
from twisted_services.server.options import (
    ListenOptions,
    idleTimeoutParameter,
    maxConnectionsParameter,
    portNumber,
    positiveFloat,
    positiveInt,
)
from twisted_services.server.udpguard import ReflectionGuard
from twisted_services.server.workers.options import WorkerOptions, supervising


class Options(WorkerOptions, ListenOptions):
    """Options for C{twistd echo}."""

    synopsis = "[--port N | --listen DESCRIPTION ...] [options]"
    longdesc = (
        "Echo server (RFC 862): every byte a client sends comes back unchanged. "
        "Default: TCP port 8888 on :: (IPv6 and IPv4)."
    )
    defaultPort = 8888

    optParameters = [
        idleTimeoutParameter(300.0),
        maxConnectionsParameter("more are closed at once"),
        [
            "udp-port",
            None,
            None,
            "Also serve UDP echo on this port (on --interface, if given)",
            portNumber,
        ],
        [
            "udp-rate",
            None,
            20.0,
            "UDP: replies per second allowed to one source address.",
            positiveFloat,
        ],
        [
            "udp-burst",
            None,
            40,
            "UDP: replies one source address may get at once.",
            positiveInt,
        ],
    ]


def makeService(
    options: Options, reactor: IReactorTCP | None = None, notify: bool = True
) -> MultiService:
    """The echo service on every listener C{options} names."""
    if reactor is None:
        from twisted.internet import reactor
    if supervising(options):
        # Imported only for workers: it costs any other start ~50 ms.
        from twisted_services.server.workers.supervisor import supervisorService

        return supervisorService(options, reactor)
    factory = EchoFactory(
        reactor,
        idleTimeout=options["idle-timeout"],
        maxConnections=options["max-connections"],
    )
    listeners = streamListeners(
        "echo", options["listen"], factory, reactor, options["backlog"]
    )
    guard = None
    if options["udp-port"] is not None:
        guard = ReflectionGuard(
            "echo", reactor, options["udp-rate"], options["udp-burst"]
        )
        listeners.append(
            datagramListener(
                "echo",
                options["udp-port"],
                options["interface"] or "",
                DatagramEcho(guard),
                reactor,
            )
        )
    # First, so that MultiService, which stops its children last to first,
    # drains the connections once no listener can accept anyone new.
    metrics = metricsServices(
        EchoCollector(factory.connections, guard), options["metrics"], reactor
    )
    return serviceWith(
        [ShutdownService(factory.connections), *listeners, *metrics],
        notify=notify,
        connections=options["max-connections"],
    )
