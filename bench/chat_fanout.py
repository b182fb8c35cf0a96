"""
Chat fan-out benchmark, run by hand (not in CI):

    .venv/bin/python bench/chat_fanout.py [--clients 1000] [--talkers 1]
        [--rate 50] [--duration 10] [--quick] [--json PATH]

Starts C{twistd -n chat} on a loopback port (on CPU 0 with C{taskset} when
there are two or more CPUs; the load generator then runs on the others),
connects C{--clients} receivers and C{--talkers} talkers to the lobby, and
has each talker send C{--rate} timestamped lines a second for
C{--duration} seconds. Receivers time each line's delivery. It prints lines
delivered per second, p50/p99 delivery latency, lost lines, and how busy
the server and the load generator were: a load generator near 100% CPU
means the numbers measure it, not the server.

Everything is bounded: connections, lines, and time (each phase has a
deadline, and a watchdog ends the whole run); the server is stopped on the
way out whatever happens. The load generator is asyncio, on uvloop if it is
installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

TWISTD = "from twisted.scripts.twistd import run; run()"
LISTENING = re.compile(rb"chat listening on tcp:(?P<host>[^\s:]+):(?P<port>\d+)")
WELCOME = b"* welcome, you are "
MARK = b"> B"  # what a talker's line looks like once the server prefixed <nick>
SYNC = b"> SYNC"
START_TIMEOUT = 20.0
CONNECT_CONCURRENCY = 32


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fan-out benchmark for the twisted-services chat server."
    )
    parser.add_argument("--clients", type=int, default=1000, help="receivers (1000)")
    parser.add_argument("--talkers", type=int, default=1, help="senders (1)")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="lines/s per talker (50)"
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of talking (10)"
    )
    parser.add_argument(
        "--size", type=int, default=64, help="bytes per talker line (64, min 40)"
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=60.0, help="to connect everyone"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=15.0, help="for lines in flight"
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin server and load to CPUs"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 4 s of talking"
    )
    parser.add_argument(
        "--json", type=Path, help="also write the workloads here (for run_all.py)"
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.duration = 4.0
    if not (1 <= options.clients <= 100_000 and 1 <= options.talkers <= 100):
        parser.error("--clients must be 1-100000 and --talkers 1-100")
    if not (0 < options.rate <= 100_000 and 0 < options.duration <= 600):
        parser.error("--rate must be in (0, 100000] and --duration in (0, 600]")
    options.size = max(40, min(options.size, 4000))
    return options


def raiseFileLimit(needed: int) -> None:
    """Raise the soft descriptor limit (inherited by twistd) to C{needed}."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(
            f"need {needed} file descriptors but the hard limit is {hard}: "
            "use fewer --clients or raise it (ulimit -Hn)"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def cpuPlan(pin: bool) -> tuple[list[str], set[int] | None]:
    """
    The command prefix that puts the server on one CPU, and the CPUs for
    the load generator; no pinning without C{taskset} or a second CPU.
    """
    cpus = sorted(os.sched_getaffinity(0))
    taskset = shutil.which("taskset")
    if not pin or taskset is None or len(cpus) < 2:
        return [], None
    return [taskset, "-c", str(cpus[0])], set(cpus[1:])


def cpuSeconds(pid: int) -> float:
    """User plus system CPU time of process C{pid}, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peakMemory(pid: int) -> int:
    """Peak resident memory of process C{pid} in bytes (VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def selfCPU() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Totals:
    """What every receiver measured, pooled."""

    latencies: list[int] = field(default_factory=list)  # nanoseconds
    delivered: int = 0
    lastDelivery: int = 0
    lost: int = 0  # connections lost before the end


class Client(asyncio.Protocol):
    """One chat connection: waits for its welcome and the sync line, times talk."""

    def __init__(self, totals: Totals, receiving: bool) -> None:
        self.totals = totals
        self.receiving = receiving
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.welcomed = loop.create_future()
        self.synced = loop.create_future()
        self.delivered = 0
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not an asyncio.Transport subclass.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        lines = (self.buffer + data).split(b"\r\n")
        self.buffer = lines.pop()
        if not self.receiving:
            return
        latencies = self.totals.latencies
        count = 0
        for line in lines:
            mark = line.find(MARK)
            if mark != -1:
                start = mark + len(MARK)
                latencies.append(now - int(line[start : start + 19]))
                count += 1
            elif line.startswith(WELCOME):
                self.welcomed.set_result(None)
            elif line.find(SYNC) != -1 and not self.synced.done():
                self.synced.set_result(None)
        if count:
            self.delivered += count
            self.totals.delivered += count
            self.totals.lastDelivery = now

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.totals.lost += 1
        for future in (self.welcomed, self.synced):
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))
                future.exception()  # whoever awaits it sees it; no one else must

    def send(self, line: bytes) -> None:
        assert self.transport is not None
        self.transport.write(line + b"\n")

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class Server:
    """The twistd subprocess, its output drained so that it never blocks."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.tail: deque[str] = deque(maxlen=30)
        self.slowReaders = 0
        self.address: asyncio.Future[tuple[str, int]] = (
            asyncio.get_running_loop().create_future()
        )
        self.drainer = asyncio.ensure_future(self._drain())

    @classmethod
    async def start(cls, prefix: list[str], arguments: list[str]) -> Server:
        process = await asyncio.create_subprocess_exec(
            *prefix,
            sys.executable,
            "-c",
            TWISTD,
            "-n",
            "--pidfile=",
            "chat",
            *arguments,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        server = cls(process)
        try:
            await asyncio.wait_for(asyncio.shield(server.address), START_TIMEOUT)
        except BaseException:
            await server.stop()
            raise
        return server

    async def _drain(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.tail.append(raw.decode("utf-8", "replace").rstrip())
            if b"is not reading" in raw:
                self.slowReaders += 1
            match = LISTENING.search(raw)
            if match and not self.address.done():
                self.address.set_result((match["host"].decode(), int(match["port"])))
        if not self.address.done():
            self.address.set_exception(
                RuntimeError("twistd exited:\n" + "\n".join(self.tail))
            )

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still there after 10 seconds."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10.0)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.drainer, 5.0)


async def connectAll(
    address: tuple[str, int], count: int, totals: Totals, receiving: bool
) -> list[Client]:
    """Connect C{count} clients, a few at a time, each up to its welcome."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Client:
        async with gate:
            _, client = await loop.create_connection(
                lambda: Client(totals, receiving=True), *address
            )
            await client.welcomed
            client.receiving = receiving
            return client

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def talk(
    talker: Client, number: int, rate: float, duration: float, size: int
) -> int:
    """Send timestamped lines at C{rate} for C{duration}; return how many."""
    padding = b"x" * max(0, size - 36)
    interval = 1.0 / rate
    start = time.perf_counter()
    sent = 0
    for _ in range(int(rate * duration) + 1):
        due = start + sent * interval
        now = time.perf_counter()
        if due - start >= duration:
            break
        if due > now:
            await asyncio.sleep(due - now)
        # 19 digits of perf_counter_ns first: receivers parse a fixed slice.
        line = b"B%019d %04d %08d %s" % (time.perf_counter_ns(), number, sent, padding)
        talker.send(line)
        sent += 1
    return sent


def percentile(ordered: list[int], fraction: float) -> float:
    """The C{fraction} percentile of sorted C{ordered}, in milliseconds."""
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index] / 1e6


async def waitUntil(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    """Poll C{condition} every 20 ms for at most C{timeout} seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def run(
    options: argparse.Namespace,
) -> tuple[list[tuple[str, str]], dict[str, float]]:
    """The run's table rows, and its raw figures for C{--json}."""
    prefix, loadCPUs = cpuPlan(not options.no_pin)
    if loadCPUs:
        os.sched_setaffinity(0, loadCPUs)
    connections = options.clients + options.talkers
    raiseFileLimit(connections + 256)
    server = await Server.start(
        prefix,
        [
            "--port",
            "0",
            "--interface",
            "127.0.0.1",
            "--rate",
            str(max(1000.0, options.rate * 4)),
            "--burst",
            "100000",
            "--max-connections",
            str(connections + 16),
            "--idle-timeout",
            "0",
        ],
    )
    totals = Totals()
    clients: list[Client] = []
    try:
        address = await server.address
        started = time.monotonic()
        receivers = await asyncio.wait_for(
            connectAll(address, options.clients, totals, receiving=True),
            options.connect_timeout,
        )
        clients += receivers
        talkers = await asyncio.wait_for(
            connectAll(address, options.talkers, totals, receiving=False),
            options.connect_timeout,
        )
        clients += talkers
        # Once every receiver has the sync line, every join announcement
        # before it has been read too: the room is quiet.
        talkers[0].send(b"SYNC")
        await asyncio.wait_for(
            asyncio.gather(*(each.synced for each in receivers)),
            options.connect_timeout,
        )
        connectTime = time.monotonic() - started

        serverCPU, benchCPU = cpuSeconds(server.process.pid), selfCPU()
        firstSend = time.perf_counter_ns()
        sentCounts = await asyncio.gather(
            *(
                talk(each, number, options.rate, options.duration, options.size)
                for number, each in enumerate(talkers)
            )
        )
        sent = sum(sentCounts)
        expected = sent * options.clients
        drained = await waitUntil(
            lambda: (
                totals.delivered >= expected or server.process.returncode is not None
            ),
            options.drain_timeout,
        )
        serverCPU = cpuSeconds(server.process.pid) - serverCPU
        benchCPU = selfCPU() - benchCPU
        elapsed = (max(totals.lastDelivery, firstSend + 1) - firstSend) / 1e9
        memory = peakMemory(server.process.pid)
    finally:
        for client in clients:
            client.close()
        await server.stop()

    ordered = sorted(totals.latencies)
    figures = {
        "deliveredPerSecond": totals.delivered / elapsed,
        "p99": percentile(ordered, 0.99),
        "delivered": totals.delivered,
        "expected": expected,
    }
    rows = [
        ("receivers / talkers", f"{options.clients} / {options.talkers}"),
        ("offered", f"{options.rate:g} lines/s per talker for {options.duration:g} s"),
        ("server pinned", "yes (taskset)" if prefix else "no"),
        ("event loop", type(asyncio.get_running_loop()).__module__.split(".")[0]),
        ("connect + settle", f"{connectTime:.1f} s"),
        ("lines sent", f"{sent}"),
        ("deliveries", f"{totals.delivered} of {expected}"),
        ("delivered lines/s", f"{totals.delivered / elapsed:,.0f}"),
        ("latency p50", f"{percentile(ordered, 0.50):.2f} ms"),
        ("latency p99", f"{percentile(ordered, 0.99):.2f} ms"),
        ("latency max", f"{percentile(ordered, 1.0):.2f} ms"),
        ("all drained", "yes" if drained else "NO"),
        ("connections lost", f"{totals.lost} ({server.slowReaders} as slow readers)"),
        ("server CPU", f"{100 * serverCPU / elapsed:.0f}%"),
        ("load generator CPU", f"{100 * benchCPU / elapsed:.0f}%"),
        ("server peak RSS", f"{memory / 2**20:.0f} MiB"),
    ]
    return rows, figures


def main(argv: list[str] | None = None) -> None:
    options = parseArguments(argv)
    watchdog = options.connect_timeout * 3 + options.duration + options.drain_timeout
    watchdog += 60

    async def bounded() -> tuple[list[tuple[str, str]], dict[str, float]]:
        return await asyncio.wait_for(run(options), watchdog)

    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        rows, figures = asyncio.run(bounded())
    else:
        rows, figures = uvloop.run(bounded())
    width = max(len(name) for name, _ in rows)
    print("chat fan-out")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if options.json:
        label = f"chat fan-out {options.clients} clients"
        workloads = [
            {
                "name": label,
                "metric": "delivered lines/s",
                "higherIsBetter": True,
                "ours": figures["deliveredPerSecond"],
                "baselines": {},
            },
            {
                "name": label,
                "metric": "p99 ms",
                "higherIsBetter": False,
                "ours": figures["p99"],
                "baselines": {},
            },
        ]
        options.json.write_text(json.dumps({"workloads": workloads}, indent=2) + "\n")


if __name__ == "__main__":
    main()
