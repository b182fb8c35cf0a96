"""
The supervisor: what C{twistd PLUGIN --workers N} runs instead of the
service itself. It builds the plugin's own single-process service only to
take its listeners, binds (or adopts from systemd) each socket once, never
accepts on them, and hands them to N worker processes started as
C{python -m twisted_services.server.workers.worker}, each of which parses
the same command line and serves those sockets (see L{workerside}).

Sockets are passed as descriptors (C{spawnProcess(childFDs=...)}) rather
than bound again by every worker with C{SO_REUSEPORT}: one socket, one
accept queue, shared by every generation of workers, so a reload drops
nothing queued, and sockets systemd passed (or C{--port 0}) work as they
are. The README's "Workers" section has the figures.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.logger import Logger
from twisted.python import usage

from twisted_services.server.hangup import HangupService
from twisted_services.server.listeners import (
    Listener,
    StartupFailed,
    describeListeners,
    startupExit,
)
from twisted_services.server.metrics.exposition import MetricsExporter
from twisted_services.server.tree import walk
from twisted_services.server.workers.metrics import (
    WorkersMetrics,
    WorkersMetricsResource,
    supervisorFamilies,
)
from twisted_services.server.workers.options import oneProcess
from twisted_services.server.workers.pool import WorkerPool, WorkerProcess
from twisted_services.systemd.notify import SystemdNotifier
from twisted_services.systemd.sockets import inheritedSockets

WORKER_MODULE = "twisted_services.server.workers.worker"
# How long a worker may take to drain when its plugin has no
# --shutdown-timeout of its own (echo and temperature close at once).
DEFAULT_STOP_TIMEOUT = 5.0
# What a worker must not inherit: only the supervisor talks to systemd, and
# the worker is told about passed sockets afresh.
_SUPERVISOR_ONLY = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
)


def stopTimeout(options: Mapping[str, Any]) -> float:
    """
    The longest C{--shutdown-timeout} of the plugin (or, for the combined
    plugin, of its services), else L{DEFAULT_STOP_TIMEOUT}.
    """
    found = [options.get("shutdown-timeout")]
    services = options.get("services")
    if isinstance(services, Mapping):
        found += [parsed.get("shutdown-timeout") for parsed in services.values()]
    return max((float(f) for f in found if f is not None), default=DEFAULT_STOP_TIMEOUT)


def workerEnvironment(
    environ: Mapping[str, str], systemdNames: Sequence[str]
) -> dict[str, str]:
    """
    A worker's environment: the supervisor's, without systemd's notify and
    watchdog variables, and with C{LISTEN_FDS}/C{LISTEN_FDNAMES} for the
    sockets systemd passed, which the worker finds at the same descriptors
    (it sets C{LISTEN_PID} to its own pid itself).
    """
    env = {k: v for k, v in environ.items() if k not in _SUPERVISOR_ONLY}
    if systemdNames:
        env["LISTEN_FDS"] = str(len(systemdNames))
        env["LISTEN_FDNAMES"] = ":".join(systemdNames)
    return env


class Launcher:
    """
    Starts a worker process: the plugin's command line, the listening
    sockets at known descriptors, a report pipe and a pipe on its standard
    input.

    The worker's descriptors: 0 the supervisor's pipe, 1 and 2 the
    supervisor's own stdout and stderr (the http access log writes to
    stdout), 3 and up the sockets systemd passed (as systemd numbers them,
    so C{systemd:} descriptions parse in the worker as here), then the
    report pipe, then one descriptor a listener.
    """

    def __init__(
        self,
        reactor: Any,
        tapModule: str,
        argv: Sequence[str],
        listeners: Sequence[Listener],
        systemdFDs: Sequence[int] = (),
        systemdNames: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
        executable: str = sys.executable,
    ) -> None:
        self._reactor = reactor
        self._tapModule = tapModule
        self._argv = list(argv)
        self._listeners = listeners
        self._systemdFDs = list(systemdFDs)
        self._env = workerEnvironment(
            os.environ if environ is None else environ, systemdNames
        )
        self._executable = executable
        self.reportFD = 3 + len(self._systemdFDs)

    def childFDs(self) -> dict[int, int | str]:
        """The worker's descriptors, as C{spawnProcess} takes them."""
        fds: dict[int, int | str] = {0: "w", 1: 1, 2: 2, self.reportFD: "r"}
        for index, fd in enumerate(self._systemdFDs):
            fds[3 + index] = fd
        for index, listener in enumerate(self._listeners):
            assert listener.port is not None
            fds[self.reportFD + 1 + index] = listener.port.fileno()  # type: ignore[attr-defined]
        return fds

    def spec(self, worker: WorkerProcess) -> dict[str, Any]:
        """What the worker is told on its command line."""
        return {
            "tap": self._tapModule,
            "argv": self._argv,
            "slot": worker.slot,
            "generation": worker.generation,
            "report": self.reportFD,
            "listeners": [
                [listener.serviceName, listener.description, self.reportFD + 1 + i]
                for i, listener in enumerate(self._listeners)
            ],
        }

    def __call__(self, worker: WorkerProcess) -> None:
        arguments = [
            self._executable,
            "-m",
            WORKER_MODULE,
            json.dumps(self.spec(worker)),
        ]
        self._reactor.spawnProcess(
            worker,
            self._executable,
            arguments,
            env=self._env,
            childFDs=self.childFDs(),
        )


class HoldSockets(Service):
    """
    The supervisor's listeners stay bound but never accept: every
    connection goes to a worker. Started after them, it stops their
    reading, and refuses a UNIX socket systemd passed
    (C{systemd:domain=UNIX}), which workers cannot share.
    """

    _log = Logger()

    def __init__(self, listeners: Sequence[Listener]) -> None:
        self._listeners = listeners
        self._held = False

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        for listener in self._listeners:
            port = listener.port
            if port is None:
                continue
            fd = port.fileno()  # type: ignore[attr-defined]
            with socket.socket(fileno=os.dup(fd)) as probe:
                family = probe.family
            if family == socket.AF_UNIX:
                line = (
                    f"{listener.serviceName}: --workers: {listener.description} "
                    "is a UNIX socket, which worker processes cannot share"
                )
                self._log.critical("{line}", line=line)
                raise StartupFailed(line)
            port.stopReading()  # type: ignore[attr-defined]
        self._held = True

    def startService(self) -> None:
        super().startService()
        if not self._held:
            self.privilegedStartService()


class SupervisorNotifier(SystemdNotifier):
    """
    systemd's notifier for a supervisor: C{READY=1} once every worker
    serves, C{STATUS=} updated as workers come and go, and C{RELOADING=1}
    then C{READY=1} around a reload. The watchdog is the supervisor's.
    """

    def __init__(self, pool: WorkerPool, **kwargs: Any) -> None:
        super().__init__(describe=self._summary, **kwargs)
        self._pool = pool
        pool.observer = self

    def _summary(self, service: IService) -> str:
        return f"{describeListeners(service)}; {self._pool.status()}"

    def _ready(self, interval: float | None) -> None:
        ready = super()._ready
        self._pool.whenServing().addCallback(lambda _: ready(interval))

    def statusChanged(self, status: str) -> None:
        if self.status is not None:
            self.status = self._summary(self)
            self._send(f"STATUS={self.status}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS={self._pool.status()}")

    def reloaded(self) -> None:
        self.status = self._summary(self)
        self._send(f"READY=1\nSTATUS={self.status}")


class SupervisorService(MultiService):
    """
    The supervisor's tree. Stopping it stops the workers first, and closes
    the listening sockets only once they are gone.
    """

    def __init__(self, listeners: Sequence[Listener], others: Sequence[IService]):
        super().__init__()
        self._listeners = list(listeners)
        self._others = list(others)
        for child in [*listeners, *others]:
            child.setServiceParent(self)

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        others = [maybeDeferred(s.stopService) for s in reversed(self._others)]

        def closeSockets(_: object) -> Deferred[Any]:
            return DeferredList([maybeDeferred(s.stopService) for s in self._listeners])

        return (
            DeferredList(others).addCallback(closeSockets).addCallback(lambda _: None)
        )


def _exitWithError() -> None:
    """After the reactor has shut down: exit 1, as a crashed service would."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def systemdPassed() -> tuple[list[int], list[str]]:
    """The sockets systemd passed to this process, and their names."""
    listenFDs = inheritedSockets()
    descriptors = listenFDs.inheritedDescriptors()
    names = {fd: name for name, fd in listenFDs.inheritedNamedDescriptors().items()}
    # A socket without a name gets systemd's default one.
    return list(descriptors), [names.get(fd, "unknown") for fd in descriptors]


def supervisorService(options: usage.Options, reactor: Any = None) -> MultiService:
    """
    The supervisor for C{options}, a plugin's options with C{--workers}
    above 1: the plugin's own listeners, bound here, and a L{WorkerPool}.

    @raise SystemExit: with a one-line message, as the plugin itself would
        (a bad listen description), or for a listener that cannot be shared
        with workers (a UNIX socket).
    """
    if reactor is None:
        from twisted.internet import reactor
    tapName = type(options).__module__
    tap = sys.modules[tapName]
    serviceName = tapName.split(".")[-2]
    # The service a worker runs, built here only for its listeners: the
    # descriptions, their parsing and their errors are the plugin's own.
    single = tap.makeService(oneProcess(options), reactor)
    # --metrics is the supervisor's own, answered from every worker's.
    exporters = [s for s in walk(single) if isinstance(s, MetricsExporter)]
    listeners = [
        s
        for s in walk(single)
        if isinstance(s, Listener) and not isinstance(s.parent, MetricsExporter)
    ]
    for listener in listeners:
        if listener.adopt is None:
            raise startupExit(
                f"{listener.serviceName}: --workers: {listener.description} cannot "
                "be shared with worker processes (a UNIX socket's file goes with "
                "the first worker that stops); run it in a single process"
            )
        listener.disownServiceParent()
    systemdFDs, systemdNames = systemdPassed()
    launcher = Launcher(
        reactor, tapName, options.argv, listeners, systemdFDs, systemdNames
    )

    def fatal() -> None:
        reactor.addSystemEventTrigger("after", "shutdown", _exitWithError)
        reactor.stop()

    pool = WorkerPool(
        serviceName,
        options["workers"],
        launcher,
        reactor,
        stopTimeout(options),
        fatal,
        reportFD=launcher.reportFD,
    )
    merged = WorkersMetricsResource(WorkersMetrics(pool, reactor, supervisorFamilies()))
    metrics = [
        MetricsExporter(exporter.descriptions, reactor, merged)
        for exporter in exporters
    ]
    return SupervisorService(
        listeners,
        [
            *metrics,
            HoldSockets(listeners),
            pool,
            HangupService(),
            SupervisorNotifier(pool),
        ],
    )
