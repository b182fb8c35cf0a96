"""
What a worker process runs: the plugin's own service, built from the same
command line as its supervisor's, with every listener adopting the socket
the supervisor bound instead of binding one; its log events go to the
supervisor, and it says when it serves.
"""

from __future__ import annotations

import importlib
import signal
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from twisted.application.service import IService
from twisted.internet.error import ReactorNotRunning
from twisted.internet.process import ProcessReader
from twisted.logger import Logger, globalLogBeginner
from twisted.python.failure import Failure

from twisted_services.server.listeners import Listener, StartupFailed, startupExit
from twisted_services.server.metrics.exposition import MetricsExporter
from twisted_services.server.tree import walk
from twisted_services.server.workers.channel import (
    MAX_REQUEST,
    RETIRE,
    LineSplitter,
    Reporter,
    encodeMetrics,
    parseMetricsRequest,
)
from twisted_services.server.workers.metrics import FamilyData, familyData
from twisted_services.server.workers.pool import RETIRE_GRACE


class Stopper:
    """
    Stops the worker's reactor once, however many times it is asked: the
    supervisor's SIGTERM, systemd's own to the whole control group, a
    terminal's SIGINT to the whole process group and the end of the
    supervisor's pipe may all come at once.
    """

    _log = Logger()

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self.stopping = False

    def stop(self, why: str) -> None:
        """Stop the reactor, unless stopping already; log C{why}."""
        if self.stopping:
            return
        self.stopping = True
        self._log.info("worker: {why}; stopping", why=why)
        try:
            self._reactor.stop()
        except ReactorNotRunning:
            pass

    def install(self) -> None:
        """Stop on SIGTERM and SIGINT, in the reactor's thread."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._received)

    def _received(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self._reactor.callFromThread(self.stop, f"received {name}")


class SupervisorLink:
    """
    The worker's end of the supervisor's pipe (its standard input): on
    L{RETIRE} it stops accepting, serves what it has accepted for
    C{grace} seconds, then stops; at the end of the pipe (the supervisor is
    gone) it stops at once, so that it does not hold the ports alone; a
    metrics request it answers on C{reporter} with what C{metrics} returns.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        listeners: Sequence[Listener],
        stopper: Stopper,
        grace: float = RETIRE_GRACE,
        reporter: Reporter | None = None,
        metrics: Callable[[], list[FamilyData]] = list,
    ) -> None:
        self._reactor = reactor
        self._stopper = stopper
        self._listeners = listeners
        self._grace = grace
        self._reporter = reporter
        self._metrics = metrics
        self._lines = LineSplitter(MAX_REQUEST)
        self.retired = False

    def childDataReceived(self, name: str, data: bytes) -> None:
        """What L{ProcessReader} reads from the pipe."""
        for line in self._lines.feed(data):
            requestId = parseMetricsRequest(line)
            if requestId is not None and self._reporter is not None:
                self._reporter.send(encodeMetrics(requestId, self._metrics()))
            elif line == RETIRE.rstrip() and not self.retired:
                self.retire()

    def childConnectionLost(self, name: str, reason: Failure) -> None:
        """The supervisor closed the pipe, or died."""
        self._stopper.stop("the supervisor is gone")

    def retire(self) -> None:
        """Stop accepting now, and stop after the grace period."""
        self.retired = True
        self._log.info("worker: retiring; no longer accepting")
        for listener in self._listeners:
            listener.stopService()
        self._reactor.callLater(self._grace, self._stopper.stop, "retired")


def adoptListeners(
    service: IService, expected: Sequence[Sequence[Any]]
) -> list[Listener]:
    """
    Make every listener of C{service} adopt its socket from the supervisor:
    C{expected} lists C{(serviceName, description, fd)} in the order the
    supervisor found them, which building the same service gives here too.

    @raise SystemExit: if the listeners are not the supervisor's.
    """
    listeners = [s for s in walk(service) if isinstance(s, Listener)]
    found = [(listener.serviceName, listener.description) for listener in listeners]
    wanted = [(name, description) for name, description, _ in expected]
    if found != wanted:
        raise startupExit(
            f"worker: listeners {found} are not the supervisor's {wanted}"
        )
    for listener, (_, _, fd) in zip(listeners, expected, strict=True):
        listener.inherit(fd)
    return listeners


def workerMetrics(service: IService) -> Callable[[], list[FamilyData]]:
    """
    What a worker answers its supervisor's metrics requests with: its
    exporter's families. The exporter's listeners are taken out of the
    tree, unbound: the supervisor serves C{--metrics} (see
    L{twisted_services.server.workers.metrics}).
    """
    exporters = [s for s in walk(service) if isinstance(s, MetricsExporter)]
    for exporter in exporters:
        for listener in list(exporter):
            listener.disownServiceParent()
    if not exporters:
        return list
    registry = exporters[0].registry
    return lambda: familyData(registry.collect())


def runWorker(spec: dict[str, Any], reactor: Any = None) -> int:
    """Serve as SPEC says until stopped; the process's exit status."""
    reporter = Reporter(spec["report"])
    globalLogBeginner.beginLoggingTo([reporter], redirectStandardIO=False)
    log = Logger(namespace="twisted_services.server.workers.worker")
    if reactor is None:
        from twisted.internet import reactor
    try:
        tap = importlib.import_module(spec["tap"])
        options = tap.Options()
        options.parseOptions(spec["argv"])
        options["workers"] = 1
        service = tap.makeService(options, reactor)
        metrics = workerMetrics(service)
        listeners = adoptListeners(service, spec["listeners"])
        service.privilegedStartService()
    except StartupFailed:
        return 1  # already logged, as a single process logs it
    except SystemExit as error:
        log.critical("worker: cannot start: {reason}", reason=str(error.code))
        return 1
    except Exception:
        log.failure("worker: cannot start")
        return 1
    stopper = Stopper(reactor)
    stopper.install()
    link = SupervisorLink(
        reactor, listeners, stopper, reporter=reporter, metrics=metrics
    )
    ProcessReader(reactor, link, "supervisor", 0)
    reactor.callWhenRunning(service.startService)
    reactor.callWhenRunning(reporter.serving)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run(installSignalHandlers=False)
    return 0
