"""
Chat fan-out across servers sharing Redis, run by hand (not in CI):

    .venv/bin/python bench/chat_redis_bench.py [--clients 300] [--rate 200]
        [--duration 5] [--rounds 3] [--quick] [--json PATH]

Two set-ups, measured in interleaved rounds in one run, medians reported:

  - C{one}: one C{twistd -n chat}, every client on it (the baseline);
  - C{redis3}: Debian's C{redis-server} and three C{twistd -n chat --redis}
    servers, the clients spread evenly over them.

Each has C{--clients} receivers in the lobby and one talker (on the first
server) sending C{--rate} timestamped lines a second for C{--duration}
seconds; receivers time each line's delivery. Reported per set-up:
deliveries per second (first line sent to last delivered), p99 fan-out
latency (send to delivery, over every delivery), the CPU every server
process used (chat servers and Redis) and the load generator's: one near
100% means the figures measure it. The clients are chat_fanout.py's.

All servers (Redis too) share the first CPU and the load generator has the
second (C{taskset}): both set-ups get the same CPU, so the figures show what
going through Redis costs, not what more hosts would add. Everything is
bounded: connections, lines, each phase's time, and a watchdog on the run.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from chat_fanout import Client, Totals, connectAll, talk, waitUntil
from harness import (
    HOST,
    START_TIMEOUT,
    STOP_TIMEOUT,
    CpuPlan,
    Server,
    cpuPlan,
    cpuSeconds,
    listening,
    loopRunner,
    medianOf,
    percentile,
    raiseDescriptorLimit,
    selfCPU,
    stopOnTerm,
    twistdCommand,
    watchdog,
    writeWorkloads,
)

SERVERS = 3
SHARING = "sharing the chat through Redis"
SETUPS = ("one", "redis3")


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Chat fan-out: three servers sharing Redis against one."
    )
    parser.add_argument("--clients", type=int, default=300, help="receivers (300)")
    parser.add_argument("--rate", type=float, default=200.0, help="lines/s (200)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds (5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    parser.add_argument("--json", type=Path, help="write the workloads here")
    parser.add_argument("--no-pin", action="store_true", help="do not pin CPUs")
    options = parser.parse_args(argv)
    if options.quick:
        options.duration, options.rounds = 2.0, 1
    if not 3 <= options.clients <= 10_000:
        parser.error("--clients must be 3-10000")
    if not (0 < options.rate <= 10_000 and 0 < options.duration <= 120):
        parser.error("--rate must be in (0, 10000] and --duration in (0, 120]")
    if not 1 <= options.rounds <= 20:
        parser.error("--rounds must be 1-20")
    return options


def freePort() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def chatArguments(clients: int) -> list[str]:
    """Flood and connection limits lifted: every client comes from one address."""
    return [
        *["--port", "0", "--interface", HOST, "--idle-timeout", "0"],
        *["--rate", "100000", "--burst", "100000"],
        *["--max-connections", str(clients + 16), "--max-per-address", "0"],
        *["--connect-rate", "100000", "--connect-burst", "100000"],
    ]


class Seen:
    """Notes when a server has logged C{text}."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.event = threading.Event()

    def __call__(self, line: str) -> None:
        if self.text in line:
            self.event.set()


@contextmanager
def setup(name: str, clients: int, plan: CpuPlan) -> Iterator[list[Server]]:
    """The servers of set-up C{name}, ready; stopped on the way out."""
    with ExitStack() as stack:
        servers: list[Server] = []
        arguments = chatArguments(clients)
        if name == "one":
            commands = [twistdCommand("chat", *arguments)]
            seen: list[Seen] = []
        else:
            redisServer = shutil.which("redis-server")
            if redisServer is None:
                raise SystemExit("chat_redis_bench: redis-server is not installed")
            port = freePort()
            redis = Server(
                "redis",
                [
                    redisServer,
                    *["--bind", HOST, "--port", str(port), "--save", ""],
                    *["--appendonly", "no", "--dir", "/tmp"],
                ],
                prefix=plan.serverPrefix,
                ready=re.compile("Ready to accept connections"),
                address=(HOST, port),
            )
            stack.callback(redis.stop)
            redis.waitReady()
            servers.append(redis)
            url = f"redis://{HOST}:{port}/0"
            commands = [twistdCommand("chat", *arguments, "--redis", url)] * SERVERS
            seen = [Seen(SHARING) for _ in commands]
        chats = [
            Server(
                f"chat{number}",
                command,
                prefix=plan.serverPrefix,
                ready=listening("tcp"),
                onLine=seen[number] if seen else None,
            )
            for number, command in enumerate(commands)
        ]
        for chat in chats:
            stack.callback(chat.stop)
        for chat in chats:
            chat.waitReady()
        for each in seen:
            if not each.event.wait(START_TIMEOUT):
                raise SystemExit("chat_redis_bench: a server did not reach Redis")
        yield [*chats, *servers]


async def measureLoad(
    options: argparse.Namespace, chats: list[Server]
) -> tuple[Totals, int, float]:
    """Connect, talk, drain: the receivers' totals, lines sent, elapsed seconds."""
    totals = Totals()
    addresses = [chat.address for chat in chats]
    clients: list[Client] = []
    try:
        shares = [options.clients // len(chats)] * len(chats)
        shares[0] += options.clients - sum(shares)
        for address, share in zip(addresses, shares, strict=True):
            assert address is not None
            clients += await asyncio.wait_for(
                connectAll(address, share, totals, receiving=True), 60
            )
        assert addresses[0] is not None
        [talker] = await asyncio.wait_for(
            connectAll(addresses[0], 1, totals, receiving=False), 60
        )
        clients.append(talker)
        # Every receiver, on every server, has the sync line: the room is quiet.
        talker.send(b"SYNC")
        receivers = clients[:-1]
        await asyncio.wait_for(asyncio.gather(*(c.synced for c in receivers)), 60)
        first = time.perf_counter_ns()
        sent = await talk(talker, 0, options.rate, options.duration, 64)
        expected = sent * options.clients
        await waitUntil(lambda: totals.delivered >= expected, 15)
        elapsed = (max(totals.lastDelivery, first + 1) - first) / 1e9
    finally:
        for client in clients:
            client.close()
    return totals, sent, elapsed


def measure(options: argparse.Namespace, plan: CpuPlan, name: str) -> dict[str, float]:
    """One round of set-up C{name}."""
    runner, _ = loopRunner()
    with setup(name, options.clients, plan) as servers:
        chats = [server for server in servers if server.name.startswith("chat")]
        before, load = sum(cpuSeconds(s.pid) for s in servers), selfCPU()
        totals, sent, elapsed = runner(measureLoad(options, chats))
        cpu = sum(cpuSeconds(s.pid) for s in servers) - before
        load = selfCPU() - load
    ordered = sorted(totals.latencies)
    return {
        "setup": name,  # type: ignore[dict-item]
        "deliveredPerSecond": totals.delivered / elapsed,
        "p99": percentile(ordered, 0.99) / 1e6,
        "delivered": totals.delivered,
        "expected": sent * options.clients,
        "serverCPU": 100 * cpu / elapsed,
        "loadCPU": 100 * load / elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    options = parseArguments(argv)
    plan = cpuPlan(not options.no_pin)
    plan.pinSelf()
    raiseDescriptorLimit(options.clients + 256)
    stopOnTerm("chat_redis_bench")
    budget = options.rounds * 2 * (options.duration + 60 + START_TIMEOUT + STOP_TIMEOUT)
    runs: list[dict[str, float]] = []
    with watchdog("chat_redis_bench", budget):
        for number in range(options.rounds):
            # Alternate who goes first, so neither always meets a warmer machine.
            for name in SETUPS if number % 2 == 0 else SETUPS[::-1]:
                run = measure(options, plan, name)
                runs.append(run)
                print(
                    f"  round {number + 1} {name:<6}"
                    f" {run['deliveredPerSecond']:>9,.0f} deliveries/s"
                    f"  p99 {run['p99']:.2f} ms"
                    f"  servers' CPU {run['serverCPU']:.0f}%"
                    f"  load generator CPU {run['loadCPU']:.0f}%"
                    f"  {run['delivered']:.0f} of {run['expected']:.0f}",
                    flush=True,
                )
    print(
        f"chat fan-out, {options.clients} clients in one room, "
        f"{options.rate:g} lines/s offered, medians of {options.rounds}"
    )
    medians = {
        (name, metric): medianOf(runs, metric, setup=name)  # type: ignore[arg-type]
        for name in SETUPS
        for metric in ("deliveredPerSecond", "p99", "serverCPU")
    }
    for metric, unit in [
        ("deliveredPerSecond", "/s"),
        ("p99", " ms"),
        ("serverCPU", "%"),
    ]:
        one, shared = medians["one", metric], medians["redis3", metric]
        print(
            f"  {metric:<19} one server {one:,.2f}{unit}, 3 on Redis"
            f" {shared:,.2f}{unit}, 3 on Redis / one {shared / one:.3f}"
        )
    if options.json:
        label = f"chat fan-out {options.clients} clients, 3 servers on Redis"
        writeWorkloads(
            options.json,
            [
                {
                    "name": label,
                    "metric": "deliveries/s",
                    "higherIsBetter": True,
                    "ours": medians["redis3", "deliveredPerSecond"],
                    "baselines": {"one server": medians["one", "deliveredPerSecond"]},
                },
                {
                    "name": label,
                    "metric": "p99 ms",
                    "higherIsBetter": False,
                    "ours": medians["redis3", "p99"],
                    "baselines": {"one server": medians["one", "p99"]},
                },
            ],
            runs=runs,
        )


if __name__ == "__main__":
    main()
