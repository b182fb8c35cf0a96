"""
C{twistd http}: options and service for L{twisted_services.http.protocol}.
"""

from __future__ import annotations

from twisted.application.service import IService, MultiService
from twisted.internet.interfaces import IReactorTCP

from twisted_services.http.accesslog import AccessLog
from twisted_services.http.metrics import HTTPCollector
from twisted_services.http.protocol import (
    BODY_TIMEOUT,
    SHUTDOWN_TIMEOUT,
    HTTPFactory,
)
from twisted_services.server.connections import ShutdownService
from twisted_services.server.listeners import serviceWith, streamListeners
from twisted_services.server.metrics.plugin import metricsServices
from twisted_services.server.options import (
    ListenOptions,
    idleTimeoutParameter,
    maxConnectionsParameter,
    nonNegativeFloat,
    nonNegativeInt,
    positiveFloat,
    positiveInt,
)
from twisted_services.server.workers.options import WorkerOptions, supervising


class Options(WorkerOptions, ListenOptions):
    """Options for C{twistd http}."""

    synopsis = "[--port N | --listen DESCRIPTION ...] [options]"
    longdesc = (
        "Minimal, fast HTTP/1.1 responder: GET / answers with a message, "
        "GET /health with counters as JSON, GET /request with the request's "
        "own line and headers. Default: TCP port 8080 on :: (IPv6 and IPv4)."
    )
    defaultPort = 8080

    optFlags = [
        [
            "no-access-log",
            None,
            "Do not log each request.",
        ],
    ]

    optParameters = [
        ["message", None, "Hello World", "The body GET / answers with."],
        [
            "access-log",
            None,
            None,
            "Log each request (Combined Log Format) to this file, reopened "
            "on SIGHUP for log rotation, instead of to stdout.",
        ],
        [
            "max-body",
            None,
            1024 * 1024,
            "Largest request body read (and discarded), in bytes; a larger "
            "one gets 413, whatever its method and path, as does a chunked "
            "body over twice this plus 64 KiB on the wire.",
            nonNegativeInt,
        ],
        [
            "max-header-size",
            None,
            16 * 1024,
            "Largest request line and headers, in bytes; a larger head gets 431.",
            positiveInt,
        ],
        [
            "header-timeout",
            None,
            10.0,
            "Seconds from a request's first byte to the end of its headers, "
            "however slowly they arrive; a slower head gets 408.",
            positiveFloat,
        ],
        [
            "body-timeout",
            None,
            BODY_TIMEOUT,
            "Seconds from the end of a request's headers to the end of its "
            "body, however slowly it arrives; a slower body gets 408.",
            positiveFloat,
        ],
        idleTimeoutParameter(60.0),
        maxConnectionsParameter("more get 503"),
        [
            "shutdown-timeout",
            None,
            SHUTDOWN_TIMEOUT,
            "On stopping, seconds to let requests under way be answered and "
            "their responses sent before the connections left are aborted.",
            nonNegativeFloat,
        ],
    ]


def makeService(
    options: Options, reactor: IReactorTCP | None = None, notify: bool = True
) -> MultiService:
    """
    The http service on every listener C{options} names. Stopping it stops
    the listeners, then lets the responses under way finish.
    """
    if reactor is None:
        from twisted.internet import reactor
    if supervising(options):
        # Imported only for workers: it costs any other start ~50 ms.
        from twisted_services.server.workers.supervisor import supervisorService

        return supervisorService(options, reactor)
    accessLog = None
    if not options["no-access-log"]:
        accessLog = AccessLog(reactor, options["access-log"])
    factory = HTTPFactory(
        reactor,
        message=options["message"],
        maxBody=options["max-body"],
        maxHeaderSize=options["max-header-size"],
        headerTimeout=options["header-timeout"],
        bodyTimeout=options["body-timeout"],
        idleTimeout=options["idle-timeout"],
        maxConnections=options["max-connections"],
        accessLog=accessLog,
        shutdownTimeout=options["shutdown-timeout"],
    )
    listeners = streamListeners(
        "http", options["listen"], factory, reactor, options["backlog"]
    )
    # First, so that MultiService, which stops its children last to first,
    # drains the connections once no listener can accept anyone new.
    # The access log starts before the listeners; it closes after the
    # reactor has shut down, once the connections have drained.
    logs: list[IService] = [] if accessLog is None else [accessLog]
    metrics = metricsServices(
        HTTPCollector(factory.counters, factory.connections),
        options["metrics"],
        reactor,
    )
    return serviceWith(
        [ShutdownService(factory.connections), *logs, *listeners, *metrics],
        notify=notify,
        connections=options["max-connections"],
    )
