"""
Tests for L{twisted_services.server.workers.pool}: supervision of worker
processes on fake process transports and a L{Clock}: restarts with backoff,
crash loops, reload by generations, drain on stop.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.server.workers.channel import (
    RETIRE,
    SERVING,
    encodeControl,
    encodeEvent,
)
from twisted_services.server.workers.pool import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    CRASH_LIMIT,
    CRASH_WINDOW,
    KILL_MARGIN,
    RETIRE_GRACE,
    STABLE_AFTER,
    WorkerPool,
    WorkerProcess,
)

STOP_TIMEOUT = 5.0


class FakeProcess:
    """A process transport stand-in: records signals and what is written."""

    def __init__(self, pid: int) -> None:
        self.pid: int | None = pid
        self.signals: list[str] = []
        self.written = b""

    def signalProcess(self, name: str) -> None:
        if self.pid is None:
            raise ProcessExitedAlready()
        self.signals.append(name)

    def write(self, data: bytes) -> None:
        self.written += data


class RecordingObserver:
    """A pool observer that records what it hears."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    def statusChanged(self, status: str) -> None:
        self.heard.append(status)

    def reloading(self) -> None:
        self.heard.append("reloading")

    def reloaded(self) -> None:
        self.heard.append("reloaded")


class Supervised:
    """A L{WorkerPool} on a L{Clock} whose workers get L{FakeProcess}es."""

    def __init__(self, count: int = 2) -> None:
        self.clock = Clock()
        self.launched: list[WorkerProcess] = []
        self.fatal = 0
        self.relayed: list[dict[str, Any]] = []
        self.pool = WorkerPool(
            "http",
            count,
            self._launch,
            self.clock,
            STOP_TIMEOUT,
            self._fatal,
            relayTo=self.relayed.append,
        )
        self.observer = RecordingObserver()
        self.pool.observer = self.observer

    def _launch(self, worker: WorkerProcess) -> None:
        worker.makeConnection(FakeProcess(1000 + len(self.launched)))
        self.launched.append(worker)

    def _fatal(self) -> None:
        self.fatal += 1

    def start(self, serve: bool = True) -> list[WorkerProcess]:
        self.pool.startService()
        workers = list(self.launched)
        if serve:
            for worker in workers:
                serving(worker)
        return workers


def serving(worker: WorkerProcess) -> None:
    """C{worker} reports that it serves."""
    worker.childDataReceived(3, encodeControl(SERVING))


def end(worker: WorkerProcess, code: int = 1, signal: int | None = None) -> None:
    """C{worker}'s process ends with status C{code} (or by C{signal})."""
    transport = worker.transport
    assert isinstance(transport, FakeProcess)
    transport.pid = None
    if code == 0 and signal is None:
        reason = Failure(ProcessDone(0))
    else:
        reason = Failure(ProcessTerminated(exitCode=code, signal=signal))
    worker.processEnded(reason)


def signals(worker: WorkerProcess) -> list[str]:
    transport = worker.transport
    assert isinstance(transport, FakeProcess)
    return transport.signals


def written(worker: WorkerProcess) -> bytes:
    transport = worker.transport
    assert isinstance(transport, FakeProcess)
    return transport.written


class StartTests(SynchronousTestCase):
    """Starting: one worker a slot, ready once every one serves."""

    def test_onePerSlot(self) -> None:
        """C{count} workers start, in slots 1 to C{count}, generation 1."""
        supervised = Supervised(3)
        workers = supervised.start(serve=False)
        self.assertEqual(
            [(w.slot, w.generation) for w in workers], [(1, 1), (2, 1), (3, 1)]
        )

    def test_readyOnceAllServe(self) -> None:
        """L{WorkerPool.whenServing} fires once the last worker serves, not before."""
        supervised = Supervised(2)
        first, second = supervised.start(serve=False)
        ready = supervised.pool.whenServing()
        serving(first)
        self.assertNoResult(ready)
        serving(second)
        self.successResultOf(ready)
        self.assertEqual(supervised.pool.status(), "2 of 2 workers serving")

    def test_serveAcrossReads(self) -> None:
        """A report split across reads still counts, once."""
        supervised = Supervised(1)
        (worker,) = supervised.start(serve=False)
        line = encodeControl(SERVING)
        worker.childDataReceived(3, line[:5])
        self.assertEqual(supervised.pool.status(), "0 of 1 workers serving")
        worker.childDataReceived(3, line[5:] + line)
        self.assertEqual(supervised.pool.status(), "1 of 1 workers serving")

    def test_otherDescriptorsIgnored(self) -> None:
        """Only the report pipe is read: a line on another descriptor is nothing."""
        supervised = Supervised(1)
        (worker,) = supervised.start(serve=False)
        worker.childDataReceived(4, encodeControl(SERVING))
        self.assertEqual(supervised.pool.status(), "0 of 1 workers serving")


class RelayTests(SynchronousTestCase):
    """A worker's log events are logged by the supervisor, marked as its."""

    def test_eventRelayed(self) -> None:
        """An event gets the worker's slot and pid as its system."""
        supervised = Supervised(1)
        (worker,) = supervised.start()
        worker.childDataReceived(
            3, encodeEvent({"log_format": "hello {who}", "who": "you"})
        )
        (event,) = supervised.relayed
        self.assertEqual(event["log_system"], "http worker 1 pid 1000")
        self.assertEqual(event["who"], "you")

    def test_unreadableLine(self) -> None:
        """A line that is not a report is logged, and what follows still read."""
        supervised = Supervised(1)
        (worker,) = supervised.start(serve=False)
        with capturedLogs() as events:
            worker.childDataReceived(3, b"not json\n" + encodeControl(SERVING))
        self.assertIn("unreadable", events[0]["log_format"])
        self.assertEqual(supervised.pool.status(), "1 of 1 workers serving")


class RestartTests(SynchronousTestCase):
    """A worker that dies is restarted, later each time it dies again quickly."""

    def test_restartAfterBackoff(self) -> None:
        """A dead worker's slot gets a new worker L{BACKOFF_BASE} seconds later."""
        supervised = Supervised(2)
        first, second = supervised.start()
        end(first)
        self.assertEqual(supervised.pool.status(), "1 of 2 workers serving")
        supervised.clock.advance(BACKOFF_BASE - 0.01)
        self.assertEqual(len(supervised.launched), 2)
        supervised.clock.advance(0.01)
        replacement = supervised.launched[-1]
        self.assertEqual((replacement.slot, replacement.generation), (1, 1))
        self.assertIs(supervised.pool.current[1], replacement)
        self.assertEqual(signals(second), [])

    def test_backoffDoubles(self) -> None:
        """Quick deaths in a row double the delay: 0.5, 1, 2 seconds."""
        supervised = Supervised(1)
        supervised.start()
        delays = []
        for _ in range(3):
            end(supervised.launched[-1])
            before = len(supervised.launched)
            waited = 0.0
            while len(supervised.launched) == before:
                supervised.clock.advance(0.25)
                waited += 0.25
            delays.append(waited)
            serving(supervised.launched[-1])
        self.assertEqual(delays, [BACKOFF_BASE, 2 * BACKOFF_BASE, 4 * BACKOFF_BASE])

    def test_backoffCapped(self) -> None:
        """However many deaths in a row, the delay stays at most L{BACKOFF_MAX}."""
        supervised = Supervised(1)
        supervised.start()
        # Deaths spaced past the crash window, each after a short life.
        supervised.pool._failures[1] = 20
        end(supervised.launched[-1])
        (call,) = supervised.clock.getDelayedCalls()
        self.assertEqual(call.getTime() - supervised.clock.seconds(), BACKOFF_MAX)

    def test_stableWorkerRestartsQuickly(self) -> None:
        """A worker that had served L{STABLE_AFTER} seconds is restarted at once."""
        supervised = Supervised(1)
        supervised.start()
        end(supervised.launched[-1])
        supervised.clock.advance(BACKOFF_BASE)
        serving(supervised.launched[-1])
        supervised.clock.advance(STABLE_AFTER)
        end(supervised.launched[-1])
        before = len(supervised.launched)
        supervised.clock.advance(BACKOFF_BASE)
        self.assertEqual(len(supervised.launched), before + 1)

    def test_deathLogged(self) -> None:
        """A death is a warning naming the worker, how it ended and the delay."""
        supervised = Supervised(1)
        (worker,) = supervised.start()
        with capturedLogs() as events:
            end(worker, signal=9)
        (event,) = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(event["worker"], "worker 1 (pid 1000)")
        self.assertEqual(event["how"], "signal 9")
        self.assertEqual(event["delay"], BACKOFF_BASE)


class CrashLoopTests(SynchronousTestCase):
    """L{CRASH_LIMIT} deaths within L{CRASH_WINDOW} seconds stop the restarts."""

    def _dieQuickly(self, supervised: Supervised, times: int) -> None:
        """
        The worker in slot 1 dies C{times} times, each replacement as soon
        as it is started (all within L{CRASH_WINDOW}: 0.5 + 1 + 2 + 4 s).
        """
        for _ in range(times):
            end(supervised.pool.current[1])
            for _ in range(100):
                if 1 in supervised.pool.current or supervised.pool.gaveUp:
                    break
                supervised.clock.advance(0.25)

    def test_justUnderTheLimit(self) -> None:
        """One death fewer than the limit within the window: still restarting."""
        supervised = Supervised(2)
        supervised.start()
        self._dieQuickly(supervised, CRASH_LIMIT - 1)
        self.assertFalse(supervised.pool.gaveUp)
        self.assertIn(1, supervised.pool.current)

    def test_spreadOut(self) -> None:
        """Deaths further apart than the window never make a crash loop."""
        supervised = Supervised(1)
        supervised.start()
        spacing = CRASH_WINDOW / (CRASH_LIMIT - 1) + 0.1
        for _ in range(CRASH_LIMIT * 2):
            diedAt = supervised.clock.seconds()
            end(supervised.pool.current[1])
            while (
                1 not in supervised.pool.current
                or supervised.clock.seconds() < diedAt + spacing
            ):
                supervised.clock.advance(0.5)
            serving(supervised.pool.current[1])
        self.assertFalse(supervised.pool.gaveUp)
        self.assertEqual(supervised.fatal, 0)

    def test_limitStopsRestarts(self) -> None:
        """
        The limit reached: no more restarts, a critical line, and the other
        worker serves on; the supervisor is not told to exit.
        """
        supervised = Supervised(2)
        supervised.start()
        with capturedLogs() as events:
            self._dieQuickly(supervised, CRASH_LIMIT)
        launched = len(supervised.launched)
        supervised.clock.advance(BACKOFF_MAX * 2)
        self.assertEqual(len(supervised.launched), launched)
        self.assertTrue(supervised.pool.gaveUp)
        self.assertEqual(supervised.fatal, 0)
        self.assertEqual(list(supervised.pool.current), [2])
        self.assertIn(
            "crash loop",
            next(e for e in events if e["log_level"] == LogLevel.critical)[
                "log_format"
            ],
        )
        self.assertIn("restarts stopped", supervised.pool.status())
        self.successResultOf(supervised.pool.whenServing())

    def test_nobodyLeft(self) -> None:
        """Once no worker is left after a crash loop, the supervisor must exit."""
        supervised = Supervised(1)
        supervised.start()
        self._dieQuickly(supervised, CRASH_LIMIT)
        self.assertEqual(supervised.fatal, 1)

    def test_lastSurvivorDies(self) -> None:
        """After a crash loop, the death of the last worker left is fatal too."""
        supervised = Supervised(2)
        supervised.start()
        self._dieQuickly(supervised, CRASH_LIMIT)
        supervised.clock.advance(CRASH_WINDOW * 2)
        end(supervised.pool.current[2])
        self.assertEqual(supervised.fatal, 1)

    def test_failedStart(self) -> None:
        """
        A worker that exits before any worker has served is a failed start:
        a critical line, nothing restarted, and the supervisor told to exit,
        once, however many workers follow.
        """
        supervised = Supervised(2)
        first, second = supervised.start(serve=False)
        ready = supervised.pool.whenServing()
        with capturedLogs() as events:
            end(first)
            end(second)
        supervised.clock.advance(BACKOFF_MAX)
        self.assertEqual(len(supervised.launched), 2)
        self.assertEqual(supervised.fatal, 1)
        self.assertNoResult(ready)
        self.assertIn(
            "start-up failed",
            next(e for e in events if e["log_level"] == LogLevel.critical)[
                "log_format"
            ],
        )

    def test_startedOnceIsStarted(self) -> None:
        """Once one worker has served, another that dies before serving is restarted."""
        supervised = Supervised(2)
        first, second = supervised.start(serve=False)
        serving(first)
        end(second)
        supervised.clock.advance(BACKOFF_BASE)
        self.assertEqual(len(supervised.launched), 3)
        self.assertEqual(supervised.fatal, 0)


class ReloadTests(SynchronousTestCase):
    """L{WorkerPool.reopen} (SIGHUP) replaces every worker by a new generation."""

    def test_newGenerationFirst(self) -> None:
        """
        The old workers are not asked to go until every new one serves; then
        they are asked to retire, and the new ones are current.
        """
        supervised = Supervised(2)
        old = supervised.start()
        supervised.pool.reopen()
        new = supervised.launched[2:]
        self.assertEqual([(w.slot, w.generation) for w in new], [(1, 2), (2, 2)])
        serving(new[0])
        self.assertEqual([written(w) for w in old], [b"", b""])
        serving(new[1])
        self.assertEqual([written(w) for w in old], [RETIRE, RETIRE])
        self.assertEqual(list(supervised.pool.current.values()), new)
        self.assertEqual(supervised.observer.heard.count("reloading"), 1)
        self.assertEqual(supervised.observer.heard[-1], "reloaded")

    def test_retiredAreNotRestarted(self) -> None:
        """A retired worker that exits is not replaced."""
        supervised = Supervised(1)
        (old,) = supervised.start()
        supervised.pool.reopen()
        serving(supervised.launched[-1])
        end(old, code=0)
        supervised.clock.advance(BACKOFF_MAX)
        self.assertEqual(len(supervised.launched), 2)

    def test_lingeringRetiredKilled(self) -> None:
        """A retired worker still there past its grace and timeout is killed."""
        supervised = Supervised(1)
        (old,) = supervised.start()
        supervised.pool.reopen()
        serving(supervised.launched[-1])
        supervised.clock.advance(RETIRE_GRACE + STOP_TIMEOUT + KILL_MARGIN - 0.1)
        self.assertEqual(signals(old), [])
        supervised.clock.advance(0.1)
        self.assertEqual(signals(old), ["KILL"])

    def test_failedReloadKeepsOld(self) -> None:
        """
        A new worker that exits before serving abandons the reload: the
        others new are stopped, the old ones stay current, an error is logged.
        """
        supervised = Supervised(2)
        old = supervised.start()
        supervised.pool.reopen()
        new = supervised.launched[2:]
        serving(new[1])
        with capturedLogs() as events:
            end(new[0])
        self.assertEqual(list(supervised.pool.current.values()), old)
        self.assertIsNone(supervised.pool.next)
        self.assertEqual(written(new[1]), RETIRE)
        self.assertEqual([written(w) for w in old], [b"", b""])
        self.assertIn(
            "reload failed",
            next(e for e in events if e["log_level"] == LogLevel.error)["log_format"],
        )
        supervised.clock.advance(BACKOFF_MAX)
        self.assertEqual(len(supervised.launched), 4)

    def test_reloadWhileReloading(self) -> None:
        """A second SIGHUP while a generation starts is ignored."""
        supervised = Supervised(2)
        supervised.start()
        supervised.pool.reopen()
        supervised.pool.reopen()
        self.assertEqual(len(supervised.launched), 4)

    def test_reloadAfterCrashLoop(self) -> None:
        """A reload after a crash loop starts every slot afresh."""
        supervised = Supervised(2)
        supervised.start()
        CrashLoopTests._dieQuickly(self, supervised, CRASH_LIMIT)  # type: ignore[arg-type]
        self.assertTrue(supervised.pool.gaveUp)
        supervised.pool.reopen()
        for worker in supervised.launched[-2:]:
            serving(worker)
        self.assertFalse(supervised.pool.gaveUp)
        self.assertEqual(sorted(supervised.pool.current), [1, 2])

    def test_restartDuringReload(self) -> None:
        """
        An old worker that dies while the new generation starts is replaced
        in the old generation, and retired with it.
        """
        supervised = Supervised(2)
        old = supervised.start()
        supervised.pool.reopen()
        new = supervised.launched[2:]
        end(old[0])
        supervised.clock.advance(BACKOFF_BASE)
        replacement = supervised.launched[-1]
        self.assertEqual((replacement.slot, replacement.generation), (1, 1))
        serving(replacement)
        for worker in new:
            serving(worker)
        self.assertEqual(written(replacement), RETIRE)
        self.assertEqual(list(supervised.pool.current.values()), new)

    def test_pendingRestartDropped(self) -> None:
        """A restart scheduled for the old generation is cancelled by the switch."""
        supervised = Supervised(2)
        old = supervised.start()
        end(old[0])
        supervised.pool.reopen()
        for worker in supervised.launched[2:]:
            serving(worker)
        supervised.clock.advance(BACKOFF_MAX)
        self.assertEqual(len(supervised.launched), 4)


class StopTests(SynchronousTestCase):
    """Stopping the pool sends SIGTERM, waits, then kills."""

    def test_terminateAll(self) -> None:
        """Every worker gets SIGTERM; the stop fires once the last has exited."""
        supervised = Supervised(2)
        first, second = supervised.start()
        stopped = supervised.pool.stopService()
        assert stopped is not None
        self.assertEqual([signals(first), signals(second)], [["TERM"], ["TERM"]])
        end(first, code=0)
        self.assertNoResult(stopped)
        end(second, code=0)
        self.successResultOf(stopped)

    def test_killAfterTimeout(self) -> None:
        """A worker still running past the timeout and margin gets SIGKILL."""
        supervised = Supervised(1)
        (worker,) = supervised.start()
        stopped = supervised.pool.stopService()
        supervised.clock.advance(STOP_TIMEOUT + KILL_MARGIN)
        self.assertEqual(signals(worker), ["TERM", "KILL"])
        end(worker, signal=9)
        self.successResultOf(stopped)

    def test_noRestartWhileStopping(self) -> None:
        """A restart scheduled before the stop never happens."""
        supervised = Supervised(2)
        first, second = supervised.start()
        end(first)
        supervised.pool.stopService()
        end(second, code=0)
        supervised.clock.advance(BACKOFF_MAX)
        self.assertEqual(len(supervised.launched), 2)

    def test_stopsBothGenerations(self) -> None:
        """Stopped during a reload, old and new workers all get SIGTERM."""
        supervised = Supervised(1)
        (old,) = supervised.start()
        supervised.pool.reopen()
        (new,) = supervised.launched[1:]
        supervised.pool.stopService()
        self.assertEqual([signals(old), signals(new)], [["TERM"], ["TERM"]])

    def test_nothingRunning(self) -> None:
        """With no worker left, stopping is immediate."""
        supervised = Supervised(1)
        supervised.start()
        CrashLoopTests._dieQuickly(self, supervised, CRASH_LIMIT)  # type: ignore[arg-type]
        self.assertIsNone(supervised.pool.stopService())
