"""
Integration tests of C{--workers}: real C{twistd} supervisors and their
worker processes on loopback. Which worker accepted a connection is read
from C{/proc} (the process holding the server's end of it), so the services
need to say nothing new. Every wait has a deadline, every client loop a
bound on requests and on time; nothing sleeps.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.chat.sockets import LineClient
from tests.support.redis import REDIS_SERVER, SKIP_REASON, RedisServer
from tests.support.sockets import receiveFrom, udpClient
from tests.support.twistd import STARTUP_TIMEOUT, Twistd, runTwistd, startTwistd
from tests.support.waiting import polling
from tests.systemd.test_notify_integration import CLEAN_EXIT, NotifySocket
from tests.systemd.test_socket_activation import Passed, activate

WORKERS = 2
REQUEST_TIMEOUT = 10.0
_SERVING = re.compile(
    r"worker (?P<slot>\d+) \(pid (?P<pid>\d+)\) of generation (?P<generation>\d+) "
    r"serving"
)
REQUEST = b"GET / HTTP/1.1\r\nHost: workers.test\r\nConnection: close\r\n\r\n"


def servingWorkers(twistd: Twistd, generation: int = 1) -> dict[int, int]:
    """The workers of C{generation} that said they serve: slot to pid."""
    found = {}
    for line in twistd.output:
        match = _SERVING.search(line)
        if match and int(match["generation"]) == generation:
            found[int(match["slot"])] = int(match["pid"])
    return found


def waitForWorkers(
    twistd: Twistd, count: int = WORKERS, generation: int = 1
) -> dict[int, int]:
    """Wait until C{count} workers of C{generation} serve; slot to pid."""
    twistd.waitFor(
        lambda: len(servingWorkers(twistd, generation)) >= count, STARTUP_TIMEOUT
    )
    return servingWorkers(twistd, generation)


def socketInodes(pid: int) -> set[str]:
    """The inodes of the sockets process C{pid} holds."""
    inodes = set()
    directory = f"/proc/{pid}/fd"
    for name in os.listdir(directory):
        try:
            target = os.readlink(os.path.join(directory, name))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def serverInode(serverPort: int, clientPort: int) -> str | None:
    """The inode of the server's end of the TCP connection from C{clientPort}."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local, remote = fields[1], fields[2]
                if (
                    int(local.rsplit(":", 1)[1], 16) == serverPort
                    and int(remote.rsplit(":", 1)[1], 16) == clientPort
                ):
                    return fields[9]
    return None


def accepting(serverPort: int, client: socket.socket, pids: dict[int, int]) -> int:
    """The slot of the worker among C{pids} that holds C{client}'s connection."""
    clientPort = client.getsockname()[1]
    for _ in polling(REQUEST_TIMEOUT, "a worker to accept the connection"):
        inode = serverInode(serverPort, clientPort)
        if inode is None:
            continue
        for slot, pid in pids.items():
            if inode in socketInodes(pid):
                return slot
    raise AssertionError("unreachable")


def acceptingWorkers(address: tuple[str, int], pids: dict[int, int]) -> set[int]:
    """
    The slots of the workers that accept connections to C{address}: new
    connections are held open until every worker has one, 200 at most.
    """
    held: list[socket.socket] = []
    seen: set[int] = set()
    try:
        for _ in range(200):
            client = socket.create_connection(address, timeout=REQUEST_TIMEOUT)
            held.append(client)
            seen.add(accepting(address[1], client, pids))
            if seen == set(pids):
                break
    finally:
        for client in held:
            client.close()
    return seen


def get(address: tuple[str, int]) -> bytes:
    """One C{GET /} on a new connection: the whole response."""
    with socket.create_connection(address, timeout=REQUEST_TIMEOUT) as client:
        client.sendall(REQUEST)
        chunks = []
        while True:
            chunk = client.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


@dataclass
class Load:
    """What a client loop saw: status lines by count, and errors."""

    statuses: dict[bytes, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    started: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def answered(self) -> int:
        return sum(self.statuses.values()) + len(self.errors)


@contextmanager
def steadyLoad(
    address: tuple[str, int],
    clients: int = 2,
    maxRequests: int = 20_000,
    maxSeconds: float = 30.0,
) -> Iterator[Load]:
    """
    C{clients} threads sending C{GET /} one after another (each on a new
    connection), until the block ends, C{maxRequests} in all, or
    C{maxSeconds}: a bounded, steady load.
    """
    load = Load()
    stop = threading.Event()
    deadline = time.monotonic() + maxSeconds

    def run() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            with load.changed:
                if load.started >= maxRequests:
                    return
                load.started += 1
            try:
                status = get(address).split(b"\r\n", 1)[0]
                if not status:
                    raise ConnectionError("closed without a response")
            except OSError as error:
                with load.changed:
                    load.errors.append(repr(error))
                    load.changed.notify_all()
                continue
            with load.changed:
                load.statuses[status] = load.statuses.get(status, 0) + 1
                load.changed.notify_all()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT * 2)


def waitForRequests(load: Load, count: int, what: str) -> None:
    """Wait until C{load} has had C{count} more answers than now."""
    with load.changed:
        target = load.answered() + count
        for remaining in polling(REQUEST_TIMEOUT * 2, what):
            if load.answered() >= target:
                return
            load.changed.wait(remaining)


def gone(pid: int) -> bool:
    """Whether process C{pid} has exited (and been reaped)."""
    return not os.path.exists(f"/proc/{pid}")


def startHttp(
    testCase: SynchronousTestCase, *extra: str
) -> tuple[Twistd, dict[int, int]]:
    """C{twistd http --workers 2} on a free port; its workers' pids."""
    twistd = startTwistd(
        testCase,
        "http",
        [
            "--port",
            "0",
            "--interface",
            "127.0.0.1",
            "--no-access-log",
            "--workers",
            str(WORKERS),
            *extra,
        ],
    )
    return twistd, waitForWorkers(twistd)


class HttpWorkersTests(SynchronousTestCase):
    """C{twistd http --workers 2}: sharing, supervision, reload and stop."""

    def test_everyWorkerAccepts(self) -> None:
        """
        Both workers accept connections on the one port, and SIGTERM stops
        the workers and then the supervisor, cleanly.
        """
        twistd, pids = startHttp(self)
        address = twistd.listener().loopbackAddress
        self.assertEqual(acceptingWorkers(address, pids), set(pids))
        self.assertIn(twistd.stop(), CLEAN_EXIT)
        self.assertTrue(all(gone(pid) for pid in pids.values()))
        self.assertEqual(
            len(re.findall(r"worker \d \(pid \d+\) stopped", twistd.log())), WORKERS
        )

    def test_killedWorkerReplaced(self) -> None:
        """
        Under load, a worker killed with SIGKILL is replaced (and says so in
        the log), while the other goes on answering. (Requests the killed
        worker had accepted are lost: that is what SIGKILL does.)
        """
        twistd, pids = startHttp(self)
        address = twistd.listener().loopbackAddress
        with steadyLoad(address) as load:
            waitForRequests(load, 20, "answers before the kill")
            os.kill(pids[1], signal.SIGKILL)
            twistd.waitForLog(rf"worker 1 \(pid {pids[1]}\) exited \(signal 9\)")
            waitForRequests(load, 20, "answers while worker 1 is down")
            twistd.waitFor(
                lambda: servingWorkers(twistd).get(1) not in (None, pids[1]),
                STARTUP_TIMEOUT,
            )
            waitForRequests(load, 20, "answers after the replacement")
        self.assertEqual(set(load.statuses), {b"HTTP/1.1 200 OK"})
        self.assertNotEqual(servingWorkers(twistd)[1], pids[1])

    def test_reloadLosesNothing(self) -> None:
        """
        SIGHUP under steady load starts a new generation, retires the old
        one, and every request gets 200: no refusal, reset or error.
        """
        twistd, old = startHttp(self)
        address = twistd.listener().loopbackAddress
        with steadyLoad(address) as load:
            waitForRequests(load, 20, "answers before the reload")
            twistd.process.send_signal(signal.SIGHUP)
            new = waitForWorkers(twistd, generation=2)
            twistd.waitFor(
                lambda: all(gone(pid) for pid in old.values()), STARTUP_TIMEOUT
            )
            waitForRequests(load, 20, "answers after the reload")
        self.assertEqual(load.errors, [])
        self.assertEqual(set(load.statuses), {b"HTTP/1.1 200 OK"})
        self.assertFalse(set(new.values()) & set(old.values()))
        self.assertIn("SIGHUP: reopened the log files of workers", twistd.log())


class ChatRedisTests(SynchronousTestCase):
    """Chat with C{--redis} runs workers, each one more server of the chat."""

    def test_usersOnTwoWorkers(self) -> None:
        """Users whom two different workers serve are in one room."""
        if REDIS_SERVER is None:
            raise SkipTest(SKIP_REASON)
        redis = RedisServer()
        redis.start()
        self.addCleanup(redis.close)
        twistd = startTwistd(
            self,
            "chat",
            [
                "--port",
                "0",
                "--interface",
                "127.0.0.1",
                "--redis",
                redis.url,
                "--workers",
                "2",
            ],
        )
        pids = waitForWorkers(twistd)
        address = twistd.listener().loopbackAddress
        bySlot: dict[int, LineClient] = {}
        for _ in range(40):
            client = LineClient.connect(address)
            self.addCleanup(client.close)
            bySlot.setdefault(accepting(address[1], client.socket, pids), client)
            if len(bySlot) == WORKERS:
                break
        self.assertEqual(set(bySlot), set(pids))
        alice, bob = bySlot[1], bySlot[2]
        alice.send("/nick alice")
        alice.waitFor("*** you are now known as alice")
        bob.send("/nick bob")
        bob.waitFor("*** you are now known as bob")
        alice.send("hello from worker 1")
        bob.waitFor("<alice> hello from worker 1")


class FailedStartTests(SynchronousTestCase):
    """Workers that cannot start end the supervisor, as a single process would end."""

    def test_workersCannotStart(self) -> None:
        """
        An access log that cannot be opened: the worker says why, the
        supervisor says start-up failed and exits with status 1, at once.
        """
        result = runTwistd(
            "http",
            ["--port", "0", "--workers", "2", "--access-log", "/nonexistent/a.log"],
        )
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("cannot open access log '/nonexistent/a.log'", result.stdout)
        self.assertIn("before serving: start-up failed", result.stdout)


class OtherServicesTests(SynchronousTestCase):
    """Workers for the UDP service, and with sockets passed by systemd."""

    def test_temperature(self) -> None:
        """C{twistd temperature --workers 2} answers on its one UDP port."""
        twistd = startTwistd(
            self,
            "temperature",
            ["--port", "0", "--interface", "127.0.0.1", "--workers", "2"],
        )
        waitForWorkers(twistd)
        client = udpClient(self)
        address = twistd.listener("udp").loopbackAddress
        client.sendto(b"100", address)
        self.assertEqual(receiveFrom(client, address), b"100 C = 212 F\n")

    def test_socketActivation(self) -> None:
        """
        Under C{systemd-socket-activate}, two workers serve the socket
        systemd passed, named, to the supervisor.
        """
        sockets = [Passed("echo", False)]
        twistd, first = activate(
            self,
            sockets,
            "echo",
            ["--listen", "systemd:domain=INET:name=echo", "--workers", "2"],
        )
        pids = waitForWorkers(twistd)
        first.sendall(b"hello\n")
        self.assertEqual(first.recv(64), b"hello\n")
        self.assertEqual(acceptingWorkers(sockets[0].address, pids), set(pids))


class NotifyTests(SynchronousTestCase):
    """What systemd hears from a supervisor."""

    def test_readyReloadStopping(self) -> None:
        """
        C{READY=1} comes once, when both workers serve, its status counting
        them; a reload is C{RELOADING=1} then C{READY=1}; the workers say
        nothing to systemd themselves.
        """
        notify = NotifySocket(self)
        twistd = startTwistd(
            self,
            "echo",
            ["--port", "0", "--interface", "127.0.0.1", "--workers", "2"],
            env={"NOTIFY_SOCKET": notify.value, "WATCHDOG_USEC": "0"},
        )
        _, ready = notify.receive()
        # The unit tests pin the order (READY=1 only once both serve); here,
        # that this is the supervisor of two workers.
        waitForWorkers(twistd)
        self.assertEqual(ready[0], "READY=1")
        self.assertTrue(ready[1].endswith("; 2 of 2 workers serving"), ready)
        twistd.process.send_signal(signal.SIGHUP)
        _, reloading = notify.receive()
        self.assertEqual(reloading[0], "RELOADING=1")
        for _ in polling(STARTUP_TIMEOUT, "READY=1 after the reload"):
            _, lines = notify.receive()
            if lines[0] == "READY=1":
                break
        waitForWorkers(twistd, generation=2)
        self.assertIn(twistd.stop(), CLEAN_EXIT)
        rest = notify.pending()
        self.assertEqual(rest[-1], ["STOPPING=1"], rest)
        self.assertNotIn(["READY=1"], [lines[:1] for lines in rest])
