"""
What every benchmark in C{bench/} shares, so that each script holds only
its workload and its measurement:

 - L{Server}, L{running}: a server subprocess in its own process group,
   ready once it logs that it listens (or once its port accepts), stopped
   with SIGTERM then SIGKILL, and killed should the bench die;
 - L{cpuPlan}: the server on one core and the load on another;
 - L{watchdog}, L{stopOnTerm}: the time budget, and a clean exit (servers
   stopped on the way out) on SIGTERM;
 - L{cpuSeconds}, L{selfCPU}, L{childrenCPU}, L{rss}, L{peakRss}: what a
   process used;
 - L{percentile}, L{median}, L{interleave}: one way to summarize, for every
   script, so that a p99 means the same thing in every table.

Not a benchmark: C{run_all.py} does not run it. Loopback only, like the
scripts that use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
BASELINES = HERE / "baselines"
RESULTS = HERE / "results"
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
# Runs twistd with this interpreter, whatever its scripts directory is.
TWISTD = "from twisted.scripts.twistd import run; run()"

_T = TypeVar("_T")


def listening(transport: str = "tcp") -> re.Pattern[str]:
    """
    The line a server logs once bound, as our listeners and the baselines
    write it (C{... listening on tcp:127.0.0.1:8888}, C{udp:[::1]:1314}):
    its C{host} and C{port} groups give the address.
    """
    return re.compile(
        rf"listening on {transport}:(?:\[(?P<host6>[^\]\s]+)\]|(?P<host>[^\s:]+))"
        r":(?P<port>\d+)"
    )


def twistdCommand(plugin: str, *arguments: str) -> list[str]:
    """C{twistd -n PLUGIN ARGUMENTS} in the foreground, with no pid file."""
    return [sys.executable, "-c", TWISTD, "-n", "--pidfile=", plugin, *arguments]


@dataclass
class Contender:
    """
    A server to measure: its name, what it is, and how to start it; and,
    for one run with C{--metrics}, the URL scraped while it runs.
    """

    name: str
    description: str
    command: list[str]
    scrape: str = ""


SCRAPE_INTERVAL = 1.0
"""
Seconds between scrapes of a contender with metrics on: Prometheus's usual
interval is 15 s, so this puts fifteen times the usual rendering load on it.
"""


def withMetrics(contender: Contender, name: str) -> Contender:
    """
    C{contender} (one of our plugins) with C{--metrics} on a free loopback
    port, scraped every L{SCRAPE_INTERVAL} seconds while it runs.
    """
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    return Contender(
        name,
        f"{contender.description}, --metrics scraped every {SCRAPE_INTERVAL:g} s",
        [*contender.command, "--metrics", f"tcp:{port}:interface={HOST}"],
        scrape=f"http://{HOST}:{port}/metrics",
    )


_SCRAPE_LOOP = """
import sys, time, urllib.request
url, interval = sys.argv[1], float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(url, timeout=5.0) as response:
            response.read()
            print(response.status, flush=True)
    except OSError as error:
        print(error, flush=True)
    time.sleep(interval)
"""


class Scraper:
    """
    Fetches C{url} every L{SCRAPE_INTERVAL} seconds until stopped, as
    Prometheus would: from a process of its own, so that the load
    generator's process does not share its interpreter with the scrapes.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SCRAPE_LOOP, url, str(SCRAPE_INTERVAL)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=dieWithParent,
        )

    def stop(self) -> int:
        """Stop scraping; the number of scrapes that got a 200."""
        self._process.terminate()
        output, _ = self._process.communicate(timeout=STOP_TIMEOUT)
        return output.split().count("200")


# Processes.


def dieWithParent() -> None:
    """
    In a child, before its C{exec}: be killed if the bench dies, even by
    SIGKILL (the setting survives C{taskset}'s own C{exec}). Linux sends it
    when the thread that started the child ends: start children from the
    main thread.
    """
    with contextlib.suppress(Exception):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Server:
    """
    One server subprocess, its output drained (so that it never blocks on a
    full pipe) and its last lines kept for error messages.

    It leads its own process group, so that a Ctrl-C meant for the bench
    does not stop it halfway through a run, and L{stop} reaches anything it
    started. Ready means: a line matched C{ready} (whose C{host}/C{port}
    groups, if any, give the address), or, with C{ready=None}, C{address}
    accepts a TCP connection.
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        prefix: Sequence[str] = (),
        ready: re.Pattern[str] | None = None,
        address: tuple[str, int] | None = None,
        onLine: Callable[[str], None] | None = None,
    ) -> None:
        if ready is None and address is None:
            raise ValueError("a server needs a ready line or an address to poll")
        self.name = name
        self.address = address
        self.tail: deque[str] = deque(maxlen=40)
        self._ready = ready
        self._onLine = onLine
        self._seen = threading.Event()
        self.process = subprocess.Popen(
            [*prefix, *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
            preexec_fn=dieWithParent,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The server's own pid: C{taskset} C{exec}s it in place."""
        return self.process.pid

    def _drain(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        with contextlib.suppress(ValueError, OSError):
            for raw in stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                self.tail.append(line)
                if self._onLine is not None:
                    self._onLine(line)
                if self._seen.is_set() or self._ready is None:
                    continue
                match = self._ready.search(line)
                if match:
                    groups = match.groupdict()
                    host = groups.get("host6") or groups.get("host")
                    if host and groups.get("port"):
                        self.address = (host, int(groups["port"]))
                    self._seen.set()
        self._seen.set()  # EOF: whoever waits learns that it exited

    def _failure(self, what: str) -> RuntimeError:
        return RuntimeError(f"{self.name} {what}:\n" + "\n".join(self.tail))

    def waitReady(self, timeout: float = START_TIMEOUT) -> tuple[str, int]:
        """The address once the server is ready; fail after C{timeout}."""
        deadline = time.monotonic() + timeout
        if self._ready is not None:
            if not self._seen.wait(timeout) or self.process.poll() is not None:
                raise self._failure("did not start")
        if self.address is None:
            raise self._failure("logged no address")
        if self._ready is None:
            self._waitAccepting(deadline)
        return self.address

    def _waitAccepting(self, deadline: float) -> None:
        assert self.address is not None
        while True:
            self.checkAlive()
            with contextlib.suppress(OSError):
                socket.create_connection(self.address, timeout=0.5).close()
                return
            if time.monotonic() >= deadline:
                raise self._failure(f"did not accept on {self.address}")
            time.sleep(0.05)

    def checkAlive(self) -> None:
        """Fail, with its last lines, if the server has exited."""
        if self.process.poll() is not None:
            raise self._failure("exited")

    def _exited(self, timeout: float) -> bool:
        """
        Wait for the leader to exit without reaping it: while it is a
        zombie its process group cannot be reused, so signalling the group
        reaches nothing but what it left behind.
        """
        deadline = time.monotonic() + timeout
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        while True:
            try:
                if os.waitid(os.P_PID, self.pid, flags) is not None:
                    return True
            except ChildProcessError:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def _signalGroup(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL what is left after L{STOP_TIMEOUT}."""
        if self.process.returncode is None:
            self._signalGroup(signal.SIGTERM)
            self._exited(STOP_TIMEOUT)
            self._signalGroup(signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT)
        self._reader.join(STOP_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def running(
    contender: Contender,
    plan: CpuPlan,
    ready: re.Pattern[str] | None = None,
    **keywords: Any,
) -> Iterator[Server]:
    """
    A ready L{Server} for C{contender} on the plan's server core (TCP unless
    C{ready} says otherwise), stopped on the way out whatever happens.
    """
    server = Server(
        contender.name,
        contender.command,
        prefix=plan.serverPrefix,
        ready=listening("tcp") if ready is None else ready,
        **keywords,
    )
    scraper: Scraper | None = None
    try:
        server.waitReady()
        if contender.scrape:
            scraper = Scraper(contender.scrape)
        yield server
    finally:
        scrapes = 0 if scraper is None else scraper.stop()
        server.stop()
    if scraper is not None and not scrapes:
        raise RuntimeError(f"{contender.name}: no scrape of {contender.scrape} worked")


# Cores.


@dataclass(frozen=True)
class CpuPlan:
    """
    Where the server and the load generator run: apart, so that each has a
    core to itself and the figures are the server's, not their contention.
    Unpinned (no C{taskset} or one core) the prefixes are empty.
    """

    taskset: str | None
    serverCPU: int | None
    loadCPU: int | None

    @property
    def pinned(self) -> bool:
        return self.loadCPU is not None

    @property
    def serverPrefix(self) -> list[str]:
        """What to put before a server's command to pin it."""
        if not self.pinned:
            return []
        return [str(self.taskset), "-c", str(self.serverCPU)]

    @property
    def loadPrefix(self) -> list[str]:
        """What to put before a load generator's command to pin it."""
        if not self.pinned:
            return []
        return [str(self.taskset), "-c", str(self.loadCPU)]

    def pinSelf(self) -> None:
        """Move this process (a load generator in itself) to the load core."""
        if self.loadCPU is not None:
            os.sched_setaffinity(0, {self.loadCPU})

    def require(self, program: str, load: str = "load generator") -> CpuPlan:
        """Exit unless pinned: for benches whose figures mean nothing otherwise."""
        if self.taskset is None:
            raise SystemExit(f"{program}: taskset not found on PATH")
        if not self.pinned:
            raise SystemExit(f"{program}: needs two CPUs (server and {load} apart)")
        return self


def cpuPlan(pin: bool = True) -> CpuPlan:
    """
    The server on the first CPU this process may use, the load on the
    second; no pinning when asked not to, or without C{taskset} or a second
    CPU.
    """
    cpus = sorted(os.sched_getaffinity(0))
    taskset = shutil.which("taskset")
    if not pin or taskset is None or len(cpus) < 2:
        return CpuPlan(taskset, None, None)
    return CpuPlan(taskset, cpus[0], cpus[1])


# Time.


@contextlib.contextmanager
def watchdog(program: str, seconds: float) -> Iterator[None]:
    """
    End the run with C{SystemExit} after C{seconds} (the C{finally} blocks
    on the way out stop the servers), so that no bench outlives its budget
    even if a wait in it has no deadline.
    """

    def expired(signum: int, frame: object) -> None:
        raise SystemExit(f"{program}: watchdog: still running after {seconds:.0f}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(max(1, math.ceil(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def stopOnTerm(program: str) -> None:
    """
    Turn SIGTERM (what C{run_all.py} sends a script over budget) into
    C{SystemExit}, so that the servers are stopped on the way out.
    """

    def terminated(signum: int, frame: object) -> None:
        raise SystemExit(f"{program}: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, terminated)


def raiseDescriptorLimit(needed: int | None = None) -> int:
    """
    Raise the soft C{RLIMIT_NOFILE} (children inherit it) to C{needed}, or
    to the hard limit; return the soft limit now. Exit if the hard limit is
    below C{needed}.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if needed is None else max(soft, needed)
    if hard != resource.RLIM_INFINITY and target > hard:
        raise SystemExit(
            f"need {needed} file descriptors but the hard limit is {hard}: "
            "ask for fewer connections or raise it (ulimit -Hn)"
        )
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def loopRunner() -> tuple[Callable[[Coroutine[Any, Any, _T]], _T], str]:
    """C{uvloop.run} if uvloop is installed, else C{asyncio.run}; and its name."""
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        import asyncio

        return asyncio.run, "asyncio"
    return uvloop.run, "uvloop"


# What a process used.


def cpuSeconds(pid: int) -> float:
    """User plus system CPU time of process C{pid}, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def selfCPU() -> float:
    """User plus system CPU time of this process, every thread."""
    return time.process_time()


def childrenCPU() -> float:
    """CPU time of this process's reaped children (a C{wrk} run, say)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def rss(pid: int) -> int:
    """Resident memory of process C{pid} now, in bytes (VmRSS)."""
    return _status(pid, "VmRSS")


def peakRss(pid: int) -> int:
    """Peak resident memory of process C{pid} so far, in bytes (VmHWM)."""
    return _status(pid, "VmHWM")


# Summaries.


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """
    The nearest-rank percentile of C{ordered} (sorted ascending, not checked:
    sort once, ask several times): the smallest value that at least
    C{fraction} of the values are less than or equal to, i.e. the
    C{ceil(fraction * n)}-th smallest. Always a value that was measured;
    C{0} gives the minimum, C{1} the maximum; NaN when there is none.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], not {fraction}")
    if not ordered:
        return math.nan
    # round() first: 0.07 * 100 is 7.000000000000001, whose ceil is 8.
    rank = math.ceil(round(fraction * len(ordered), 9))
    return ordered[max(rank, 1) - 1]


def median(values: Iterable[float]) -> float:
    """
    The middle value (the mean of the two middle ones for an even count),
    NaN for none: a round that drifted does not pull the summary with it,
    as it would a mean.
    """
    found = list(values)
    return statistics.median(found) if found else math.nan


def medianOf(runs: Iterable[dict[str, Any]], key: str, **match: object) -> float:
    """The L{median} of C{run[key]} over the C{runs} whose fields equal C{match}."""
    return median(
        run[key] for run in runs if all(run[k] == v for k, v in match.items())
    )


def interleave(
    rounds: int, contenders: Sequence[_T], rotate: bool = False
) -> Iterator[tuple[int, _T]]:
    """
    C{(round, contender)} from round 1, every contender in every round, so
    that a slow drift of the machine hits them all alike instead of one
    contender's block of runs; with C{rotate} the order shifts each round,
    so that no contender always follows the same one.
    """
    count = len(contenders)
    for number in range(1, rounds + 1):
        shift = (number - 1) % count if rotate and count else 0
        for contender in [*contenders[shift:], *contenders[:shift]]:
            yield number, contender


# Output.


def machine() -> dict[str, object]:
    """The machine a run's raw results came from."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def writeResults(
    directory: Path, name: str, settings: dict[str, object], **sections: object
) -> Path:
    """
    Write one run's raw results to C{directory}/C{name}-STAMP.json, with
    when and on what machine they were measured, and say where.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S")
    raw = {"when": stamp, "machine": machine(), "settings": settings, **sections}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{stamp}.json"
    path.write_text(json.dumps(raw, indent=2) + "\n")
    print(f"\n  results: {path}")
    return path


def writeWorkloads(
    path: Path, workloads: list[dict[str, object]], **extra: object
) -> None:
    """
    Write C{--json} output, the interface C{run_all.py} reads::

        {"workloads": [{"name": str, "metric": str, "higherIsBetter": bool,
                        "ours": float, "baselines": {name: float}}], ...}
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"workloads": workloads, **extra}, indent=2) + "\n")
