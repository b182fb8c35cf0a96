"""
What C{--metrics} costs each service, counted in instructions rather than
seconds, so that the answer does not depend on how noisy the machine is:

    .venv/bin/python bench/metrics_instructions.py [--requests 4000] [--only echo ...]

C{bench/metrics_overhead.py} measures throughput with metrics on and off,
but on this VM two runs of the very same server differ by more than the 5%
that issue 15 allows (its control, ours against ours, shows by how much).
Instruction counts from valgrind's callgrind are repeatable whatever else
the machine does (within the small spread this script's own control shows).

For each service, ours with C{--metrics} off, on, and off again (the
control: what two servers alike differ by) runs under
C{valgrind --tool=callgrind} with instrumentation off until it serves; then
the same fixed-count load (the service's bench workload, as N requests) runs
with instrumentation on, and for the on server, L{SCRAPES} scrapes of
C{/metrics} after it. That gives instructions per request, off and on, and
per scrape. With the server's core saturated, a second holds
C{rate x perRequest(off)} instructions; metrics on spends one scrape's of
them every second (C{harness.SCRAPE_INTERVAL}, fifteen times Prometheus's
usual rate) and the rest at C{perRequest(on)}, so

    on / off = (rate x perRequest(off) - perScrape) / (rate x perRequest(on))

where C{rate} is the requests a second the service does with metrics off,
measured here natively (median of a few timed runs of the same load; it only
scales the scrape term). Clients run in this process, on the load core, and
are not counted. Not part of C{make bench}: about 5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import chat_fanout
import echo_bench
import http_bench
import temperature_bench
from harness import (
    RESULTS,
    SCRAPE_INTERVAL,
    Contender,
    CpuPlan,
    Server,
    cpuPlan,
    listening,
    loopRunner,
    median,
    raiseDescriptorLimit,
    stopOnTerm,
    watchdog,
    withMetrics,
    writeResults,
)
from metrics_overhead import GOAL, OFF, ON

SCRAPES = 10
CONNECTIONS = 50
# Native timed runs of the load, for the rate that scales the scrape term.
RATE_RUNS = 3
# Starting under valgrind, uninstrumented, is several times slower.
VALGRIND_START_TIMEOUT = 120.0
LOAD_TIMEOUT = 600.0
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)

Load = Callable[[tuple[str, int], int], Awaitable[None]]


# Fixed-count loads: each returns once exactly `count` requests were answered.


async def echoLoad(address: tuple[str, int], count: int) -> None:
    """C{count} 64-byte round trips over L{CONNECTIONS} connections."""
    message = b"x" * 64

    async def one(share: int) -> None:
        reader, writer = await asyncio.open_connection(*address)
        for _ in range(share):
            writer.write(message)
            await reader.readexactly(len(message))
        writer.close()

    await asyncio.gather(*(one(share) for share in shares(count)))


async def httpLoad(address: tuple[str, int], count: int) -> None:
    """C{count} keep-alive C{GET /} over L{CONNECTIONS} connections."""
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"

    async def one(share: int) -> None:
        reader, writer = await asyncio.open_connection(*address)
        for _ in range(share):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
            if not head.startswith(b"HTTP/1.1 200 ") or length is None:
                raise RuntimeError(f"unexpected response: {head[:200]!r}")
            await reader.readexactly(int(length[1]))
        writer.close()

    await asyncio.gather(*(one(share) for share in shares(count)))


class _Converter(asyncio.DatagramProtocol):
    """One UDP socket keeping a few requests in flight until its share is answered."""

    def __init__(self, share: int, window: int = 8) -> None:
        self.left = self.unsent = share
        self.window = window
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        for _ in range(min(self.window, self.unsent)):
            self._send()

    def _send(self) -> None:
        self.unsent -= 1
        self.transport.sendto(b"37.5 C")  # type: ignore[attr-defined]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.left -= 1
        if self.unsent:
            self._send()
        if not self.left and not self.done.done():
            self.done.set_result(None)


async def temperatureLoad(address: tuple[str, int], count: int) -> None:
    """C{count} conversions from 16 sockets, 8 in flight each, none lost."""
    loop = asyncio.get_running_loop()
    made = [
        await loop.create_datagram_endpoint(
            lambda share=share: _Converter(share), remote_addr=address
        )
        for share in shares(count, 16)
    ]
    await asyncio.gather(*(protocol.done for _, protocol in made))
    for transport, _ in made:
        transport.close()


async def chatLoad(address: tuple[str, int], count: int) -> None:
    """
    One talker's lines to L{CONNECTIONS} receivers in the lobby, C{count}
    deliveries in all, paced by the slowest receiver.
    """
    receivers = [await asyncio.open_connection(*address) for _ in range(CONNECTIONS)]
    talkerReader, talker = await asyncio.open_connection(*address)
    for reader, _ in [*receivers, (talkerReader, talker)]:
        line = await reader.readline()
        while not line.startswith(chat_fanout.WELCOMES):
            line = await reader.readline()
    lines = max(1, count // CONNECTIONS)

    async def receive(reader: asyncio.StreamReader) -> None:
        seen = 0
        while seen < lines:
            line = await reader.readline()
            if not line:
                raise RuntimeError("a receiver was disconnected")
            seen += chat_fanout.MARK in line

    receiving = [asyncio.ensure_future(receive(reader)) for reader, _ in receivers]
    for number in range(lines):
        talker.write(b"B%08d metrics cost\n" % number)
        if number % 50 == 49:
            await talker.drain()
    await asyncio.gather(*receiving)
    for _, writer in [*receivers, (talkerReader, talker)]:
        writer.close()


def shares(count: int, parts: int = CONNECTIONS) -> list[int]:
    """C{count} split into C{parts} near-equal shares, none empty."""
    parts = max(1, min(parts, count))
    return [count // parts + (index < count % parts) for index in range(parts)]


@dataclass
class Target:
    """One service: our server with metrics off, and its fixed-count load."""

    name: str
    off: Contender
    load: Load
    ready: re.Pattern[str]
    unit: str


def targets() -> dict[str, Target]:
    chatOptions = chat_fanout.parseArguments(["--ws-clients", "0"])
    return {
        "echo": Target(
            "echo",
            next(c for c in echo_bench.contenders() if c.name == OFF),
            echoLoad,
            listening("tcp"),
            "64 B round trip",
        ),
        "http": Target(
            "http",
            next(
                c
                for c in http_bench.contenders(http_bench.parseArguments([]))
                if c.name == OFF
            ),
            httpLoad,
            listening("tcp"),
            "request",
        ),
        "temperature": Target(
            "temperature",
            next(c for c in temperature_bench.contenders() if c.name == OFF),
            temperatureLoad,
            temperature_bench.LISTENING,
            "conversion",
        ),
        "chat": Target(
            "chat",
            chat_fanout.serverContender(chatOptions),
            chatLoad,
            listening("tcp"),
            "delivered line",
        ),
    }


# Counting.


def callgrind(pid: int, *command: str) -> None:
    subprocess.run(
        ["callgrind_control", *command, str(pid)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def totals(path: Path) -> int:
    """The instructions a callgrind dump counted."""
    found = _TOTALS.search(path.read_text(errors="replace"))
    if found is None:
        raise RuntimeError(f"no totals in {path}")
    return int(found[1])


@dataclass
class Counted:
    """Instructions one server spent, per request and (metrics on) per scrape."""

    service: str
    contender: str
    requests: int
    perRequest: float
    perScrape: float | None


def count(
    target: Target, contender: Contender, requests: int, plan: CpuPlan, out: Path
) -> Counted:
    """
    Start C{contender} under callgrind, warm it up uninstrumented, then
    count the instructions of C{requests} requests and of L{SCRAPES} scrapes.
    """
    runner, _ = loopRunner()
    dumps = out / re.sub(r"\W", "-", contender.name)
    dumps.mkdir(parents=True)
    server = Server(
        contender.name,
        contender.command,
        prefix=[
            *plan.serverPrefix,
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={dumps}/callgrind.out",
        ],
        ready=target.ready,
    )
    try:
        address = server.waitReady(VALGRIND_START_TIMEOUT)
        runner(asyncio.wait_for(target.load(address, requests // 10), LOAD_TIMEOUT))
        callgrind(server.pid, "--instr=on")
        callgrind(server.pid, "--zero")
        runner(asyncio.wait_for(target.load(address, requests), LOAD_TIMEOUT))
        callgrind(server.pid, "--dump=load")
        perScrape = None
        if contender.scrape:
            for _ in range(SCRAPES):
                with urllib.request.urlopen(contender.scrape, timeout=60) as response:
                    response.read()
            callgrind(server.pid, "--dump=scrapes")
        callgrind(server.pid, "--instr=off")
        server.checkAlive()
    finally:
        server.stop()
    written = sorted(dumps.glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
    perRequest = totals(written[0]) / requests
    if contender.scrape:
        perScrape = totals(written[1]) / SCRAPES
    return Counted(target.name, contender.name, requests, perRequest, perScrape)


def nativeRate(target: Target, requests: int, plan: CpuPlan) -> float:
    """Requests a second of the same load, metrics off, not under valgrind."""
    runner, _ = loopRunner()
    server = Server(
        target.off.name,
        target.off.command,
        prefix=plan.serverPrefix,
        ready=target.ready,
    )
    rates = []
    try:
        address = server.waitReady()
        runner(asyncio.wait_for(target.load(address, requests), LOAD_TIMEOUT))
        for _ in range(RATE_RUNS):
            started = time.perf_counter()
            runner(asyncio.wait_for(target.load(address, requests), LOAD_TIMEOUT))
            rates.append(requests / (time.perf_counter() - started))
        server.checkAlive()
    finally:
        server.stop()
    return median(rates)


@dataclass
class Verdict:
    """
    On against off for one service; C{control} is off against off again (two
    servers alike), the spread of the method itself.
    """

    service: str
    unit: str
    perRequestOff: float
    perRequestOn: float
    perScrape: float
    rate: float
    ratio: float
    control: float

    @property
    def met(self) -> bool:
        return self.ratio >= GOAL


def verdict(
    target: Target, off: Counted, on: Counted, offAgain: Counted, rate: float
) -> Verdict:
    assert on.perScrape is not None
    budget = rate * off.perRequest
    scrapeCost = on.perScrape / SCRAPE_INTERVAL
    ratio = (budget - scrapeCost) / (rate * on.perRequest)
    return Verdict(
        target.name,
        target.unit,
        off.perRequest,
        on.perRequest,
        on.perScrape,
        rate,
        ratio,
        off.perRequest / offAgain.perRequest,
    )


def table(found: list[Verdict], requests: int) -> str:
    lines = [
        f"metrics on / off in instructions (callgrind): {requests} requests, "
        f"{SCRAPES} scrapes; a scrape every {SCRAPE_INTERVAL:g} s at the native "
        f"rate; goal {GOAL}x; control: off / off again",
        f"  {'service':<12} {'per request off':>16} {'on':>9} {'per scrape':>12} "
        f"{'rate/s':>9} {'on/off':>8} {'control':>8}  verdict",
    ]
    for each in found:
        lines.append(
            f"  {each.service:<12} {each.perRequestOff:>16,.0f} "
            f"{each.perRequestOn:>9,.0f} {each.perScrape:>12,.0f} "
            f"{each.rate:>9,.0f} {each.ratio:>7.3f}x {each.control:>7.3f}x  "
            f"{'met' if each.met else 'NOT MET'} (per {each.unit})"
        )
    return "\n".join(lines)


def parseArguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Instructions per request with --metrics on and off (callgrind)."
    )
    parser.add_argument(
        "--requests", type=int, default=4000, help="requests counted (4000)"
    )
    parser.add_argument(
        "--only", nargs="+", choices=sorted(targets()), help="these services only"
    )
    options = parser.parse_args(argv)
    if not 100 <= options.requests <= 100_000:
        parser.error("--requests must be 100-100000")
    return options


def main(argv: list[str]) -> int:
    options = parseArguments(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"metrics_instructions: {tool} not found (apt-get install valgrind)"
            )
    # One hash seed for every server: dict and set layouts, and so the
    # instructions spent on them, do not differ between the contenders.
    os.environ["PYTHONHASHSEED"] = "0"
    plan = cpuPlan().require("metrics_instructions")
    plan.pinSelf()
    raiseDescriptorLimit(4 * CONNECTIONS + 256)
    stopOnTerm("metrics_instructions")
    chosen = [
        t for name, t in targets().items() if not options.only or name in options.only
    ]
    found, counted = [], []
    with (
        watchdog("metrics_instructions", 900.0 * len(chosen)),
        tempfile.TemporaryDirectory() as tmp,
    ):
        for target in chosen:
            rate = nativeRate(target, options.requests, plan)
            counts = []
            again = dataclasses.replace(target.off, name=f"{OFF} again")
            for contender in (target.off, withMetrics(target.off, ON), again):
                measured = count(
                    target, contender, options.requests, plan, Path(tmp) / target.name
                )
                counts.append(measured)
                print(
                    f"  {target.name} {contender.name:<13} "
                    f"{measured.perRequest:>10,.0f} instructions per {target.unit}"
                    + (
                        f", {measured.perScrape:,.0f} per scrape"
                        if measured.perScrape is not None
                        else ""
                    ),
                    flush=True,
                )
            counted += counts
            found.append(verdict(target, *counts, rate))
    print()
    print(table(found, options.requests))
    writeResults(
        RESULTS,
        "metrics-instructions",
        {"requests": options.requests, "scrapes": SCRAPES, "goal": GOAL},
        verdicts=[asdict(each) for each in found],
        counted=[asdict(each) for each in counted],
    )
    return 0 if all(each.met for each in found) else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit("metrics_instructions: interrupted")
