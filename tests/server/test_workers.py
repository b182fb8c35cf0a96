"""
Tests for L{twisted_services.server.workers}: C{--workers} in every
plugin's options, the supervisor's tree and how it starts workers, the
worker's side, what they say to each other, and the adopted form of
L{twisted_services.server.listeners.Listener}.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.server.test_workers_pool import FakeProcess
from tests.support.listeners import FakePort, RecordingListen
from tests.support.tap import Tap
from tests.systemd.test_notify import NotifyReactor
from twisted_services.chat import tap as chat
from twisted_services.echo import tap as echo
from twisted_services.http import tap as http
from twisted_services.server.hangup import HangupService
from twisted_services.server.listeners import (
    Listener,
    StartupFailed,
    acceptOneAtATime,
    adoptStream,
    streamListeners,
)
from twisted_services.server.tree import walk
from twisted_services.server.workers.channel import (
    RETIRE,
    SERVING,
    LineSplitter,
    Reporter,
    decodeLine,
    encodeControl,
    encodeEvent,
)
from twisted_services.server.workers.options import (
    oneProcess,
    supervising,
    usableCPUs,
    workerCount,
)
from twisted_services.server.workers.pool import WorkerPool, WorkerProcess
from twisted_services.server.workers.supervisor import (
    DEFAULT_STOP_TIMEOUT,
    HoldSockets,
    Launcher,
    SupervisorNotifier,
    SupervisorService,
    stopTimeout,
    workerEnvironment,
)
from twisted_services.server.workers.workerside import (
    Stopper,
    SupervisorLink,
    adoptListeners,
)
from twisted_services.services import tap as services
from twisted_services.temperature import tap as temperature
from twisted_services.testing import UDPMemoryReactor

UNITS = "twisted_services/systemd/unitfiles"


def boundSocket(
    testCase: SynchronousTestCase, kind: int = socket.SOCK_STREAM
) -> socket.socket:
    """A socket bound to a free loopback port (listening, if a stream one)."""
    sock = socket.socket(socket.AF_INET, kind)
    testCase.addCleanup(sock.close)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(5)
    return sock


class HeldPort(FakePort):
    """A bound port stand-in with a real descriptor, that counts stopReading."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock.getsockname())
        self._sock = sock
        self.reading = True

    def fileno(self) -> int:
        return self._sock.fileno()

    def stopReading(self) -> None:
        self.reading = False


class WorkerCountTests(SynchronousTestCase):
    """C{--workers} takes a number of at least 1, or C{auto}."""

    def test_number(self) -> None:
        self.assertEqual(workerCount("3"), 3)

    def test_auto(self) -> None:
        """C{auto}: one a CPU this process may run on."""
        self.assertEqual(workerCount("auto"), usableCPUs())
        self.assertEqual(usableCPUs(), len(os.sched_getaffinity(0)))

    def test_refused(self) -> None:
        """0, negative and other words are refused, saying what is allowed."""
        for value in ["0", "-2", "two", ""]:
            error = self.assertRaises(ValueError, workerCount, value)
            self.assertIn("at least 1 nor auto", str(error))


class PluginOptionsTests(SynchronousTestCase):
    """Every plugin takes C{--workers}; chat refuses more than one."""

    def test_default(self) -> None:
        """Without C{--workers}: one process, as before."""
        for module in (echo, http, temperature, chat, services):
            options = Tap(module).parse()
            self.assertEqual(options["workers"], 1, module.__name__)
            self.assertFalse(supervising(options))

    def test_parsed(self) -> None:
        """C{--workers 2} is kept, and so is the command line it came in."""
        for module in (echo, http, temperature):
            options = Tap(module).parse("--workers", "2", "--port", "0")
            self.assertEqual(options["workers"], 2)
            self.assertTrue(supervising(options))
            self.assertEqual(options.argv, ["--workers", "2", "--port", "0"])

    def test_badValue(self) -> None:
        """A bad value is a usage error naming the option."""
        error = self.assertRaises(usage.UsageError, Tap(echo).parse, "--workers", "0")
        self.assertTrue(str(error).startswith("--workers: '0' is neither"))

    def test_chatRefusesWorkers(self) -> None:
        """
        Without Redis, chat's rooms are in one process: C{--workers 2} is a
        usage error.
        """
        error = self.assertRaises(usage.UsageError, Tap(chat).parse, "--workers", "2")
        self.assertIn("chat keeps its rooms in one process's memory", str(error))
        self.assertEqual(Tap(chat).parse("--workers", "1")["workers"], 1)

    def test_chatWithRedis(self) -> None:
        """With C{--redis}, chat runs workers: each is a server sharing the chat."""
        options = Tap(chat).parse("--workers", "2", "--redis", "redis://127.0.0.1")
        self.assertTrue(supervising(options))
        service = chat.makeService(options, MemoryReactorClock())
        self.assertIsInstance(service, SupervisorService)

    def test_servicesWithChat(self) -> None:
        """
        The combined plugin refuses workers while chat is in it without
        Redis.
        """
        error = self.assertRaises(
            usage.UsageError, Tap(services).parse, "--workers", "2"
        )
        self.assertIn("--no-chat", str(error))
        options = Tap(services).parse(
            "--workers", "2", "--chat-args", "--redis redis://127.0.0.1"
        )
        self.assertTrue(supervising(options))
        options = Tap(services).parse("--workers", "2", "--no-chat")
        self.assertTrue(supervising(options))

    def test_servicesPartWorkers(self) -> None:
        """C{--workers} inside a service's C{--X-args} is refused."""
        error = self.assertRaises(
            usage.UsageError, Tap(services).parse, "--http-args", "--workers 2"
        )
        self.assertIn("--http-args: --workers applies to the whole process", str(error))

    def test_oneProcess(self) -> None:
        """A worker's options: the same command line, with one worker."""
        options = Tap(http).parse("--workers", "3", "--port", "0", "--message", "hi")
        single = oneProcess(options)
        self.assertEqual(single["workers"], 1)
        self.assertEqual(single["message"], "hi")
        self.assertEqual(single["listen"], options["listen"])
        self.assertEqual(options["workers"], 3)


class StopTimeoutTests(SynchronousTestCase):
    """How long the supervisor lets a worker drain."""

    def test_ownTimeout(self) -> None:
        options = Tap(http).parse("--shutdown-timeout", "7")
        self.assertEqual(stopTimeout(options), 7.0)

    def test_default(self) -> None:
        self.assertEqual(stopTimeout(Tap(echo).parse()), DEFAULT_STOP_TIMEOUT)

    def test_combined(self) -> None:
        """The combined plugin's: the longest of its services'."""
        options = Tap(services).parse(
            "--http-args", "--shutdown-timeout 9", "--no-chat"
        )
        self.assertEqual(stopTimeout(options), 9.0)


class EnvironmentTests(SynchronousTestCase):
    """A worker's environment."""

    def test_systemdNotifyNotPassed(self) -> None:
        """Only the supervisor talks to systemd."""
        env = workerEnvironment(
            {
                "PATH": "/bin",
                "NOTIFY_SOCKET": "/run/n",
                "WATCHDOG_USEC": "1",
                "WATCHDOG_PID": "1",
                "LISTEN_FDS": "1",
                "LISTEN_PID": "1",
                "LISTEN_FDNAMES": "x",
            },
            [],
        )
        self.assertEqual(env, {"PATH": "/bin"})

    def test_passedSockets(self) -> None:
        """Sockets systemd passed are described anew, for the worker."""
        env = workerEnvironment({"LISTEN_FDNAMES": "old"}, ["http", "echo"])
        self.assertEqual(env, {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "http:echo"})


class SpawningReactor(MemoryReactorClock):
    """A fake reactor that records C{spawnProcess} calls."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[Any, ...]] = []

    def spawnProcess(
        self, protocol: Any, executable: str, args: list[str], env: Any, childFDs: Any
    ) -> None:  # type: ignore[override]
        self.spawned.append((protocol, executable, args, env, childFDs))


class LauncherTests(SynchronousTestCase):
    """How a worker process is started."""

    def test_descriptors(self) -> None:
        """
        The supervisor's pipe on 0, its stdout and stderr on 1 and 2, the
        systemd sockets from 3, then the report pipe, then the listeners.
        """
        sock = boundSocket(self)
        listener = Listener("echo", "tcp:0", RecordingListen(), MemoryReactorClock())
        listener.port = HeldPort(sock)  # type: ignore[assignment]
        launcher = Launcher(
            SpawningReactor(),
            "twisted_services.echo.tap",
            ["--workers", "2"],
            [listener],
            systemdFDs=[7, 8],
            systemdNames=["a", "b"],
            environ={},
        )
        self.assertEqual(launcher.reportFD, 5)
        self.assertEqual(
            launcher.childFDs(),
            {0: "w", 1: 1, 2: 2, 3: 7, 4: 8, 5: "r", 6: sock.fileno()},
        )

    def test_spawn(self) -> None:
        """The worker module runs in this interpreter, told all in one argument."""
        reactor = SpawningReactor()
        sock = boundSocket(self)
        listener = Listener("echo", "tcp:0", RecordingListen(), MemoryReactorClock())
        listener.port = HeldPort(sock)  # type: ignore[assignment]
        launcher = Launcher(
            reactor,
            "twisted_services.echo.tap",
            ["--workers", "2"],
            [listener],
            environ={"NOTIFY_SOCKET": "x"},
        )
        pool = WorkerPool("echo", 2, launcher, reactor, 1.0, lambda: None)
        worker = WorkerProcess(pool, 2, 3)
        launcher(worker)
        [(protocol, executable, args, env, _)] = reactor.spawned
        self.assertIs(protocol, worker)
        self.assertEqual(executable, sys.executable)
        self.assertEqual(
            args[:3], [sys.executable, "-m", "twisted_services.server.workers.worker"]
        )
        self.assertEqual(
            json.loads(args[3]),
            {
                "tap": "twisted_services.echo.tap",
                "argv": ["--workers", "2"],
                "slot": 2,
                "generation": 3,
                "report": 3,
                "listeners": [["echo", "tcp:0", 4]],
            },
        )
        self.assertEqual(env, {})


class SupervisorTreeTests(SynchronousTestCase):
    """What C{makeService} builds with C{--workers} above 1."""

    def test_tree(self) -> None:
        """
        The plugin's own listeners, then the socket holder, the pool, SIGHUP
        handling and the notifier; nothing of the service itself.
        """
        options = Tap(http).parse("--workers", "2", "--port", "0", "--listen", "tcp:0")
        service = http.makeService(options, MemoryReactorClock())
        self.assertIsInstance(service, SupervisorService)
        kinds = [type(child) for child in service]
        self.assertEqual(
            kinds,
            [
                Listener,
                Listener,
                HoldSockets,
                WorkerPool,
                HangupService,
                SupervisorNotifier,
            ],
        )
        single = http.makeService(oneProcess(options), MemoryReactorClock())
        self.assertEqual(
            [c.description for c in service if isinstance(c, Listener)],
            [c.description for c in walk(single) if isinstance(c, Listener)],
        )
        pool = next(c for c in service if isinstance(c, WorkerPool))
        self.assertEqual((pool.serviceName, pool.count), ("http", 2))

    def test_unixRefused(self) -> None:
        """A UNIX listener cannot be shared: start-up stops, saying so."""
        options = Tap(echo).parse("--workers", "2", "--listen", "unix:/tmp/x.sock")
        error = self.assertRaises(
            SystemExit, echo.makeService, options, MemoryReactorClock()
        )
        self.assertIn("cannot be shared with worker processes", str(error.code))

    def test_combined(self) -> None:
        """The combined plugin's supervisor holds every service's listeners."""
        options = Tap(services).parse(
            "--workers",
            "2",
            "--no-chat",
            "--echo",
            "tcp:0",
            "--http",
            "tcp:0",
            "--temperature",
            "0",
        )
        service = services.makeService(options, UDPMemoryReactor())
        self.assertEqual(
            [c.serviceName for c in service if isinstance(c, Listener)],
            ["echo", "http", "temperature"],
        )


class HoldSocketsTests(SynchronousTestCase):
    """The supervisor binds but never accepts."""

    def test_stopsReading(self) -> None:
        listener = Listener("echo", "tcp:0", RecordingListen(), MemoryReactorClock())
        port = HeldPort(boundSocket(self))
        listener.port = port  # type: ignore[assignment]
        HoldSockets([listener]).privilegedStartService()
        self.assertFalse(port.reading)

    def test_unixSocketRefused(self) -> None:
        """A UNIX socket (passed by systemd) stops start-up with one line."""
        left, right = socket.socketpair()
        self.addCleanup(left.close)
        self.addCleanup(right.close)
        listener = Listener(
            "echo",
            "systemd:domain=UNIX:index=0",
            RecordingListen(),
            MemoryReactorClock(),
        )
        listener.port = HeldPort(left)  # type: ignore[assignment]
        with capturedLogs() as events:
            error = self.assertRaises(
                StartupFailed, HoldSockets([listener]).privilegedStartService
            )
        self.assertIn("is a UNIX socket", str(error))
        self.assertEqual(len(events), 1)


class SupervisorNotifierTests(SynchronousTestCase):
    """systemd hears about the workers, not just the listeners."""

    def _started(self) -> tuple[WorkerPool, NotifyReactor, list[WorkerProcess]]:
        reactor = NotifyReactor()
        launched: list[WorkerProcess] = []

        def launch(worker: WorkerProcess) -> None:
            worker.makeConnection(FakeProcess(100 + len(launched)))
            launched.append(worker)

        pool = WorkerPool("echo", 2, launch, reactor, 1.0, lambda: None)
        parent = MultiService()
        pool.setServiceParent(parent)
        SupervisorNotifier(
            pool, reactor=reactor, environ={"NOTIFY_SOCKET": "/n"}
        ).setServiceParent(parent)
        parent.startService()
        reactor.run()
        return pool, reactor, launched

    def test_readyOnceWorkersServe(self) -> None:
        """C{READY=1} waits until every worker serves; its status says so."""
        pool, reactor, launched = self._started()
        self.assertEqual(reactor.messages(), [])
        for worker in launched:
            pool.serving(worker)
        [ready] = reactor.messages()
        self.assertEqual(ready, b"READY=1\nSTATUS=running; 2 of 2 workers serving")

    def test_statusAndReload(self) -> None:
        """Changes update C{STATUS=}; a reload is C{RELOADING=1}, then C{READY=1}."""
        pool, reactor, launched = self._started()
        for worker in launched:
            pool.serving(worker)
        pool.reopen()
        reloading = reactor.messages()[-2]
        self.assertTrue(reloading.startswith(b"RELOADING=1\nMONOTONIC_USEC="))
        for worker in launched[2:]:
            pool.serving(worker)
        self.assertEqual(
            reactor.messages()[-1], b"READY=1\nSTATUS=running; 2 of 2 workers serving"
        )


class ListenerAdoptionTests(SynchronousTestCase):
    """The adopted form of a L{Listener}."""

    def test_inherit(self) -> None:
        """Told to inherit a descriptor, a listener adopts it instead of binding."""
        listen = RecordingListen()
        adopted: list[int] = []

        def adopt(fd: int) -> Any:
            adopted.append(fd)
            return FakePort(None)

        listener = Listener("echo", "tcp:0", listen, MemoryReactorClock(), adopt)
        listener.inherit(9)
        listener.privilegedStartService()
        self.assertEqual((adopted, listen.ports), ([9], []))

    def test_cannotInherit(self) -> None:
        listener = Listener("echo", "unix:/x", RecordingListen(), MemoryReactorClock())
        self.assertRaises(ValueError, listener.inherit, 9)

    def test_streamListenersAdopt(self) -> None:
        """TCP descriptions adopt a stream socket; UNIX ones cannot."""
        reactor = MemoryReactorClock()
        tcp, unix = streamListeners(
            "echo", ["tcp:0", "unix:/tmp/x.sock"], Factory(), reactor
        )
        self.assertIsNone(unix.adopt)
        sock = boundSocket(self)
        assert tcp.adopt is not None
        tcp.adopt(sock.fileno())
        [(fd, family, _)] = reactor.adoptedPorts
        self.assertEqual((fd, family), (sock.fileno(), socket.AF_INET))

    def test_acceptOneAtATime(self) -> None:
        """
        An adopted stream port accepts one connection a wake-up, however
        many Twisted's adaptive count would take, so that a burst is shared
        by the workers.
        """
        seen: list[int] = []

        class Port:
            numberAccepts = 100

            def doRead(self) -> None:
                seen.append(self.numberAccepts)
                self.numberAccepts += 20

        port = Port()
        acceptOneAtATime(port)  # type: ignore[arg-type]
        port.doRead()
        port.doRead()
        self.assertEqual(seen, [1, 1])

    def test_adoptStreamRefusesDatagram(self) -> None:
        sock = boundSocket(self, socket.SOCK_DGRAM)
        self.assertRaises(
            ValueError, adoptStream, MemoryReactorClock(), sock.fileno(), Factory()
        )


class WorkerSideTests(SynchronousTestCase):
    """The worker's side: adopting, retiring, the supervisor going away."""

    def test_adoptListeners(self) -> None:
        """The worker's listeners adopt the descriptors, in the supervisor's order."""
        options = Tap(echo).parse("--port", "0", "--listen", "tcp:0")
        service = echo.makeService(options, MemoryReactorClock())
        descriptions = [c.description for c in walk(service) if isinstance(c, Listener)]
        listeners = adoptListeners(
            service, [["echo", d, 10 + i] for i, d in enumerate(descriptions)]
        )
        self.assertEqual(len(listeners), 2)

    def test_adoptMismatch(self) -> None:
        """Listeners other than the supervisor's: the worker does not start."""
        service = echo.makeService(Tap(echo).parse("--port", "0"), MemoryReactorClock())
        self.assertRaises(SystemExit, adoptListeners, service, [["echo", "tcp:1", 10]])

    def test_retire(self) -> None:
        """C{retire}: listeners stop now, the reactor after the grace period."""
        reactor = MemoryReactorClock()
        reactor.running = True
        listener = Listener("echo", "tcp:0", RecordingListen(), reactor)
        listener.startService()
        link = SupervisorLink(reactor, [listener], Stopper(reactor), grace=1.0)
        link.childDataReceived("supervisor", RETIRE)
        self.assertFalse(listener.running)
        self.assertFalse(reactor.hasStopped)
        reactor.advance(1.0)
        self.assertTrue(reactor.hasStopped)

    def test_supervisorGone(self) -> None:
        """The end of the supervisor's pipe stops the worker at once."""
        reactor = MemoryReactorClock()
        reactor.running = True
        stopper = Stopper(reactor)
        link = SupervisorLink(reactor, [], stopper)
        link.childConnectionLost("supervisor", Failure(EOFError()))
        self.assertTrue(reactor.hasStopped)
        self.assertTrue(stopper.stopping)

    def test_stopOnce(self) -> None:
        """Asked to stop again while stopping, the worker does nothing more."""
        reactor = MemoryReactorClock()
        reactor.running = True
        stopper = Stopper(reactor)
        stopper.stop("received SIGTERM")
        with capturedLogs() as events:
            stopper.stop("received SIGINT")
        self.assertEqual(events, [])


class ChannelTests(SynchronousTestCase):
    """What supervisor and workers say to each other."""

    def test_controlRoundTrip(self) -> None:
        self.assertEqual(decodeLine(encodeControl(SERVING).rstrip()), ("serving", None))

    def test_eventRoundTrip(self) -> None:
        control, event = decodeLine(
            encodeEvent({"log_format": "x {y}", "y": 1}).rstrip()
        )
        self.assertIsNone(control)
        assert event is not None
        self.assertEqual((event["log_format"], event["y"]), ("x {y}", 1))

    def test_notAnObject(self) -> None:
        self.assertRaises(ValueError, decodeLine, b"[1]")

    def test_longLineDropped(self) -> None:
        """A line over the limit is skipped whole, counted; the next is read."""
        splitter = LineSplitter(maxLine=8)
        self.assertEqual(splitter.feed(b"short\nmuch too lo"), [b"short"])
        self.assertEqual(splitter.feed(b"ng still\nnext\n"), [b"next"])
        self.assertEqual(splitter.dropped, 1)

    def test_lineAtTheLimit(self) -> None:
        """A line of exactly the limit is read."""
        splitter = LineSplitter(maxLine=8)
        self.assertEqual(splitter.feed(b"12345678\n"), [b"12345678"])

    def test_reporter(self) -> None:
        """The reporter writes whole lines to its descriptor."""
        read, write = os.pipe()
        self.addCleanup(os.close, read)
        self.addCleanup(os.close, write)
        Reporter(write).serving()
        self.assertEqual(os.read(read, 100), encodeControl(SERVING))

    def test_reporterPipeGone(self) -> None:
        """A supervisor gone (a broken pipe) makes reporting a no-op."""
        read, write = os.pipe()
        os.close(read)
        self.addCleanup(os.close, write)
        Reporter(write).serving()


class UnitFilesTests(SynchronousTestCase):
    """The shipped units reload with SIGHUP and let the supervisor stop workers."""

    def test_reloadAndKillMode(self) -> None:
        units = sorted((Path(__file__).resolve().parents[2] / UNITS).glob("*.service"))
        self.assertTrue(units)
        for unit in units:
            lines = unit.read_text().splitlines()
            self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", lines, unit.name)
            self.assertIn("KillMode=mixed", lines, unit.name)
