"""
Worker processes benchmark, run by hand or by C{bench/run_all.py} (not in
CI):

    .venv/bin/python bench/workers_bench.py [--quick] [--rounds 5]
        [--duration 3] [--warmup 1] [--json PATH]

C{--workers 1} (one process, as without the option) against C{--workers 2}
(a supervisor and two worker processes sharing the listening socket), for:

 - http: C{wrk -t1 -c50} on keep-alive connections, C{GET /} (access log
   off); requests/s;
 - echo: 50 connections ping-ponging 64-byte messages (this script in
   C{generate} mode, on uvloop); messages/s;

and, for both, the server's CPU seconds per request (the supervisor and
its workers together, from C{/proc}) and how the connections spread over
the workers. Nothing is pinned: the servers and the load generator share
the machine's cores, as they would share a host; on two cores the load
generator takes part of what a second worker could use. Each round runs
each service with 1 and 2 workers back to back (see L{pairedRounds}); the
table gives medians, and, since other processes on a shared machine swing
the figures by half, the ratios of the rounds and runs in which the rest of
the machine was quiet (under L{QUIET} of a core, interrupts included).

Everything is bounded: start-up, each load run, each stop, and a watchdog
over the whole run; servers are killed on the way out. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from echo_bench import _Load, checkEcho, connectAll, stopAll
from harness import (
    HOST,
    RESULTS,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Contender,
    Server,
    childrenCPU,
    cpuPlan,
    cpuSeconds,
    dieWithParent,
    listening,
    median,
    raiseDescriptorLimit,
    running,
    stopOnTerm,
    twistdCommand,
    watchdog,
    writeResults,
    writeWorkloads,
)
from http_bench import checkResponse, parseWrk

CONNECTIONS = 50
MESSAGE = 64
GOAL = 1.3
# Cores' worth of other processes' work under which a run counts as quiet.
QUIET = 0.3
_SERVING = re.compile(r"worker \d+ \(pid (?P<pid>\d+)\) of generation 1 serving")


@dataclass(frozen=True)
class Setup:
    """One service with a number of workers."""

    service: str
    workers: int

    @property
    def name(self) -> str:
        return f"{self.service} --workers {self.workers}"

    def contender(self) -> Contender:
        arguments = ["--port", "0", "--interface", HOST, "--workers", str(self.workers)]
        if self.service == "http":
            arguments.append("--no-access-log")
        return Contender(self.name, self.name, twistdCommand(self.service, *arguments))


SETUPS = [Setup(s, n) for s in ("http", "echo") for n in (1, 2)]


# What the server is: the process twistd runs and its workers.


def children(pid: int) -> list[int]:
    """The child processes of C{pid}, from /proc."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                found += [int(child) for child in listed.read().split()]
        except OSError:
            continue
    return found


def treeCPU(pid: int) -> float:
    """CPU seconds of C{pid} and its children (a supervisor and its workers)."""
    total = 0.0
    for each in [pid, *children(pid)]:
        try:
            total += cpuSeconds(each)
        except OSError:
            continue  # exited meanwhile
    return total


def machineBusy() -> float:
    """CPU seconds every core has spent busy since boot (steal included)."""
    with open("/proc/stat") as stat:
        fields = [int(count) for count in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def socketInodes(pid: int) -> set[str]:
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def spread(pid: int, port: int) -> list[int]:
    """Established connections to C{port} held by each process serving."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    established.add(fields[9])
    workers = children(pid) or [pid]
    return sorted(
        (len(socketInodes(each) & established) for each in workers), reverse=True
    )


# The echo load generator: this script in generate mode.


async def pingPong(options: argparse.Namespace) -> dict[str, float]:
    load = _Load(MESSAGE)
    made = await connectAll(load, options.host, options.port, CONNECTIONS)
    await asyncio.sleep(options.warmup)
    before = treeCPU(options.server_pid)
    busyBefore, mineBefore = machineBusy(), time.process_time()
    started = time.perf_counter()
    load.measuring = True
    await asyncio.sleep(options.duration / 2)
    connections = spread(options.server_pid, options.port)
    await asyncio.sleep(options.duration / 2)
    load.measuring = False
    elapsed = time.perf_counter() - started
    used = treeCPU(options.server_pid) - before
    mine = time.process_time() - mineBefore
    others = machineBusy() - busyBefore - used - mine
    await stopAll(load, made)
    messages = len(load.latencies)
    if not messages:
        raise RuntimeError("no message came back during the measured run")
    return {
        "rate": messages / elapsed,
        "requests": messages,
        "serverSeconds": used,
        "connections": connections,
        "othersCPU": max(0.0, others) / elapsed,
    }


def generate(options: argparse.Namespace) -> None:
    import uvloop

    raiseDescriptorLimit()
    print(json.dumps(uvloop.run(pingPong(options))), flush=True)


# The bench.


def pairedRounds(rounds: int) -> Iterator[tuple[int, Setup]]:
    """
    C{(round, setup)}: in each round, each service with 1 and with 2
    workers one right after the other, so that the two runs compared share
    what the machine was doing; which goes first alternates by round.
    """
    for number in range(1, rounds + 1):
        services = ("http", "echo") if number % 2 else ("echo", "http")
        counts = (1, 2) if (number + 1) % 4 < 2 else (2, 1)
        for service in services:
            for workers in counts:
                yield number, Setup(service, workers)


@dataclass
class Run:
    """One setup in one round."""

    setup: str
    round: int
    rate: float  # requests (messages) per second
    requests: int
    serverSeconds: float
    connections: list[int] = field(default_factory=list)
    # Cores' worth of CPU used by neither the server nor the load generator
    # (interrupts included): above a few tenths, the run was noisy.
    othersCPU: float = 0.0
    errors: int = 0

    @property
    def cpuPerRequest(self) -> float:
        """Server CPU microseconds per request."""
        return self.serverSeconds / max(1, self.requests) * 1e6


def waitForWorkers(server: Server, count: int, seen: list[int]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while len(seen) < count:
        server.checkAlive()
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{count} workers did not all serve:\n" + "\n".join(server.tail)
            )
        time.sleep(0.05)


@contextlib.contextmanager
def serving(setup: Setup) -> Iterator[tuple[Server, tuple[str, int]]]:
    """C{setup}'s server, unpinned, once every one of its workers serves."""
    seen: list[int] = []

    def onLine(line: str) -> None:
        if _SERVING.search(line):
            seen.append(1)

    with running(
        setup.contender(), cpuPlan(pin=False), listening("tcp"), onLine=onLine
    ) as server:
        address = server.waitReady()
        if setup.workers > 1:
            waitForWorkers(server, setup.workers, seen)
        yield server, address


def measureHttp(setup: Setup, number: int, options: argparse.Namespace) -> Run:
    with serving(setup) as (server, address):
        checkResponse(address)
        url = f"http://{address[0]}:{address[1]}/"
        subprocess.run(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{options.warmup}s", url],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=options.warmup + 30,
            preexec_fn=dieWithParent,
        )
        before, busyBefore, wrkBefore = (
            treeCPU(server.pid),
            machineBusy(),
            childrenCPU(),
        )
        started = time.monotonic()
        wrk = subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{CONNECTIONS}",
                f"-d{options.duration}s",
                "--latency",
                url,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=dieWithParent,
        )
        time.sleep(options.duration / 2)
        connections = spread(server.pid, address[1])
        output, errors = wrk.communicate(timeout=options.duration + 30)
        used = treeCPU(server.pid) - before
        others = machineBusy() - busyBefore - used - (childrenCPU() - wrkBefore)
        elapsed = time.monotonic() - started
        server.checkAlive()
    if wrk.returncode != 0:
        raise RuntimeError(f"wrk failed ({wrk.returncode}):\n{errors}")
    result = parseWrk(output)
    return Run(
        setup.name,
        number,
        result.requestsPerSecond,
        result.requests,
        used,
        connections,
        max(0.0, others) / elapsed,
        result.socketErrors + result.non2xx,
    )


def measureEcho(setup: Setup, number: int, options: argparse.Namespace) -> Run:
    with serving(setup) as (server, address):
        checkEcho(address)
        told = {
            "host": address[0],
            "port": address[1],
            "server-pid": server.pid,
            "warmup": options.warmup,
            "duration": options.duration,
        }
        arguments = [word for k, v in told.items() for word in (f"--{k}", str(v))]
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "generate", *arguments],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=options.warmup + options.duration + 30,
            preexec_fn=dieWithParent,
        )
        server.checkAlive()
    if result.returncode != 0:
        raise RuntimeError(f"the echo generator failed:\n{result.stderr}")
    found = json.loads(result.stdout)
    return Run(
        setup.name,
        number,
        found["rate"],
        found["requests"],
        found["serverSeconds"],
        found["connections"],
        found["othersCPU"],
    )


@dataclass
class Summary:
    """Medians of one setup's runs."""

    setup: str
    rate: float
    cpuPerRequest: float
    spreads: list[list[int]]
    errors: int


def summarize(setup: Setup, runs: list[Run]) -> Summary:
    mine = [run for run in runs if run.setup == setup.name]
    return Summary(
        setup.name,
        median(run.rate for run in mine),
        median(run.cpuPerRequest for run in mine),
        [run.connections for run in mine],
        sum(run.errors for run in mine),
    )


def quietRatios(runs: list[Run], service: str) -> list[float]:
    """
    2 workers / 1 worker, round by round, for the rounds in which neither
    run shared the machine with more than L{QUIET} of a core's worth of
    other work.
    """
    byRound: dict[int, dict[int, Run]] = {}
    for run in runs:
        setup, _, workers = run.setup.partition(" --workers ")
        if setup == service:
            byRound.setdefault(run.round, {})[int(workers)] = run
    return [
        pair[2].rate / pair[1].rate
        for pair in byRound.values()
        if len(pair) == 2 and max(pair[1].othersCPU, pair[2].othersCPU) <= QUIET
    ]


def table(summaries: dict[str, Summary], runs: list[Run]) -> str:
    lines = [
        f"{'setup':<18} {'req/s':>10} {'server CPU us/req':>18}  "
        "connections per process",
        "-" * 78,
    ]
    for summary in summaries.values():
        lines.append(
            f"{summary.setup:<18} {summary.rate:>10,.0f} "
            f"{summary.cpuPerRequest:>18.1f}  "
            + " ".join("/".join(map(str, s)) for s in summary.spreads)
        )
    lines.append("")
    for service in ("http", "echo"):
        one, two = (
            summaries[f"{service} --workers 1"],
            summaries[f"{service} --workers 2"],
        )
        ratio = two.rate / one.rate
        verdict = "meets" if ratio >= GOAL else "misses"
        lines.append(
            f"{service}: 2 workers / 1 = {ratio:.2f}x throughput ({verdict} the "
            f"{GOAL}x goal), {two.cpuPerRequest / one.cpuPerRequest:.2f}x CPU "
            "per request"
        )
        quiet = quietRatios(runs, service)
        lines.append(
            f"  rounds with others under {QUIET} CPU in both runs: "
            + (f"median {median(quiet):.2f}x (" if quiet else "none")
            + ", ".join(f"{r:.2f}x" for r in quiet)
            + (")" if quiet else "")
        )
        calm = {
            workers: [
                run
                for run in runs
                if run.setup == f"{service} --workers {workers}"
                and run.othersCPU <= QUIET
            ]
            for workers in (1, 2)
        }
        if calm[1] and calm[2]:
            rates = {w: median(run.rate for run in calm[w]) for w in (1, 2)}
            cpu = {w: median(run.cpuPerRequest for run in calm[w]) for w in (1, 2)}
            lines.append(
                f"  runs with others under {QUIET} CPU ({len(calm[1])} and "
                f"{len(calm[2])}, not paired): {rates[1]:,.0f} and "
                f"{rates[2]:,.0f}/s, {rates[2] / rates[1]:.2f}x; CPU per "
                f"request {cpu[1]:.1f} and {cpu[2]:.1f} us"
            )
    return "\n".join(lines)


def workloads(summaries: dict[str, Summary]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for service, unit in (("http", "req/s"), ("echo", "msg/s")):
        one, two = (
            summaries[f"{service} --workers 1"],
            summaries[f"{service} --workers 2"],
        )
        found.append(
            {
                "name": f"{service}, 2 workers (unpinned, load shares the cores)",
                "metric": unit,
                "higherIsBetter": True,
                "ours": two.rate,
                "baselines": {"--workers 1": one.rate},
            }
        )
        found.append(
            {
                "name": f"{service}, 2 workers, server CPU per request",
                "metric": "us",
                "higherIsBetter": False,
                "ours": two.cpuPerRequest,
                "baselines": {"--workers 1": one.cpuPerRequest},
            }
        )
    return found


def parseArguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="--workers 1 against --workers 2.")
    parser.add_argument(
        "mode", nargs="?", default="bench", choices=["bench", "generate"]
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument("--duration", type=int, default=3, help="seconds per run (3)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before (1)")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1+2 s")
    parser.add_argument("--json", type=Path, help="also write the workloads here")
    parser.add_argument("--results", type=Path, default=RESULTS)
    # generate mode
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--server-pid", type=int, default=0)
    options = parser.parse_args(argv)
    if options.quick:
        options.rounds, options.duration, options.warmup = 2, 2, 1
    if not (1 <= options.rounds <= 50 and 1 <= options.duration <= 60):
        parser.error("--rounds must be 1-50 and --duration 1-60")
    if not 0 <= options.warmup <= 30:
        parser.error("--warmup must be 0-30")
    return options


def main(argv: list[str]) -> int:
    options = parseArguments(argv)
    if options.mode == "generate":
        generate(options)
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("workers_bench: wrk not found on PATH")
    stopOnTerm("workers_bench")
    perRun = START_TIMEOUT + options.warmup + options.duration + 30 + STOP_TIMEOUT
    print(
        f"workers_bench: {options.rounds} rounds x {len(SETUPS)} setups, "
        f"{options.warmup}+{options.duration} s each, on "
        f"{len(os.sched_getaffinity(0))} CPUs, nothing pinned (the load "
        "generator shares the cores)",
        flush=True,
    )
    runs: list[Run] = []
    with watchdog("workers_bench", options.rounds * len(SETUPS) * perRun + 60):
        for number, setup in pairedRounds(options.rounds):
            measure = measureHttp if setup.service == "http" else measureEcho
            run = measure(setup, number, options)
            runs.append(run)
            print(
                f"  round {number} {setup.name:<16} {run.rate:>9,.0f}/s  "
                f"{run.cpuPerRequest:6.1f} us CPU/req  connections {run.connections}  "
                f"others {run.othersCPU:.2f} CPU",
                flush=True,
            )
    summaries = {setup.name: summarize(setup, runs) for setup in SETUPS}
    print()
    print(table(summaries, runs))
    writeResults(
        options.results,
        "workers",
        {
            "rounds": options.rounds,
            "duration": options.duration,
            "warmup": options.warmup,
            "connections": CONNECTIONS,
            "pinned": False,
        },
        medians=[asdict(s) for s in summaries.values()],
        runs=[asdict(run) for run in runs],
    )
    if options.json:
        writeWorkloads(options.json, workloads(summaries))
    return 1 if any(s.errors for s in summaries.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit("workers_bench: interrupted")
