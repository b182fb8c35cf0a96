"""
Supervision of worker processes: L{WorkerPool} keeps C{count} of them
serving, restarts one that dies (with exponential backoff), stops
restarting in a crash loop, replaces them all by a new generation on
reload without a moment with nobody accepting, and drains them all when
it stops.

How a worker is started is not its business: a C{launch} callable spawns
the process for a L{WorkerProcess} (the supervisor's uses
C{reactor.spawnProcess}; tests use fakes), so that all of this runs on a
L{Clock} in the tests.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_services.server.reopening import IReopenable
from twisted_services.server.workers.channel import (
    METRICS,
    RETIRE,
    LineSplitter,
    decodeReport,
    metricsRequest,
)

# A worker that dies is restarted after BACKOFF_BASE seconds, doubled for
# each death in a row of one that had served less than STABLE_AFTER seconds,
# up to BACKOFF_MAX.
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 30.0
# CRASH_LIMIT deaths within CRASH_WINDOW seconds, any workers: a crash loop.
CRASH_LIMIT = 5
CRASH_WINDOW = 30.0
# A retired worker stops accepting, serves for this long what it accepted
# (a client's first request may be on its way), then stops as on SIGTERM.
RETIRE_GRACE = 1.0
# Past its own shutdown timeout, a worker gets this long before SIGKILL.
KILL_MARGIN = 2.0

STARTING = "starting"
SERVING = "serving"
LEAVING = "leaving"
ENDED = "ended"


class PoolObserver(Protocol):
    """Who hears about the pool's state: the systemd notifier."""

    def statusChanged(self, status: str) -> None:
        """The one-line summary of the workers changed."""

    def reloading(self) -> None:
        """A reload began."""

    def reloaded(self) -> None:
        """The reload under way is over (done or given up)."""


def exitDescription(reason: Failure) -> str:
    """How a process ended, for a log line: C{status 1}, C{signal 9}."""
    value = reason.value
    signal = getattr(value, "signal", None)
    if signal is not None:
        return f"signal {signal}"
    return f"status {getattr(value, 'exitCode', None)}"


class WorkerProcess(ProcessProtocol):
    """
    One worker process, as its supervisor sees it: its slot (1 to the pool's
    count), its generation, and what it reports on its report pipe.
    """

    def __init__(self, pool: WorkerPool, slot: int, generation: int) -> None:
        self.pool = pool
        self.slot = slot
        self.generation = generation
        self.state = STARTING
        self.startedAt = pool.clock.seconds()
        self.killTimer: IDelayedCall | None = None
        self.pid: int | None = None
        self._lines = LineSplitter()
        self._asked: dict[int, Deferred[list[dict[str, Any]] | None]] = {}
        self._nextRequest = 0

    def makeConnection(self, transport: Any) -> None:
        # The transport forgets the pid once the process has ended.
        self.pid = getattr(transport, "pid", None)
        super().makeConnection(transport)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD != self.pool.reportFD:
            return
        for line in self._lines.feed(data):
            try:
                control, record = decodeReport(line)
            except (ValueError, UnicodeDecodeError):
                self.pool.unreadable(self, line)
                continue
            if control == "serving":
                self.pool.serving(self)
            elif control == METRICS:
                self._answered(record)
            elif control is None:
                self.pool.relay(self, record)

    def processEnded(self, reason: Failure) -> None:
        asked, self._asked = self._asked, {}
        for waiting in asked.values():
            waiting.callback(None)
        self.pool.ended(self, reason)

    def askMetrics(self) -> Deferred[list[dict[str, Any]] | None]:
        """
        Ask the worker for its metric families (as data); fires with them,
        or with C{None} if it ends first. Whoever asks sets the timeout, by
        cancelling: a cancelled question is forgotten, and a late answer
        dropped.
        """
        self._nextRequest += 1
        requestId = self._nextRequest

        def forget(_: Deferred[list[dict[str, Any]] | None]) -> None:
            self._asked.pop(requestId, None)

        waiting: Deferred[list[dict[str, Any]] | None] = Deferred(forget)
        self._asked[requestId] = waiting
        self.transport.write(metricsRequest(requestId))
        return waiting

    def _answered(self, record: dict[str, Any]) -> None:
        families = record.get("families")
        waiting = self._asked.pop(record.get("id"), None)  # type: ignore[arg-type]
        if waiting is not None:
            waiting.callback(families if isinstance(families, list) else None)

    def retire(self) -> None:
        """Ask the worker to stop accepting, then to stop."""
        self.transport.write(RETIRE)

    def signal(self, name: str) -> None:
        """Send signal C{name} (C{TERM}, C{KILL}) unless it has exited."""
        try:
            self.transport.signalProcess(name)
        except ProcessExitedAlready:
            pass

    def __str__(self) -> str:
        return f"worker {self.slot} (pid {self.pid})"


@implementer(IReopenable)
class WorkerPool(Service):
    """
    Keeps C{count} worker processes serving.

    On SIGHUP (L{reopen}: new workers open every log file anew) a new
    generation starts; once all of it serves, the old one retires. A new
    worker that ends before it serves abandons the reload: the old
    generation goes on, and the error is logged.

    @ivar current: the serving generation's workers, by slot.
    @ivar next: the generation a reload is starting, by slot, if any.
    @ivar gaveUp: whether a crash loop stopped the restarts.
    """

    _log = Logger()
    name = "workers"

    def __init__(
        self,
        serviceName: str,
        count: int,
        launch: Callable[[WorkerProcess], None],
        clock: IReactorTime,
        stopTimeout: float,
        fatal: Callable[[], None],
        reportFD: int = 3,
        relayTo: Callable[[dict[str, Any]], None] = globalLogPublisher,
    ) -> None:
        """
        @param launch: starts the process of the L{WorkerProcess} given.
        @param stopTimeout: how long a worker may take to drain on SIGTERM
            (its own shutdown timeout) before it is killed.
        @param fatal: called once no worker is left and none will be
            restarted (a crash loop): the supervisor must exit, with an error.
        @param reportFD: the worker's descriptor its reports come on.
        @param relayTo: where a worker's log events go.
        """
        self.serviceName = serviceName
        self.count = count
        self.clock = clock
        self.reportFD = reportFD
        self.generation = 0
        self.current: dict[int, WorkerProcess] = {}
        self.next: dict[int, WorkerProcess] | None = None
        self.gaveUp = False
        # Whether any worker has served yet: until one has, a worker that
        # exits is a start-up failure (a bad option, a file that cannot be
        # opened) that restarting would only repeat.
        self.started = False
        self.observer: PoolObserver | None = None
        self._launch = launch
        self._stopTimeout = stopTimeout
        self._fatal = fatal
        self._relayTo = relayTo
        self._alive: set[WorkerProcess] = set()
        self._restarts: dict[int, IDelayedCall] = {}
        self._failures: dict[int, int] = {}
        self._deaths: deque[float] = deque()
        self._ready: list[Deferred[None]] = []
        self._stopped: Deferred[None] | None = None
        self._failed = False

    # Starting and stopping.

    def startService(self) -> None:
        super().startService()
        self.generation += 1
        for slot in range(1, self.count + 1):
            self.current[slot] = self._spawn(slot, self.generation)
        self._changed()

    def stopService(self) -> Deferred[None] | None:
        """SIGTERM to every worker; SIGKILL to those not gone in time."""
        super().stopService()
        for timer in self._restarts.values():
            timer.cancel()
        self._restarts.clear()
        self.next = None
        for worker in list(self._alive):
            if worker.state != LEAVING:
                self._leave(worker, retire=False)
        if not self._alive:
            return None
        self._stopped = Deferred()
        return self._stopped

    def whenServing(self) -> Deferred[None]:
        """
        Fires once every worker serves (or, after a crash loop, every one
        left), for systemd's C{READY=1}.
        """
        if self._isReady():
            return succeed(None)
        ready: Deferred[None] = Deferred()
        self._ready.append(ready)
        return ready

    def answering(self) -> list[WorkerProcess]:
        """
        The workers running that have served: the current generation's,
        a reload's new one, and those leaving, which still hold counts.
        """
        found = [w for w in self._alive if w.state in (SERVING, LEAVING)]
        return sorted(found, key=lambda w: (w.generation, w.slot))

    def status(self) -> str:
        """One line: how many workers serve, and what is under way."""
        serving = sum(1 for w in self.current.values() if w.state == SERVING)
        line = f"{serving} of {self.count} workers serving"
        if self.next is not None:
            line += f", reloading (generation {self.generation})"
        if self.gaveUp:
            line += ", restarts stopped after a crash loop"
        return line

    # Reload.

    def reopen(self) -> None:
        """
        Reload: start a new generation of workers, retire the old once all
        of it serves. The new workers read every file anew (log files, TLS
        keys, the code itself).
        """
        if not self.running:
            return
        if self.next is not None:
            self._log.warn(
                "{service}: reload requested while generation {generation} is "
                "still starting; ignored",
                service=self.serviceName,
                generation=self.generation,
            )
            return
        self.gaveUp = False
        self._deaths.clear()
        self.generation += 1
        self._log.info(
            "{service}: reloading: starting generation {generation} of {count} workers",
            service=self.serviceName,
            generation=self.generation,
            count=self.count,
        )
        if self.observer is not None:
            self.observer.reloading()
        self.next = {}
        for slot in range(1, self.count + 1):
            self.next[slot] = self._spawn(slot, self.generation)
        self._changed()

    def _switch(self) -> None:
        """The new generation serves: it replaces the old, which retires."""
        assert self.next is not None
        old, self.current, self.next = self.current, self.next, None
        for timer in self._restarts.values():
            timer.cancel()
        self._restarts.clear()
        self._failures.clear()
        self._log.info(
            "{service}: generation {generation} serving; retiring {count} "
            "old worker(s)",
            service=self.serviceName,
            generation=self.generation,
            count=len(old),
        )
        for worker in old.values():
            self._leave(worker, retire=True)
        self._changed()
        if self.observer is not None:
            self.observer.reloaded()

    def _abandonReload(self, failed: WorkerProcess, reason: Failure) -> None:
        """A new worker ended before its generation served: keep the old."""
        assert self.next is not None
        starting, self.next = self.next, None
        self._log.error(
            "{service}: reload failed: new {worker} exited ({how}) before "
            "serving; generation {generation} abandoned, the old workers go on",
            service=self.serviceName,
            worker=str(failed),
            how=exitDescription(reason),
            generation=failed.generation,
        )
        for worker in starting.values():
            if worker is not failed and worker in self._alive:
                self._leave(worker, retire=worker.state == SERVING)
        self._changed()
        if self.observer is not None:
            self.observer.reloaded()

    # What workers report.

    def serving(self, worker: WorkerProcess) -> None:
        """C{worker} says every one of its listeners serves."""
        if worker.state != STARTING:
            return
        worker.state = SERVING
        self.started = True
        self._log.info(
            "{service}: {worker} of generation {generation} serving",
            service=self.serviceName,
            worker=str(worker),
            generation=worker.generation,
        )
        if self.next is not None and worker is self.next.get(worker.slot):
            if all(w.state == SERVING for w in self.next.values()):
                self._switch()
            return
        self._changed()
        self._checkReady()

    def relay(self, worker: WorkerProcess, event: dict[str, Any]) -> None:
        """Log C{worker}'s event here, marked as its."""
        event["log_system"] = (
            f"{self.serviceName} worker {worker.slot} pid {worker.pid}"
        )
        self._relayTo(event)

    def unreadable(self, worker: WorkerProcess, line: bytes) -> None:
        """C{worker} wrote a line that is not a report."""
        self._log.warn(
            "{service}: {worker} wrote an unreadable report line: {line!r}",
            service=self.serviceName,
            worker=str(worker),
            line=line[:200],
        )

    def ended(self, worker: WorkerProcess, reason: Failure) -> None:
        """C{worker}'s process ended."""
        leaving = worker.state == LEAVING
        worker.state = ENDED
        self._alive.discard(worker)
        if worker.killTimer is not None and worker.killTimer.active():
            worker.killTimer.cancel()
        if leaving:
            self._log.info(
                "{service}: {worker} stopped ({how})",
                service=self.serviceName,
                worker=str(worker),
                how=exitDescription(reason),
            )
            if self._stopped is not None and not self._alive:
                stopped, self._stopped = self._stopped, None
                stopped.callback(None)
            return
        if self.next is not None and worker is self.next.get(worker.slot):
            self._abandonReload(worker, reason)
            return
        if self.current.get(worker.slot) is worker:
            del self.current[worker.slot]
            self._died(worker, reason)

    def _died(self, worker: WorkerProcess, reason: Failure) -> None:
        """A current worker ended unasked: restart it, or stop restarting."""
        if not self.started:
            self._log.critical(
                "{service}: {worker} exited ({how}) before serving: start-up "
                "failed (its own log lines above say why)",
                service=self.serviceName,
                worker=str(worker),
                how=exitDescription(reason),
            )
            self._giveUp(worker, reason, startup=True)
            return
        now = self.clock.seconds()
        self._deaths.append(now)
        while self._deaths and self._deaths[0] <= now - CRASH_WINDOW:
            self._deaths.popleft()
        if self.gaveUp or len(self._deaths) >= CRASH_LIMIT:
            self._giveUp(worker, reason)
            return
        lived = now - worker.startedAt
        failures = (
            1 if lived >= STABLE_AFTER else self._failures.get(worker.slot, 0) + 1
        )
        self._failures[worker.slot] = failures
        delay = min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)
        self._log.warn(
            "{service}: {worker} exited ({how}) after {lived:.1f} s; restarting "
            "it in {delay} s",
            service=self.serviceName,
            worker=str(worker),
            how=exitDescription(reason),
            lived=lived,
            delay=delay,
        )
        self._restarts[worker.slot] = self.clock.callLater(
            delay, self._restart, worker.slot, worker.generation
        )
        self._changed()

    def _giveUp(
        self, worker: WorkerProcess, reason: Failure, startup: bool = False
    ) -> None:
        """
        A crash loop, or a failed start: restart nothing more; exit if nobody
        is left (or, at start, at once).
        """
        self.gaveUp = True
        for timer in self._restarts.values():
            timer.cancel()
        self._restarts.clear()
        if startup:
            self._fail()
            return
        self._log.critical(
            "{service}: {worker} exited ({how}): {deaths} workers died within "
            "{window} s, a crash loop; restarts stopped, {left} worker(s) left "
            "(SIGHUP tries a new generation)",
            service=self.serviceName,
            worker=str(worker),
            how=exitDescription(reason),
            deaths=len(self._deaths),
            window=CRASH_WINDOW,
            left=len(self.current),
        )
        self._changed()
        if not self.current and self.next is None:
            self._fail()
            return
        self._checkReady()

    def _fail(self) -> None:
        """Tell the supervisor, once, that it must exit with an error."""
        if not self._failed:
            self._failed = True
            self._fatal()

    def _restart(self, slot: int, generation: int) -> None:
        """
        Replace the worker of C{slot}, in its own C{generation} (a reload
        may be starting the next one meanwhile).
        """
        del self._restarts[slot]
        if self.running and not self.gaveUp and slot not in self.current:
            self.current[slot] = self._spawn(slot, generation)
            self._changed()

    # Helpers.

    def _spawn(self, slot: int, generation: int) -> WorkerProcess:
        worker = WorkerProcess(self, slot, generation)
        self._alive.add(worker)
        self._launch(worker)
        return worker

    def _leave(self, worker: WorkerProcess, retire: bool) -> None:
        """Ask C{worker} to go (gracefully), and kill it if it lingers."""
        worker.state = LEAVING
        grace = self._stopTimeout + KILL_MARGIN
        if retire:
            worker.retire()
            grace += RETIRE_GRACE
        else:
            worker.signal("TERM")
        worker.killTimer = self.clock.callLater(grace, self._kill, worker)

    def _kill(self, worker: WorkerProcess) -> None:
        if worker.state == ENDED:
            return
        self._log.warn(
            "{service}: {worker} did not stop in time; killing it",
            service=self.serviceName,
            worker=str(worker),
        )
        worker.signal("KILL")

    def _isReady(self) -> bool:
        if not self.current:
            return False
        serving = [w.state == SERVING for w in self.current.values()]
        if self.gaveUp:
            return all(serving)
        return len(serving) == self.count and all(serving)

    def _checkReady(self) -> None:
        if self._ready and self._isReady():
            ready, self._ready = self._ready, []
            for each in ready:
                each.callback(None)

    def _changed(self) -> None:
        if self.observer is not None:
            self.observer.statusChanged(self.status())
