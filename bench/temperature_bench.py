"""
UDP temperature benchmark, run by hand or by C{bench/run_all.py}:

    .venv/bin/python bench/temperature_bench.py [--rounds 5] [--duration 3]
        [--sockets 16] [--window 8] [--quick] [--json PATH]
    .venv/bin/python bench/temperature_bench.py --micro

Each contender serves on CPU 0 (C{taskset -c 0}); the load generator runs in
this process on CPU 1, on uvloop: C{--sockets} connected UDP sockets, each
keeping C{--window} requests in flight (a closed loop: every reply sends the
next request). A socket that hears nothing for L{STALL} seconds counts its
requests in flight as lost and starts again. After a warm-up, replies are
counted for C{--duration} seconds; loss is the share of the requests sent in
that window that never got a reply. The contenders:

  - C{ours}: C{twistd -n temperature}, C{--rate}/C{--burst} raised so that
    its per-source limit never drops a request;
  - C{twisted}: a bare Twisted C{DatagramProtocol} on the same reactor
    calling the same conversion with no guard and no checks
    (C{bench/baselines/temperature_twisted.py}), replying by
    C{transport.write}: ours pays for its guard but sends by the port's
    socket, skipping C{Port.write}'s address checks (C{--micro} shows
    each part);
  - C{asyncio}: a plain asyncio C{DatagramProtocol} calling the same
    L{twisted_services.temperature.conversion.convertDatagram}, so only the I/O stack
    differs (C{bench/baselines/temperature_asyncio.py});
  - C{ceiling}: the same baseline on uvloop with a fixed reply and no
    conversion. Not a contender: it shows how far the load generator goes,
    so that it is not what limits the others.

Rounds interleave the contenders; the table gives medians, our ratio to
each contender with the lowest and highest per-round ratio, and the same
for replies per second of server CPU time, which a busy machine disturbs
less than the rates (the table warns when a server used under L{BUSY} of
its core). Everything is bounded: every phase has a deadline, a watchdog
ends the run, and servers are killed on the way out (and die with this
process). Loopback only.

C{--micro} measures instead, in this process, the CPU time per datagram of
the bare converter's protocol and of ours: on a transport that sends
nothing (L{microCost}), what the guard adds, in a figure a busy machine
hardly moves; then on real ports sending to loopback (L{sendCost}), where
ours also saves Twisted's C{Port.write} address checks (it sends by the
port's socket, see L{twisted_services.server.udpguard.replySender}).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from harness import (
    BASELINES,
    HOST,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Contender,
    CpuPlan,
    cpuPlan,
    cpuSeconds,
    interleave,
    listening,
    loopRunner,
    median,
    running,
    selfCPU,
    stopOnTerm,
    twistdCommand,
    watchdog,
    withMetrics,
    writeWorkloads,
)

if TYPE_CHECKING:
    from twisted.internet.address import IPv4Address

BUSY = 0.9  # a server using less of its core than this was not the bottleneck
STALL = 0.1  # seconds without a reply before a socket's requests count as lost
DRAIN = 0.3  # seconds to wait for replies in flight after the window
WARMUP = 0.5
# Requests cycled through by every socket, with the reply each must get.
REQUESTS = [b"100", b"98.6F", b"0 K", b"-40", b"37.5 C", b"451 F"]
OURS = "ours"
OURS_METRICS = "ours+metrics"
CEILING = "ceiling"
TWISTED = "twisted"
LISTENING = listening("udp")


def contenders() -> list[Contender]:
    python = sys.executable
    baseline = [python, str(BASELINES / "temperature_asyncio.py"), "--port", "0"]
    ours = Contender(
        OURS,
        "twistd -n temperature, rate limit raised",
        twistdCommand(
            *["temperature", "--port", "0", "--interface", HOST],
            *["--rate", "1e9", "--burst", "1000000000"],
        ),
    )
    return [
        ours,
        withMetrics(ours, OURS_METRICS),
        Contender(
            TWISTED,
            "bare Twisted DatagramProtocol, same convertDatagram, no guard",
            [
                python,
                str(BASELINES / "temperature_twisted.py"),
                *["--port", "0"],
                *["--interface", HOST],
            ],
        ),
        Contender(
            "asyncio",
            "asyncio DatagramProtocol, same convertDatagram",
            [*baseline, "--interface", HOST],
        ),
        Contender(
            CEILING,
            "uvloop DatagramProtocol, fixed reply, no conversion",
            [*baseline, "--interface", HOST, "--uvloop", "--no-convert"],
        ),
    ]


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="UDP request/response: twistd temperature against a bare "
        "Twisted converter and asyncio."
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument(
        "--duration", type=float, default=3.0, help="measured seconds per run (3)"
    )
    parser.add_argument("--sockets", type=int, default=16, help="client sockets (16)")
    parser.add_argument(
        "--window", type=int, default=8, help="requests in flight per socket (8)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run: 2 rounds of 2 s"
    )
    parser.add_argument("--json", type=Path, help="write the workloads here")
    parser.add_argument(
        "--micro",
        action="store_true",
        help="instead: CPU time per datagram in this process, no network",
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.rounds, options.duration = 2, 2.0
    if not (1 <= options.rounds <= 50 and 0.5 <= options.duration <= 60):
        parser.error("--rounds must be 1-50 and --duration 0.5-60")
    if not (1 <= options.sockets <= 256 and 1 <= options.window <= 256):
        parser.error("--sockets and --window must be 1-256")
    return options


@dataclass
class Counts:
    """Pooled over every client socket."""

    sent: int = 0
    received: int = 0
    stalls: int = 0
    errors: int = 0


class LoadSocket(asyncio.DatagramProtocol):
    """One connected client socket keeping C{window} requests in flight."""

    def __init__(self, counts: Counts, window: int, offset: int) -> None:
        self.counts = counts
        self.window = window
        self.next = offset
        self.inFlight = 0
        self.lastReply = time.monotonic()
        self.running = False
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def _send(self) -> None:
        assert self.transport is not None
        self.transport.sendto(REQUESTS[self.next % len(REQUESTS)])
        self.next += 1
        self.inFlight += 1
        self.counts.sent += 1

    def fill(self) -> None:
        self.lastReply = time.monotonic()
        while self.running and self.inFlight < self.window:
            self._send()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.counts.received += 1
        self.inFlight = max(0, self.inFlight - 1)
        if self.running:
            self.lastReply = time.monotonic()
            self._send()

    def error_received(self, exc: Exception) -> None:
        self.counts.errors += 1

    def checkStall(self, now: float) -> None:
        if self.running and self.inFlight and now - self.lastReply > STALL:
            self.counts.stalls += 1
            self.inFlight = 0
            self.fill()


async def check(address: tuple[str, int]) -> None:
    """Fail unless C{100} gets C{100 C = 212 F} back within two seconds."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[bytes] = loop.create_future()

    class Once(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not reply.done():
                reply.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Once, remote_addr=address)
    try:
        for _ in range(10):
            transport.sendto(b"100")
            with contextlib.suppress(asyncio.TimeoutError):
                data = await asyncio.wait_for(asyncio.shield(reply), 0.2)
                if data != b"100 C = 212 F\n":
                    raise RuntimeError(f"100 converted to {data!r}")
                return
        raise RuntimeError("no reply to 100")
    finally:
        transport.close()


async def load(
    address: tuple[str, int], options: argparse.Namespace, serverPid: int
) -> dict[str, float]:
    """Warm up, then measure replies and loss for C{options.duration}."""
    loop = asyncio.get_running_loop()
    await check(address)
    counts = Counts()
    sockets: list[LoadSocket] = []
    transports = []
    try:
        for number in range(options.sockets):
            transport, protocol = await loop.create_datagram_endpoint(
                lambda n=number: LoadSocket(counts, options.window, n),
                remote_addr=address,
            )
            transports.append(transport)
            sockets.append(protocol)
        for each in sockets:
            each.running = True
            each.fill()

        async def watch(seconds: float) -> None:
            end = time.monotonic() + seconds
            while (now := time.monotonic()) < end:
                for each in sockets:
                    each.checkStall(now)
                await asyncio.sleep(min(STALL / 2, max(0.0, end - now)))

        await watch(WARMUP)
        sent, received = counts.sent, counts.received
        stalls, serverBefore, selfBefore = counts.stalls, cpuSeconds(serverPid), 0.0
        selfBefore = selfCPU()
        started = time.monotonic()
        await watch(options.duration)
        elapsed = time.monotonic() - started
        sentInWindow = counts.sent - sent
        receivedInWindow = counts.received - received
        serverCPU = (cpuSeconds(serverPid) - serverBefore) / elapsed
        loadCPU = (selfCPU() - selfBefore) / elapsed
        stallsInWindow = counts.stalls - stalls
        for each in sockets:
            each.running = False
        await asyncio.sleep(DRAIN)
        # Loss: of everything sent, what never came back once the load stopped.
        lost = max(0, counts.sent - counts.received)
        return {
            "repliesPerSecond": receivedInWindow / elapsed,
            "sentPerSecond": sentInWindow / elapsed,
            "lossPercent": 100.0 * lost / max(1, counts.sent),
            "stalls": float(stallsInWindow),
            "errors": float(counts.errors),
            "serverCPU": serverCPU,
            "loadCPU": loadCPU,
        }
    finally:
        for transport in transports:
            transport.close()


def measure(
    contender: Contender, options: argparse.Namespace, plan: CpuPlan
) -> dict[str, float]:
    runner, _ = loopRunner()
    with running(contender, plan, ready=LISTENING) as server:
        address = server.waitReady()
        result = runner(
            asyncio.wait_for(
                load(address, options, server.pid),
                options.duration + WARMUP + DRAIN + 15,
            )
        )
        server.checkAlive()
        return result


def perCPU(run: dict[str, float]) -> float:
    """Replies per second of the server's CPU time: what one reply costs it."""
    return run["repliesPerSecond"] / run["serverCPU"] if run["serverCPU"] else 0.0


def roundRatios(ours: list[float], theirs: list[float]) -> str:
    """The lowest and highest of the per-round ratios: the spread of the noise."""
    found = [mine / other for mine, other in zip(ours, theirs, strict=True) if other]
    return f"{min(found):.2f}-{max(found):.2f}" if found else "-"


def summary(
    runs: dict[str, list[dict[str, float]]], everyone: list[Contender], rounds: int
) -> str:
    """
    The table of medians, with ours over each contender: the ratio of the
    medians and, in brackets, the lowest and highest per-round ratio; the
    same for replies per second of server CPU, which a busy machine (a
    server below L{BUSY} of its core) disturbs less than the rates.
    """
    rates = {
        name: [run["repliesPerSecond"] for run in found] for name, found in runs.items()
    }
    costs = {name: [perCPU(run) for run in found] for name, found in runs.items()}
    ours, oursPerCPU = median(rates[OURS]), median(costs[OURS])
    lines = [
        f"temperature: medians of {rounds} interleaved rounds",
        f"  {'contender':<8} {'replies/s':>10} {'loss %':>7} {'server':>7} "
        f"{'load':>5}  {'ours/this (rounds)':>19}  {'per CPU-s':>9}  "
        f"{'ours/this (rounds)':>19}",
    ]
    busy = []
    for contender in everyone:
        name = contender.name
        rate, cost = median(rates[name]), median(costs[name])
        server = median(run["serverCPU"] for run in runs[name])
        if name != CEILING and server < BUSY:
            busy.append(name)
        lines.append(
            f"  {name:<8} {rate:>10,.0f} "
            f"{median(run['lossPercent'] for run in runs[name]):>7.2f} "
            f"{server:>7.0%} "
            f"{median(run['loadCPU'] for run in runs[name]):>5.0%}  "
            f"{ours / rate if rate else float('nan'):>6.2f}x "
            f"({roundRatios(rates[OURS], rates[name]):>9})  "
            f"{cost:>9,.0f}  "
            f"{oursPerCPU / cost if cost else float('nan'):>6.2f}x "
            f"({roundRatios(costs[OURS], costs[name]):>9})"
        )
    if busy:
        lines.append(
            f"  WARNING: {', '.join(busy)} used less than {BUSY:.0%} of the "
            "server's core (median): the machine was busy and the servers were "
            "not what limited the rates. Run again when it is quiet."
        )
    return "\n".join(lines)


class DropTransport:
    """A UDP transport that sends nothing, so that only the protocol is timed."""

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        pass

    def getHost(self) -> IPv4Address:
        from twisted.internet.address import IPv4Address

        return IPv4Address("UDP", HOST, 1314)


def microCost(sources: int, count: int = 5000, repeats: int = 60) -> dict[str, float]:
    """
    CPU microseconds per datagram of C{datagramReceived}, in this process on
    L{DropTransport}: the bare Twisted converter's against ours (checks,
    reflection guard and rate limit, on the real reactor's clock), requests
    from C{sources} addresses in turn. Host strings are new objects in every
    run, as C{recvfrom} makes them. Repeats interleave the two; each figure
    is the least disturbed (minimum) run, so a busy machine hardly moves it.
    """
    from importlib.util import module_from_spec, spec_from_file_location

    from twisted.internet import reactor

    from twisted_services.server.udpguard import ReflectionGuard
    from twisted_services.temperature.protocol import TemperatureProtocol

    spec = spec_from_file_location("baseline", BASELINES / "temperature_twisted.py")
    assert spec is not None and spec.loader is not None
    baseline = module_from_spec(spec)
    spec.loader.exec_module(baseline)
    bare = baseline.Converter()
    guard = ReflectionGuard("temperature", reactor, 1e9, 10**9, maxSources=10000)
    ours = TemperatureProtocol(guard)
    for protocol in (bare, ours):
        # Started as a port starts them: ours takes its fast path then.
        protocol.makeConnection(DropTransport())

    def timed(receive: Callable[[bytes, tuple[str, int]], None]) -> float:
        datagrams = [
            (
                REQUESTS[n % len(REQUESTS)],
                (f"127.0.{n % sources // 256}.{n % sources % 256}", 40000 + n % 16),
            )
            for n in range(count)
        ]
        started = time.thread_time()
        for data, address in datagrams:
            receive(data, address)
        return (time.thread_time() - started) / count * 1e6

    best = {"bare": math.inf, "ours": math.inf}
    for _ in range(repeats):
        best["bare"] = min(best["bare"], timed(bare.datagramReceived))
        best["ours"] = min(best["ours"], timed(ours.datagramReceived))
    if guard.dropped:
        raise RuntimeError(f"the guard dropped {guard.dropped} datagrams")
    return best


def sendCost(count: int = 5000, repeats: int = 30) -> dict[str, float]:
    """
    As L{microCost} for one source, but each protocol on a real UDP port on
    loopback (the reactor's, not running: C{datagramReceived} is called
    directly), its replies sent to a socket of this process: the bare
    converter by C{Port.write}, ours by the socket's C{sendto}. What the
    send path adds to each, the system call included.
    """
    import socket
    from importlib.util import module_from_spec, spec_from_file_location

    from twisted.internet import reactor

    from twisted_services.server.udpguard import ReflectionGuard
    from twisted_services.temperature.protocol import TemperatureProtocol

    spec = spec_from_file_location("baseline", BASELINES / "temperature_twisted.py")
    assert spec is not None and spec.loader is not None
    baseline = module_from_spec(spec)
    spec.loader.exec_module(baseline)
    guard = ReflectionGuard("temperature", reactor, 1e9, 10**9, maxSources=10000)
    protocols = {"bare": baseline.Converter(), "ours": TemperatureProtocol(guard)}
    ports = [
        reactor.listenUDP(0, protocol, interface=HOST)  # type: ignore[attr-defined]
        for protocol in protocols.values()
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind((HOST, 0))
        sink.setblocking(False)
        host, port = sink.getsockname()

        def drain() -> None:
            with contextlib.suppress(BlockingIOError):
                for _ in range(count):
                    sink.recv(64)

        best = {name: math.inf for name in protocols}
        try:
            for _ in range(repeats):
                for name, protocol in protocols.items():
                    receive = protocol.datagramReceived
                    datagrams = [
                        (REQUESTS[n % len(REQUESTS)], (str(host), port))
                        for n in range(count)
                    ]
                    started = time.thread_time()
                    for data, address in datagrams:
                        receive(data, address)
                    used = time.thread_time() - started
                    best[name] = min(best[name], used / count * 1e6)
                    drain()
        finally:
            for each in ports:
                each.stopListening()
    if guard.dropped:
        raise RuntimeError(f"the guard dropped {guard.dropped} datagrams")
    return best


def micro() -> int:
    """
    Print L{microCost} for one source (as the network bench) and 1,000, then
    L{sendCost}.
    """
    cpuPlan().pinSelf()
    print("temperature: CPU per datagram in this process, no network (min of 60)")
    for sources in (1, 1000):
        cost = microCost(sources)
        print(
            f"  {sources:>5,} source(s): bare {cost['bare']:.2f} us, ours "
            f"{cost['ours']:.2f} us (+{cost['ours'] - cost['bare']:.2f} us); "
            f"as rates, ours/bare {cost['bare'] / cost['ours']:.2f}x"
        )
    cost = sendCost()
    print(
        "  with the send (a real port, replies to this process; min of 30): "
        f"bare {cost['bare']:.2f} us, ours {cost['ours']:.2f} us; as rates, "
        f"ours/bare {cost['bare'] / cost['ours']:.2f}x"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    options = parseArguments(argv)
    if options.micro:
        return micro()
    plan = cpuPlan()
    plan.pinSelf()
    everyone = contenders()
    perRun = START_TIMEOUT + WARMUP + options.duration + DRAIN + 15 + STOP_TIMEOUT
    stopOnTerm("temperature_bench")
    _, loop = loopRunner()
    print(
        f"temperature_bench: {options.rounds} rounds x {len(everyone)} contenders, "
        f"{options.duration:g} s each; {options.sockets} sockets x "
        f"{options.window} in flight on {loop}; "
        + (
            f"server on CPU {plan.serverCPU}, load on CPU {plan.loadCPU}"
            if plan.pinned
            else "NOT pinned"
        ),
        flush=True,
    )
    runs: dict[str, list[dict[str, float]]] = {each.name: [] for each in everyone}
    with watchdog("temperature_bench", options.rounds * len(everyone) * perRun + 30):
        # Rotate the order too, so no contender always follows the same one.
        for number, contender in interleave(options.rounds, everyone, rotate=True):
            result = measure(contender, options, plan)
            runs[contender.name].append(result)
            print(
                f"  round {number} {contender.name:<8} "
                f"{result['repliesPerSecond']:>9,.0f} replies/s  "
                f"loss {result['lossPercent']:.2f}%  stalls {result['stalls']:.0f}  "
                f"server {result['serverCPU']:.0%} load {result['loadCPU']:.0%} CPU",
                flush=True,
            )

    def medianFor(name: str, key: str) -> float:
        return median(run[key] for run in runs[name])

    print(f"\n{summary(runs, everyone, options.rounds)}")
    for contender in everyone:
        print(f"  {contender.name:<8} {contender.description}")

    if options.json:
        baselines = [each.name for each in everyone if each.name != OURS]
        label = f"temperature UDP, {options.sockets} sockets x {options.window}"
        workloads: list[dict[str, object]] = [
            {
                "name": f"{label}: replies",
                "metric": "replies/s",
                "higherIsBetter": True,
                "ours": medianFor(OURS, "repliesPerSecond"),
                "baselines": {
                    name: medianFor(name, "repliesPerSecond") for name in baselines
                },
            },
            {
                "name": f"{label}: loss",
                "metric": "% lost",
                "higherIsBetter": False,
                "ours": medianFor(OURS, "lossPercent"),
                "baselines": {
                    name: medianFor(name, "lossPercent") for name in baselines
                },
            },
        ]
        writeWorkloads(options.json, workloads, runs=runs)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("temperature_bench: interrupted")
