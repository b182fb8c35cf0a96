"""
Echo benchmark, run by hand or by C{bench/run_all.py} (not in CI):

    .venv/bin/python bench/echo_bench.py [--quick] [--rounds 5] [--duration 2]
        [--idle-connections 10000] [--json PATH]

Two workloads, each against this service (C{twistd -n echo}) and baselines:

 - ping-pong: 1 and 50 connections x 64 B and 16 KiB messages; every
   connection sends its next message when the previous one has come back
   whole. Messages/s, MB/s (payload one way), p50/p99 round-trip latency.
   Baselines: the 5-line Twisted echo, an asyncio C{Protocol} echo, the same
   on uvloop.
 - idle: N connections (10,000 or as many as the descriptor limit allows)
   held open by a separate client process, each having echoed one byte; the
   server's (VmRSS after - VmRSS before) / N. Baselines: the 5-line Twisted
   echo and uvloop.

The servers run on CPU 0 and the load generator, this same script in
C{generate} or C{hold} mode on uvloop, on CPU 1 (C{taskset}). Contenders
are interleaved round by round and the tables give medians; the CPU columns
show whether the server (near 100%) or the generator set the pace.

Everything is bounded: start-up, each generator run, each stop, and a
watchdog over the whole run; servers are killed by pid on the way out and
die with this process should it be killed. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from harness import (
    BASELINES,
    HOST,
    RESULTS,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Contender,
    CpuPlan,
    cpuPlan,
    cpuSeconds,
    dieWithParent,
    interleave,
    median,
    medianOf,
    percentile,
    raiseDescriptorLimit,
    rss,
    running,
    stopOnTerm,
    twistdCommand,
    watchdog,
    withMetrics,
    writeResults,
    writeWorkloads,
)

OURS = "ours"
OURS_METRICS = "ours+metrics"
MINIMAL = "twisted-minimal"
UVLOOP = "uvloop"
# (connections, message bytes)
PINGPONG = [(1, 64), (50, 64), (1, 16384), (50, 16384)]
IDLE_CONTENDERS = (OURS, MINIMAL, UVLOOP)
# Descriptors each process keeps for itself beside the connections.
SPARE_DESCRIPTORS = 200
# Connections the idle client opens at once: below every contender's
# listen backlog (Twisted's is 50), so no SYN is dropped and retried.
CONNECT_BATCH = 40
# Share of a core used by other processes that makes a run noisy.
NOISY = 0.15


def contenders() -> list[Contender]:
    python = sys.executable
    echo = str(BASELINES / "echo_asyncio.py")
    ours = Contender(
        OURS,
        "twistd -n echo",
        twistdCommand(
            "echo", "--port", "0", "--interface", HOST, "--max-connections", "30000"
        ),
    )
    return [
        ours,
        withMetrics(ours, OURS_METRICS),
        Contender(
            MINIMAL,
            "5-line Twisted echo (Protocol.dataReceived -> transport.write)",
            [python, str(BASELINES / "echo_twisted_minimal.py"), "0"],
        ),
        Contender("asyncio", "asyncio Protocol echo", [python, echo, "0"]),
        Contender(
            UVLOOP,
            "asyncio Protocol echo on uvloop",
            [python, echo, "0", "--uvloop"],
        ),
    ]


def busySeconds() -> float:
    """CPU seconds spent in user and system mode by all cores, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(tick) for tick in stat.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2]) / os.sysconf("SC_CLK_TCK")


def openDescriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# The load generator: runs as a separate process on its own CPU.


class _Load:
    """Shared state of one ping-pong workload in the generator."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.message = os.urandom(size)
        self.sending = True
        self.measuring = False
        self.busy = 0
        self.latencies: list[float] = []
        self.drained: asyncio.Future[None] | None = None


class PingPong(asyncio.Protocol):
    """Sends a message, waits for all of it to come back, sends the next."""

    def __init__(self, load: _Load) -> None:
        self.load = load
        self.transport: asyncio.WriteTransport | None = None
        self.pending = 0
        self.sentAt = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.load.busy += 1
        self.pending = self.load.size
        self.sentAt = time.perf_counter()
        self.transport.write(self.load.message)

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        if self.pending > 0:
            return
        load = self.load
        load.busy -= 1
        if load.measuring:
            load.latencies.append(time.perf_counter() - self.sentAt)
        if load.sending:
            self.send()
        elif load.busy == 0 and load.drained and not load.drained.done():
            load.drained.set_result(None)


async def connectAll(
    load: _Load, host: str, port: int, connections: int
) -> list[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]:
    """Open C{connections} ping-pong clients sharing C{load}; they start at once."""
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(
        asyncio.gather(
            *(
                loop.create_connection(lambda: PingPong(load), host, port)
                for _ in range(connections)
            )
        ),
        10.0,
    )


async def stopAll(
    load: _Load, made: list[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]
) -> None:
    """Let the messages in flight come back, then close every client."""
    load.sending = False
    load.drained = asyncio.get_running_loop().create_future()
    if load.busy:
        await asyncio.wait_for(load.drained, 10.0)
    for transport, _ in made:
        transport.close()


async def pingPong(
    host: str,
    port: int,
    serverPid: int,
    connections: int,
    size: int,
    warmup: float,
    duration: float,
) -> dict[str, float]:
    load = _Load(size)
    made = await connectAll(load, host, port, connections)
    await asyncio.sleep(warmup)
    serverBefore, mineBefore = cpuSeconds(serverPid), time.process_time()
    busyBefore = busySeconds()
    started = time.perf_counter()
    load.measuring = True
    await asyncio.sleep(duration)
    load.measuring = False
    elapsed = time.perf_counter() - started
    serverUsed = cpuSeconds(serverPid) - serverBefore
    mineUsed = time.process_time() - mineBefore
    # User and system time of everything but the two of us (interrupts,
    # where loopback networking goes, are not counted): another process
    # competing for the cores makes the run noisy.
    othersUsed = max(0.0, busySeconds() - busyBefore - serverUsed - mineUsed)
    await stopAll(load, made)
    ordered = sorted(load.latencies)
    if not ordered:
        raise RuntimeError("no message came back during the measured run")
    return {
        "connections": connections,
        "size": size,
        "messages": len(ordered),
        "messagesPerSecond": len(ordered) / elapsed,
        "megabytesPerSecond": len(ordered) * size / elapsed / 1e6,
        "p50": percentile(ordered, 0.50) * 1e3,
        "p99": percentile(ordered, 0.99) * 1e3,
        "serverCPU": serverUsed / elapsed,
        "generatorCPU": mineUsed / elapsed,
        "othersCPU": othersUsed / elapsed,
    }


async def generate(options: argparse.Namespace) -> None:
    for connections, size in PINGPONG:
        result = await pingPong(
            options.host,
            options.port,
            options.server_pid,
            connections,
            size,
            options.warmup,
            options.duration,
        )
        print(json.dumps(result), flush=True)
        await asyncio.sleep(0.05)  # let the server see the closes


class Idle(asyncio.Protocol):
    """Echoes one byte once connected, then sits idle."""

    def __init__(self, echoed: asyncio.Future[None]) -> None:
        self.echoed = echoed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        # Reset on close, so that no TIME_WAIT lingers between contenders.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.write(b"x")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.echoed.done():
            self.echoed.set_result(None)


async def hold(options: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    transports = []
    failed = 0
    started = time.monotonic()
    for first in range(0, options.count, CONNECT_BATCH):
        batch = min(CONNECT_BATCH, options.count - first)
        echoed = [loop.create_future() for _ in range(batch)]
        made = await asyncio.gather(
            *(
                asyncio.wait_for(
                    loop.create_connection(
                        lambda e=e: Idle(e), options.host, options.port
                    ),
                    10.0,
                )
                for e in echoed
            ),
            return_exceptions=True,
        )
        for result in made:
            if isinstance(result, BaseException):
                failed += 1
            else:
                transports.append(result[0])
        if failed:
            break
        await asyncio.wait_for(asyncio.gather(*echoed[: len(made)]), 10.0)
    print(
        json.dumps(
            {
                "opened": len(transports),
                "failed": failed,
                "seconds": time.monotonic() - started,
            }
        ),
        flush=True,
    )
    # Hold until the bench closes our stdin (or 120 s pass).
    await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), 120.0)
    for transport in transports:
        transport.close()


def runGenerator(mode: str, options: argparse.Namespace) -> None:
    import uvloop

    raiseDescriptorLimit()
    uvloop.run(generate(options) if mode == "generate" else hold(options))


# The bench itself.


def checkEcho(address: tuple[str, int]) -> None:
    """Fail unless 16 KiB of random bytes come back unchanged."""
    message = os.urandom(16384)
    with socket.create_connection(address, timeout=5.0) as client:
        client.sendall(message)
        received = b""
        while len(received) < len(message):
            chunk = client.recv(65536)
            if not chunk:
                break
            received += chunk
    if received != message:
        raise RuntimeError(f"echo mismatch: {len(received)} bytes back")


def selfCommand(plan: CpuPlan, *arguments: str) -> list[str]:
    """This script in generator mode, on the load core."""
    return [*plan.loadPrefix, sys.executable, str(Path(__file__).resolve()), *arguments]


def measurePingPong(
    contender: Contender,
    number: int,
    options: argparse.Namespace,
    plan: CpuPlan,
) -> list[dict[str, float]]:
    with running(contender, plan) as server:
        address = server.waitReady()
        checkEcho(address)
        command = selfCommand(
            plan,
            "generate",
            "--host",
            address[0],
            "--port",
            str(address[1]),
            "--server-pid",
            str(server.pid),
            "--warmup",
            str(options.warmup),
            "--duration",
            str(options.duration),
        )
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=len(PINGPONG) * (options.warmup + options.duration + 25),
            preexec_fn=dieWithParent,
        )
        server.checkAlive()
    if result.returncode != 0:
        raise RuntimeError(
            f"generator failed against {contender.name}:\n{result.stderr}"
        )
    runs = [json.loads(line) for line in result.stdout.splitlines()]
    for run in runs:
        run.update(contender=contender.name, round=number)
    return runs


def readLine(stream, timeout: float) -> str:  # type: ignore[no-untyped-def]
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise RuntimeError(f"no answer from the idle client in {timeout:.0f}s")
    return stream.readline()


def measureIdle(
    contender: Contender, number: int, count: int, plan: CpuPlan
) -> dict[str, float]:
    with running(contender, plan) as server:
        address = server.waitReady()
        pid = server.pid
        checkEcho(address)  # the first connection's one-off costs come before
        time.sleep(0.3)
        before, fdsBefore = rss(pid), openDescriptors(pid)
        holder = subprocess.Popen(
            selfCommand(
                plan,
                "hold",
                "--host",
                address[0],
                "--port",
                str(address[1]),
                "--count",
                str(count),
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=dieWithParent,
        )
        try:
            report = json.loads(readLine(holder.stdout, 90.0))
            opened = report["opened"]
            deadline = time.monotonic() + 10.0
            while openDescriptors(pid) < fdsBefore + opened:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{contender.name} never held {opened}")
                time.sleep(0.1)
            time.sleep(0.5)
            after = rss(pid)
            server.checkAlive()
        finally:
            with contextlib.suppress(OSError):
                assert holder.stdin is not None
                holder.stdin.close()
            try:
                holder.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait(STOP_TIMEOUT)
    if not opened:
        raise RuntimeError(f"the idle client opened no connection to {contender.name}")
    return {
        "contender": contender.name,
        "round": number,
        "connections": opened,
        "failed": report["failed"],
        "connectSeconds": report["seconds"],
        "rssBefore": before,
        "rssAfter": after,
        "bytesPerConnection": (after - before) / opened,
    }


def workloadName(connections: int, size: int) -> str:
    unit = f"{size // 1024} KiB" if size >= 1024 else f"{size} B"
    return f"echo ping-pong {connections} conn x {unit}"


METRICS = [
    ("messagesPerSecond", "messages/s", True),
    ("megabytesPerSecond", "MB/s", True),
    ("p50", "p50 latency ms", False),
    ("p99", "p99 latency ms", False),
]


def pingMedian(
    runs: list[dict], connections: int, size: int, contender: str, key: str
) -> float:
    """The median of C{key} over one contender's runs of one ping-pong load."""
    return medianOf(runs, key, contender=contender, connections=connections, size=size)


def summarize(
    everyone: list[Contender], pingRuns: list[dict], idleRuns: list[dict]
) -> list[dict]:
    names = [contender.name for contender in everyone]
    workloads = []
    for connections, size in PINGPONG:
        for key, metric, higher in METRICS:
            values = {
                name: pingMedian(pingRuns, connections, size, name, key)
                for name in names
            }
            workloads.append(
                {
                    "name": workloadName(connections, size),
                    "metric": metric,
                    "higherIsBetter": higher,
                    "ours": values.pop(OURS),
                    "baselines": values,
                }
            )
    if idleRuns:
        values = {
            name: medianOf(idleRuns, "bytesPerConnection", contender=name)
            for name in IDLE_CONTENDERS
        }
        count = min(run["connections"] for run in idleRuns)
        workloads.append(
            {
                "name": f"echo idle x {count} conn",
                "metric": "server bytes/connection",
                "higherIsBetter": False,
                "ours": values.pop(OURS),
                "baselines": values,
            }
        )
    return workloads


def table(
    everyone: list[Contender],
    pingRuns: list[dict],
    idleRuns: list[dict],
    options: argparse.Namespace,
) -> str:
    lines = [
        f"echo ping-pong: medians of {options.rounds} interleaved rounds x "
        f"{options.duration:g} s (after {options.warmup:g} s warm-up); server on "
        "CPU 0, uvloop generator on CPU 1; MB/s is payload one way",
        "",
        f"  {'workload':<30} {'contender':<16} {'msg/s':>9} {'MB/s':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'srv CPU':>7} {'gen CPU':>7} {'others':>6} "
        f"{'ours/this msg/s':>15}",
    ]
    for connections, size in PINGPONG:
        pick = functools.partial(pingMedian, pingRuns, connections, size)
        ours = pick(OURS, "messagesPerSecond")
        for contender in everyone:
            name = contender.name
            rate = pick(name, "messagesPerSecond")
            ratio = "" if name == OURS else f"{ours / rate:.2f}x"
            lines.append(
                f"  {workloadName(connections, size)[15:]:<30} {name:<16} "
                f"{rate:>9,.0f} "
                f"{pick(name, 'megabytesPerSecond'):>8.1f} "
                f"{pick(name, 'p50'):>7.3f} "
                f"{pick(name, 'p99'):>7.3f} "
                f"{pick(name, 'serverCPU'):>7.0%} "
                f"{pick(name, 'generatorCPU'):>7.0%} "
                f"{pick(name, 'othersCPU'):>6.0%} "
                f"{ratio:>15}"
            )
    # Headroom: the generator's best against anyone, next to ours.
    lines.append("")
    for connections, size in PINGPONG:
        pick = functools.partial(pingMedian, pingRuns, connections, size)
        fastest = max(
            (c.name for c in everyone),
            key=lambda name: pick(name, "messagesPerSecond"),
        )
        best = pick(fastest, "messagesPerSecond")
        ours = pick(OURS, "messagesPerSecond")
        lines.append(
            f"  generator headroom, {workloadName(connections, size)[15:]}: it "
            f"drove {fastest} at {best:,.0f} msg/s ({best / ours:.2f}x ours) "
            f"using {pick(fastest, 'generatorCPU'):.0%} of its core"
        )
    noisy = median(run["othersCPU"] for run in pingRuns)
    if noisy > NOISY:
        lines.append(
            f"  WARNING: other processes used {noisy:.0%} of a core (median) "
            "during the runs: the machine was not quiet, so take these numbers "
            "loosely and run again"
        )
    if idleRuns:
        lines += [
            "",
            f"echo idle: connections held open by a separate process, server "
            f"(VmRSS after - before) / N; median of {len(idleRuns) // 3} round(s)",
            f"  {'contender':<16} {'N':>6} {'bytes/conn':>10} {'ours/this':>9}",
        ]
        ours = medianOf(idleRuns, "bytesPerConnection", contender=OURS)
        for name in IDLE_CONTENDERS:
            value = medianOf(idleRuns, "bytesPerConnection", contender=name)
            count = min(r["connections"] for r in idleRuns if r["contender"] == name)
            ratio = "" if name == OURS else f"{ours / value:.2f}x"
            lines.append(f"  {name:<16} {count:>6} {value:>10,.0f} {ratio:>9}")
        if count < options.idle_connections:
            lines.append(
                f"  NOTE: only {count} of {options.idle_connections} connections "
                "fit under the descriptor limit"
            )
    lines.append("")
    for contender in everyone:
        lines.append(f"  {contender.name:<16} {contender.description}")
    return "\n".join(lines)


def parseArguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Echo benchmark: ping-pong and idle connections."
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 3 rounds x 1 s, one idle round"
    )
    parser.add_argument("--rounds", type=int, help="ping-pong rounds (5)")
    parser.add_argument("--duration", type=float, help="seconds per run (2)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds (0.5)")
    parser.add_argument("--idle-rounds", type=int, help="idle rounds (3)")
    parser.add_argument(
        "--idle-connections",
        type=int,
        default=10000,
        help="idle connections to hold (10000)",
    )
    parser.add_argument("--json", type=Path, help="write the workloads here")
    options = parser.parse_args(argv)
    quick = {"rounds": 3, "duration": 1.0, "warmup": 0.25, "idle_rounds": 1}
    full = {"rounds": 5, "duration": 2.0, "warmup": 0.5, "idle_rounds": 3}
    for key, value in (quick if options.quick else full).items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    if not (1 <= options.rounds <= 50 and 0.2 <= options.duration <= 60):
        parser.error("--rounds must be 1-50 and --duration 0.2-60")
    if not (0 <= options.warmup <= 10 and 0 <= options.idle_rounds <= 10):
        parser.error("--warmup must be 0-10 and --idle-rounds 0-10")
    if not 1 <= options.idle_connections <= 100000:
        parser.error("--idle-connections must be 1-100000")
    return options


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("generate", "hold"):
        parser = argparse.ArgumentParser(prog=f"echo_bench.py {argv[0]}")
        parser.add_argument("--host", required=True)
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--server-pid", type=int, default=0)
        parser.add_argument("--warmup", type=float, default=0.5)
        parser.add_argument("--duration", type=float, default=2.0)
        parser.add_argument("--count", type=int, default=0)
        runGenerator(argv[0], parser.parse_args(argv[1:]))
        return 0
    options = parseArguments(argv)
    plan = cpuPlan().require("echo_bench", "generator")
    hard = raiseDescriptorLimit()
    count = min(options.idle_connections, hard - SPARE_DESCRIPTORS)
    everyone = contenders()
    idlers = [c for c in everyone if c.name in IDLE_CONTENDERS]
    perPing = (
        START_TIMEOUT
        + STOP_TIMEOUT
        + len(PINGPONG) * (options.warmup + options.duration + 25)
    )
    perIdle = START_TIMEOUT + STOP_TIMEOUT + 120
    budget = (
        options.rounds * len(everyone) * perPing
        + options.idle_rounds * len(idlers) * perIdle
        + 60
    )
    stopOnTerm("echo_bench")
    print(
        f"echo_bench: {options.rounds} rounds x {len(everyone)} contenders x "
        f"{len(PINGPONG)} ping-pong loads, {options.warmup:g}+{options.duration:g} s "
        f"each; {options.idle_rounds} idle round(s) of {count} connections; "
        f"server on CPU {plan.serverCPU}, generator on CPU {plan.loadCPU}",
        flush=True,
    )
    pingRuns: list[dict] = []
    idleRuns: list[dict] = []
    with watchdog("echo_bench", budget):
        for number, contender in interleave(options.rounds, everyone):
            runs = measurePingPong(contender, number, options, plan)
            pingRuns += runs
            print(
                f"  round {number} {contender.name:<16} "
                + "  ".join(f"{run['messagesPerSecond']:>8,.0f}" for run in runs)
                + "  msg/s",
                flush=True,
            )
        for number, contender in interleave(options.idle_rounds, idlers):
            run = measureIdle(contender, number, count, plan)
            idleRuns.append(run)
            print(
                f"  idle {number} {contender.name:<16} {run['connections']} conn "
                f"in {run['connectSeconds']:.1f} s, "
                f"{run['bytesPerConnection']:,.0f} B/conn",
                flush=True,
            )
    print()
    print(table(everyone, pingRuns, idleRuns, options))
    workloads = summarize(everyone, pingRuns, idleRuns)
    writeResults(
        RESULTS,
        "echo",
        {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(options).items()
        },
        contenders=[asdict(contender) for contender in everyone],
        workloads=workloads,
        pingPong=pingRuns,
        idle=idleRuns,
    )
    if options.json is not None:
        writeWorkloads(options.json, workloads)
        print(f"  workloads: {options.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit("echo_bench: interrupted")
