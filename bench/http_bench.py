"""
HTTP hello-world benchmark, run by hand (not in CI):

    .venv/bin/python bench/http_bench.py [--rounds 5] [--duration 5]
        [--warmup 1] [--aiohttp-uvloop] [--no-ceiling] [--quick] [--json PATH]
    .venv/bin/python bench/http_bench.py --micro

For each contender, round by round: start the server on CPU 0 with
C{taskset}, check that it answers C{GET /} with C{200 Hello World}, run a
short C{wrk} warm-up and then C{wrk -t1 -c50 -d<N>s --latency} on CPU 1
(keep-alive, 50 connections), record requests/s, p99 latency and the CPU
both sides used, and stop the server. The contenders are this service
(C{twistd -n http --no-access-log}, and with its access log on to a file),
C{twisted.web.server.Site} and aiohttp
(plain asyncio unless C{--aiohttp-uvloop}) serving the same body, and a
ceiling that writes fixed bytes without parsing (uvloop), which shows how far
one C{wrk} thread can drive a server on its own core.

The contenders are interleaved in every round, so slow drifts of a noisy
machine hit them all alike; the table gives medians over the rounds and the
ratios of ours to each baseline, and the raw numbers go to
C{bench/results/http-<time>.json}.

Everything is bounded in time (start-up, each C{wrk} run, each stop, and a
watchdog over the whole run); every server is killed on the way out, and
dies with this process should it be killed. Loopback only. Exits non-zero if
C{taskset}, C{wrk} or a second CPU is missing, or if any run failed.

C{--micro} measures instead, with no network, the CPU time per request of
the protocol with the access log off and on (see L{microCost}): what the
log costs, in a figure a busy machine hardly moves.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import (
    BASELINES,
    HOST,
    RESULTS,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Contender,
    CpuPlan,
    childrenCPU,
    cpuPlan,
    cpuSeconds,
    dieWithParent,
    interleave,
    median,
    running,
    stopOnTerm,
    twistdCommand,
    watchdog,
    withMetrics,
    writeResults,
    writeWorkloads,
)

BODY = b"Hello World"
CONNECTIONS = 50
OURS = "ours"
OURS_METRICS = "ours+metrics"
OURS_LOG = "ours+log"
# The access log of the ours+log contender: a file, so its cost is our
# writer's and not that of whoever reads the server's stdout.
ACCESS_LOG = Path(tempfile.gettempdir()) / f"http_bench-{os.getpid()}-access.log"
CEILING = "ceiling"
# A core's share stolen or used by other processes that makes a run noisy.
NOISY = 0.15


def contenders(options: argparse.Namespace) -> list[Contender]:
    python = sys.executable
    aiohttp = [python, str(BASELINES / "aiohttp_hello.py"), "--interface", HOST]
    if options.aiohttp_uvloop:
        aiohttp.append("--uvloop")
    ours = Contender(
        OURS,
        "twistd -n http --no-access-log",
        twistdCommand("http", "--port", "0", "--interface", HOST, "--no-access-log"),
    )
    found = [
        ours,
        withMetrics(ours, OURS_METRICS),
        Contender(
            OURS_LOG,
            "twistd -n http --access-log FILE (the access log on)",
            twistdCommand(
                "http",
                "--port",
                "0",
                "--interface",
                HOST,
                "--access-log",
                str(ACCESS_LOG),
            ),
        ),
        Contender(
            "twisted.web",
            "twisted.web.server.Site, no access log",
            [python, str(BASELINES / "twisted_web_hello.py"), "--interface", HOST],
        ),
        Contender(
            "aiohttp",
            "aiohttp, " + ("uvloop" if options.aiohttp_uvloop else "asyncio"),
            aiohttp,
        ),
    ]
    if not options.no_ceiling:
        found.append(
            Contender(
                CEILING,
                "fixed bytes, no parsing, uvloop",
                [python, str(BASELINES / "static_hello.py"), "--interface", HOST],
            )
        )
    return found


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="wrk benchmark: the http service against twisted.web and aiohttp."
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds of wrk per run (5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of wrk before each run (1)"
    )
    parser.add_argument(
        "--aiohttp-uvloop", action="store_true", help="run aiohttp on uvloop"
    )
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the fixed-bytes ceiling"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where the JSON goes"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 2 rounds of 1+3 s"
    )
    parser.add_argument(
        "--json", type=Path, help="also write the workloads here (for run_all.py)"
    )
    parser.add_argument(
        "--micro",
        action="store_true",
        help="instead: CPU time per request in this process, log off and on",
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.rounds, options.duration, options.warmup = 2, 3, 1
    if not (1 <= options.rounds <= 50 and 1 <= options.duration <= 120):
        parser.error("--rounds must be 1-50 and --duration 1-120")
    if not 0 <= options.warmup <= 30:
        parser.error("--warmup must be 0-30")
    return options


def coreTicks(cpu: int) -> list[int]:
    """
    Ticks of CPU C{cpu} since boot from /proc/stat: user, nice, system,
    idle, iowait, irq, softirq, steal.
    """
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                return [int(count) for count in line.split()[1:9]]
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


@dataclass
class CoreShares:
    """How one core's time went during a run, as fractions of it."""

    steal: float  # taken by the hypervisor
    interrupts: float  # irq and softirq: mostly the loopback network stack
    others: float  # processes other than the one pinned there

    @property
    def noise(self) -> float:
        return self.steal + self.others


def coreShares(before: list[int], after: list[int], ownSeconds: float) -> CoreShares:
    """The shares of a core from two L{coreTicks}, its own process aside."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        new - old for new, old in zip(after, before, strict=True)
    )
    total = max(1, user + nice + system + idle + iowait + irq + softirq + steal)
    own = ownSeconds * os.sysconf("SC_CLK_TCK")
    return CoreShares(
        steal=steal / total,
        interrupts=(irq + softirq) / total,
        others=max(0.0, (user + nice + system - own) / total),
    )


def checkResponse(address: tuple[str, int]) -> int:
    """
    Fail unless C{GET /} answers C{200} and exactly L{BODY} on a keep-alive
    connection; return the response's size in bytes, head included (what
    wrk moves per request).
    """
    with socket.create_connection(address, timeout=5.0) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        response = b""
        deadline = time.monotonic() + 5.0
        for _ in range(1000):
            head, found, body = response.partition(b"\r\n\r\n")
            length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
            if found and length and len(body) >= int(length[1]):
                break
            client.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = client.recv(65536)
            if not chunk:
                break
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 ") or body != BODY:
        raise RuntimeError(f"unexpected response to GET /: {response[:500]!r}")
    return len(response)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


@dataclass
class WrkResult:
    """What one wrk run measured."""

    requestsPerSecond: float
    p50: float  # milliseconds
    p99: float
    requests: int
    socketErrors: int
    non2xx: int


def parseWrk(output: str) -> WrkResult:
    """Requests/s, latency percentiles and errors from C{wrk --latency} output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    total = re.search(r"(\d+) requests in", output)
    if not (rate and p50 and p99 and total):
        raise RuntimeError("cannot parse wrk output:\n" + output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requestsPerSecond=float(rate[1]),
        p50=milliseconds(p50[1]),
        p99=milliseconds(p99[1]),
        requests=int(total[1]),
        socketErrors=sum(int(count) for count in errors.groups()) if errors else 0,
        non2xx=int(non2xx[1]) if non2xx else 0,
    )


def runWrk(plan: CpuPlan, address: tuple[str, int], seconds: int, latency: bool) -> str:
    command = [*plan.loadPrefix, "wrk", "-t1", f"-c{CONNECTIONS}"]
    command += [f"-d{seconds}s", "--timeout", "2s"]
    if latency:
        command.append("--latency")
    command.append(f"http://{address[0]}:{address[1]}/")
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        preexec_fn=dieWithParent,
    )
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


@dataclass
class Run:
    """One contender in one round."""

    contender: str
    round: int
    result: WrkResult
    responseBytes: int
    serverCPU: float  # fraction of one CPU during the measured run
    wrkCPU: float
    # Either core stolen or busy with other processes means the machine,
    # not the contender, set the pace.
    serverCore: CoreShares
    wrkCore: CoreShares


def measure(
    contender: Contender,
    number: int,
    options: argparse.Namespace,
    plan: CpuPlan,
) -> Run:
    serverCPU, wrkCPU = plan.serverCPU, plan.loadCPU
    assert serverCPU is not None and wrkCPU is not None
    with running(contender, plan) as server:
        address = server.waitReady()
        size = checkResponse(address)
        if options.warmup:
            runWrk(plan, address, options.warmup, latency=False)
        serverBefore, wrkBefore = cpuSeconds(server.pid), childrenCPU()
        serverCoreBefore, wrkCoreBefore = coreTicks(serverCPU), coreTicks(wrkCPU)
        started = time.monotonic()
        output = runWrk(plan, address, options.duration, latency=True)
        elapsed = time.monotonic() - started
        serverUsed = cpuSeconds(server.pid) - serverBefore
        wrkUsed = childrenCPU() - wrkBefore
        serverCore = coreShares(serverCoreBefore, coreTicks(serverCPU), serverUsed)
        wrkCore = coreShares(wrkCoreBefore, coreTicks(wrkCPU), wrkUsed)
        server.checkAlive()
    if contender.name == OURS_LOG:
        # A fresh file each run; a run that dropped lines did not log them
        # all, and would flatter the log.
        ACCESS_LOG.unlink(missing_ok=True)
        if any("access log is behind" in line for line in server.tail):
            raise RuntimeError(
                "ours+log dropped access log lines:\n" + "\n".join(server.tail)
            )
    return Run(
        contender.name,
        number,
        parseWrk(output),
        size,
        serverUsed / elapsed,
        wrkUsed / elapsed,
        serverCore,
        wrkCore,
    )


@dataclass
class Summary:
    """Medians over the rounds for one contender."""

    contender: str
    description: str
    requestsPerSecond: float
    p99: float
    p50: float
    serverCPU: float
    wrkCPU: float
    serverCore: CoreShares
    wrkCore: CoreShares
    responseBytes: int
    errors: int
    rounds: list[float] = field(default_factory=list)  # req/s per round
    cpuRounds: list[float] = field(default_factory=list)  # server CPU per round


def medianShares(shares: list[CoreShares]) -> CoreShares:
    return CoreShares(
        steal=median(share.steal for share in shares),
        interrupts=median(share.interrupts for share in shares),
        others=median(share.others for share in shares),
    )


def summarize(contender: Contender, runs: list[Run]) -> Summary:
    mine = [run for run in runs if run.contender == contender.name]
    return Summary(
        contender=contender.name,
        description=contender.description,
        requestsPerSecond=median(r.result.requestsPerSecond for r in mine),
        p99=median(r.result.p99 for r in mine),
        p50=median(r.result.p50 for r in mine),
        serverCPU=median(r.serverCPU for r in mine),
        wrkCPU=median(r.wrkCPU for r in mine),
        serverCore=medianShares([r.serverCore for r in mine]),
        wrkCore=medianShares([r.wrkCore for r in mine]),
        responseBytes=mine[0].responseBytes,
        errors=sum(r.result.socketErrors + r.result.non2xx for r in mine),
        rounds=[r.result.requestsPerSecond for r in mine],
        cpuRounds=[r.serverCPU for r in mine],
    )


def ratios(summaries: list[Summary], mine: str = OURS) -> dict[str, dict[str, float]]:
    """
    C{mine} (ours, with the access log off or on) against each baseline: the
    ratio of the medians, and the lowest and highest of the per-round ratios
    (the spread the noise allows). With the log on, ours with it off is one
    of the baselines.
    """
    byName = {summary.contender: summary for summary in summaries}
    ours = byName[mine]
    found = {}
    for summary in summaries:
        if summary.contender in (mine, OURS_LOG, CEILING):
            continue
        perRound = [
            mine / theirs
            for mine, theirs in zip(ours.rounds, summary.rounds, strict=True)
        ]
        found[summary.contender] = {
            "requestsPerSecond": ours.requestsPerSecond / summary.requestsPerSecond,
            "p99": ours.p99 / summary.p99,
            "lowestRound": min(perRound),
            "highestRound": max(perRound),
        }
    return found


def logCostRatio(summaries: list[Summary]) -> str:
    """
    Requests per second of server CPU with the access log on over off: the
    ratio of the medians, and the lowest and highest per-round ratio.
    """
    byName = {summary.contender: summary for summary in summaries}

    def perCPU(summary: Summary) -> list[float]:
        return [
            rate / cpu if cpu else 0.0
            for rate, cpu in zip(summary.rounds, summary.cpuRounds, strict=True)
        ]

    on, off = perCPU(byName[OURS_LOG]), perCPU(byName[OURS])
    perRound = [mine / theirs for mine, theirs in zip(on, off, strict=True) if theirs]
    if not perRound or not median(off):
        return "-"
    return f"{median(on) / median(off):.2f}x ({min(perRound):.2f}-{max(perRound):.2f})"


def table(
    summaries: list[Summary],
    found: dict[str, dict[str, float]],
    options: argparse.Namespace,
) -> str:
    lines = [
        f"http hello-world: wrk -t1 -c{CONNECTIONS} -d{options.duration}s "
        f"(keep-alive), server on one CPU, wrk on another; medians of "
        f"{options.rounds} interleaved rounds",
        "",
        f"  {'contender':<12} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'bytes':>6}  {'ours/this req/s (rounds)':>24}  {'ours/this p99':>13}",
    ]
    for summary in summaries:
        ratio = found.get(summary.contender)
        if ratio:
            rates = (
                f"{ratio['requestsPerSecond']:.2f}x "
                f"({ratio['lowestRound']:.2f}-{ratio['highestRound']:.2f})"
            )
            p99 = f"{ratio['p99']:.2f}x"
        else:
            rates = p99 = ""
        lines.append(
            f"  {summary.contender:<12} {summary.requestsPerSecond:>9,.0f} "
            f"{summary.p50:>7.2f} {summary.p99:>7.2f} "
            f"{summary.responseBytes:>6}  {rates:>24}  {p99:>13}"
        )
    lines += [
        "",
        "  where the CPU went (medians, shares of one core): the processes, then",
        "  each core's time stolen by the hypervisor, in interrupts (loopback",
        "  networking) and used by other processes",
        f"  {'contender':<12} {'server':>6} {'wrk':>6}  {'srv steal':>9} "
        f"{'srv irq':>7} {'srv others':>10}  {'wrk steal':>9} {'wrk others':>10}",
    ]
    for summary in summaries:
        server, wrk = summary.serverCore, summary.wrkCore
        lines.append(
            f"  {summary.contender:<12} {summary.serverCPU:>6.0%} "
            f"{summary.wrkCPU:>6.0%}  {server.steal:>9.0%} "
            f"{server.interrupts:>7.0%} {server.others:>10.0%}  "
            f"{wrk.steal:>9.0%} {wrk.others:>10.0%}"
        )
    lines.append("")
    for summary in summaries:
        lines.append(f"  {summary.contender:<12} {summary.description}")
    lines.append("")
    noisy = [
        s.contender
        for s in summaries
        if max(s.serverCore.noise, s.wrkCore.noise) > NOISY
    ]
    if noisy:
        lines.append(
            f"  WARNING: more than {NOISY:.0%} of a core was stolen or used by "
            f"other processes for {', '.join(noisy)}: the machine was not "
            "quiet, so take these numbers loosely and run again"
        )
    errors = [s.contender for s in summaries if s.errors]
    if errors:
        lines.append(f"  socket errors or non-2xx responses: {', '.join(errors)}")
    logged = ratios(summaries, OURS_LOG)
    lines.append(
        "  with the access log on (ours+log) against: "
        + ", ".join(
            f"{name} {ratio['requestsPerSecond']:.2f}x "
            f"({ratio['lowestRound']:.2f}-{ratio['highestRound']:.2f})"
            for name, ratio in logged.items()
        )
        + f" (goals: >= 0.85x {OURS}, >= 2x twisted.web)"
    )
    lines.append(
        "  per second of server CPU (what one request costs it, which a busy "
        f"machine disturbs less): ours+log/ours {logCostRatio(summaries)}"
    )
    fastest = max(
        (s for s in summaries if s.contender != CEILING),
        key=lambda s: s.requestsPerSecond,
    )
    ceiling = next((s for s in summaries if s.contender == CEILING), None)
    if ceiling is not None:
        best = max(ceiling.rounds)
        lines.append(
            f"  wrk headroom: the same single wrk thread reached {best:,.0f} req/s "
            f"against the ceiling (best round), "
            f"{best / fastest.requestsPerSecond:.1f}x the fastest contender's "
            f"median ({fastest.contender}), using {fastest.wrkCPU:.0%} of its "
            f"core for that one"
        )
    return "\n".join(lines)


def workloads(summaries: list[Summary]) -> list[dict[str, object]]:
    """The medians in the form C{bench/run_all.py} collects."""
    byName = {summary.contender: summary for summary in summaries}
    baselines = [name for name in byName if name not in (OURS, OURS_LOG, CEILING)]
    label = f"http hello-world, wrk {CONNECTIONS} conns"
    rates = {name: byName[name].requestsPerSecond for name in baselines}
    if CEILING in byName:
        # Not a contender: the headroom of the load generator.
        rates["ceiling"] = byName[CEILING].requestsPerSecond
    return [
        {
            "name": label,
            "metric": "req/s",
            "higherIsBetter": True,
            "ours": byName[OURS].requestsPerSecond,
            "baselines": rates,
        },
        {
            "name": label + ", access log on",
            "metric": "req/s",
            "higherIsBetter": True,
            "ours": byName[OURS_LOG].requestsPerSecond,
            "baselines": {**rates, "ours, log off": byName[OURS].requestsPerSecond},
        },
        {
            "name": label,
            "metric": "p99 ms",
            "higherIsBetter": False,
            "ours": byName[OURS].p99,
            "baselines": {name: byName[name].p99 for name in baselines},
        },
    ]


# What wrk sends, request after request on each connection.
WRK_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"


def microCost(count: int = 4000, repeats: int = 60) -> dict[str, float]:
    """
    CPU microseconds per keep-alive C{GET /} (what wrk sends) handled by the
    protocol in this process, on an in-memory transport: with the access log
    off, and on (a real L{AccessLog} to a file, its writer thread's CPU
    included). Repeats interleave the two; each figure is the least
    disturbed (minimum) run, so a busy machine hardly moves it.
    """
    from twisted.internet import reactor

    from twisted_services.http.accesslog import AccessLog
    from twisted_services.http.protocol import HTTPFactory
    from twisted_services.testing import connect

    with tempfile.TemporaryDirectory() as directory:
        accessLog = AccessLog(reactor, os.path.join(directory, "access.log"))
        accessLog.startService()
        try:
            connections = {
                "off": connect(HTTPFactory(reactor)),
                "on": connect(HTTPFactory(reactor, accessLog=accessLog)),
            }
            best = {name: float("inf") for name in connections}
            for _ in range(repeats):
                for name, (protocol, transport) in connections.items():
                    receive, clear = protocol.dataReceived, transport.clear
                    started = time.process_time()
                    for _ in range(count):
                        receive(WRK_REQUEST)
                        clear()
                    # The lines still buffered are written (and paid for) now.
                    accessLog.flush()
                    used = time.process_time() - started
                    best[name] = min(best[name], used / count * 1e6)
        finally:
            accessLog.close()
        if accessLog.dropped:
            raise RuntimeError(f"the access log dropped {accessLog.dropped} lines")
    return best


def micro() -> int:
    """Print L{microCost}."""
    cpuPlan().pinSelf()
    cost = microCost()
    print(
        "http: CPU per keep-alive GET / in this process, no network (min of 60):\n"
        f"  access log off {cost['off']:.2f} us, on {cost['on']:.2f} us "
        f"(+{cost['on'] - cost['off']:.2f} us); as rates, on/off "
        f"{cost['off'] / cost['on']:.2f}x"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    options = parseArguments(argv)
    if options.micro:
        return micro()
    missing = [tool for tool in ("taskset", "wrk") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"http_bench: {' and '.join(missing)} not found on PATH")
    plan = cpuPlan().require("http_bench", "wrk")
    everyone = contenders(options)
    perRun = START_TIMEOUT + options.warmup + options.duration + 30 + STOP_TIMEOUT
    stopOnTerm("http_bench")
    print(
        f"http_bench: {options.rounds} rounds x {len(everyone)} contenders, "
        f"{options.warmup}+{options.duration} s each; server on CPU "
        f"{plan.serverCPU}, wrk on CPU {plan.loadCPU}",
        flush=True,
    )
    runs: list[Run] = []
    with watchdog("http_bench", options.rounds * len(everyone) * perRun + 60):
        for number, contender in interleave(options.rounds, everyone):
            run = measure(contender, number, options, plan)
            runs.append(run)
            print(
                f"  round {number} {contender.name:<12} "
                f"{run.result.requestsPerSecond:>9,.0f} req/s  "
                f"p99 {run.result.p99:.2f} ms  "
                f"server {run.serverCPU:.0%} wrk {run.wrkCPU:.0%} CPU  "
                f"(stolen {run.serverCore.steal:.0%}/{run.wrkCore.steal:.0%}, "
                f"others {run.serverCore.others:.0%}/{run.wrkCore.others:.0%})",
                flush=True,
            )
    summaries = [summarize(contender, runs) for contender in everyone]
    found = ratios(summaries)
    ACCESS_LOG.unlink(missing_ok=True)
    print()
    print(table(summaries, found, options))

    writeResults(
        options.results,
        "http",
        {
            "rounds": options.rounds,
            "duration": options.duration,
            "warmup": options.warmup,
            "connections": CONNECTIONS,
            "wrkThreads": 1,
            "serverCPU": plan.serverCPU,
            "wrkCPU": plan.loadCPU,
        },
        contenders=[asdict(contender) for contender in everyone],
        medians=[asdict(summary) for summary in summaries],
        ratios=found,
        runs=[asdict(run) for run in runs],
    )
    if options.json:
        writeWorkloads(options.json, workloads(summaries))
    return 1 if any(summary.errors for summary in summaries) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        # The servers were stopped on the way out (finally blocks).
        sys.exit("http_bench: interrupted")
