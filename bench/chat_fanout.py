"""
Chat fan-out benchmark, run by hand (not in CI):

    .venv/bin/python bench/chat_fanout.py [--clients 1000] [--ws-clients 100]
        [--talkers 1] [--rate 50] [--duration 10] [--quick] [--json PATH]
        [--baseline PYTHON [--rounds 3]]

Starts C{twistd -n chat} on a loopback port (on CPU 0 with C{taskset} when
there are two or more CPUs; the load generator then runs on the second),
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

With C{--ws-clients N} (100 by default) the server also serves the browser
chat (C{--web}), and N more receivers join the room over WebSocket, framed
by wsproto as a browser's would be; their delivery rate and latency are
reported beside the TCP receivers'.

With C{--baseline PYTHON} (the interpreter of another checkout's
virtualenv, e.g. one of C{main}) the two servers are measured in
alternating rounds, and the medians and their ratio are printed: how a
change compares with what it changes, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from harness import (
    HOST,
    START_TIMEOUT,
    STOP_TIMEOUT,
    TWISTD,
    Contender,
    CpuPlan,
    Server,
    cpuPlan,
    cpuSeconds,
    loopRunner,
    peakRss,
    percentile,
    raiseDescriptorLimit,
    running,
    selfCPU,
    stopOnTerm,
    watchdog,
    withMetrics,
    writeWorkloads,
)
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

# Server notices start with "*** " now, and with "* " before issue 12; the
# baseline of a comparison may be either.
WELCOMES = (b"*** welcome, you are ", b"* welcome, you are ")
MARK = b"> B"  # what a talker's line looks like once the server prefixed <nick>
SYNC = b"> SYNC"
CONNECT_CONCURRENCY = 32
WEB_LISTENING = re.compile(r"webchat listening on tcp:(?P<host>[^\s:]+):(?P<port>\d+)")


def parseArguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fan-out benchmark for the twisted-services chat server."
    )
    parser.add_argument("--clients", type=int, default=1000, help="receivers (1000)")
    parser.add_argument(
        "--ws-clients",
        type=int,
        default=100,
        help="WebSocket receivers besides them (100; none with --baseline)",
    )
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
    parser.add_argument(
        "--baseline",
        type=Path,
        help="the Python of another checkout's venv, measured in turn with ours",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="measure ours with --metrics on (scraped every second) in turn with ours",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds each with --baseline or --metrics (3)",
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.duration = 4.0
    if not (1 <= options.clients <= 100_000 and 1 <= options.talkers <= 100):
        parser.error("--clients must be 1-100000 and --talkers 1-100")
    if not 0 <= options.ws_clients <= 10_000:
        parser.error("--ws-clients must be 0-10000")
    if options.baseline is not None:
        # A baseline from before issue 18 serves no browser chat.
        options.ws_clients = 0
    if not (0 < options.rate <= 100_000 and 0 < options.duration <= 600):
        parser.error("--rate must be in (0, 100000] and --duration in (0, 600]")
    if not 1 <= options.rounds <= 20:
        parser.error("--rounds must be 1-20")
    options.size = max(40, min(options.size, 4000))
    return options


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
        self.linesReceived(now, lines)

    def linesReceived(self, now: int, lines: list[bytes]) -> None:
        """Time the talkers' lines among C{lines}, all received at C{now}."""
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
            elif line.startswith(WELCOMES):
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


class WebClient(Client):
    """
    One receiver over the browser chat's WebSocket: each text message is
    one line. Framed by wsproto (as Twisted's own WebSocket is), which
    costs the load generator more per line than TCP's split.
    """

    def __init__(self, totals: Totals, receiving: bool) -> None:
        super().__init__(totals, receiving)
        self.socket = WSConnection(ConnectionType.CLIENT)
        self.text = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.socket_write(Request(host=f"{host}:{port}", target="/ws"))

    def socket_write(self, event: object) -> None:
        assert self.transport is not None
        self.transport.write(self.socket.send(event))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        self.socket.receive_data(data)
        lines = []
        for event in self.socket.events():
            if isinstance(event, TextMessage):
                self.text += event.data
                if event.message_finished:
                    lines.append(self.text.encode("utf-8"))
                    self.text = ""
            elif isinstance(event, Ping):
                self.socket_write(event.response())
            elif isinstance(event, CloseConnection) and self.transport is not None:
                self.transport.close()
            elif not isinstance(event, AcceptConnection):
                raise ConnectionError(f"unexpected WebSocket event {event!r}")
        self.linesReceived(now, lines)


async def connectAll(
    address: tuple[str, int],
    count: int,
    totals: Totals,
    receiving: bool,
    kind: type[Client] = Client,
) -> list[Client]:
    """Connect C{count} clients, a few at a time, each up to its welcome."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Client:
        async with gate:
            _, client = await loop.create_connection(
                lambda: kind(totals, receiving=True), *address
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


async def waitUntil(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    """Poll C{condition} every 20 ms for at most C{timeout} seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)
    return True


class ServerLog:
    """
    Reads the server's log lines: counts those saying it dropped a reader
    that fell behind, and finds the browser chat's address.
    """

    def __init__(self) -> None:
        self.slowReaders = 0
        self.webAddress: tuple[str, int] | None = None

    def __call__(self, line: str) -> None:
        if "is not reading" in line:
            self.slowReaders += 1
        elif self.webAddress is None:
            match = WEB_LISTENING.search(line)
            if match:
                self.webAddress = (match["host"], int(match["port"]))


@dataclass
class Measured:
    """What one run measured, beside what the receivers pooled in L{Totals}."""

    loop: str
    connectTime: float
    sent: int
    expected: int
    webExpected: int
    drained: bool
    serverCPU: float  # seconds, while talking and draining
    benchCPU: float
    elapsed: float  # first line sent to last line delivered
    memory: int  # the server's peak RSS


def serverContender(
    options: argparse.Namespace, python: str = sys.executable, name: str = "ours"
) -> Contender:
    """
    C{twistd -n chat} run by C{python}, its flood control raised for the
    talkers; every client comes from one address, so ours also lifts the
    per-address limits (a baseline from before issue 12 has none).
    """
    connections = options.clients + options.talkers + options.ws_clients
    arguments = [
        *["chat", "--port", "0", "--interface", HOST],
        *["--rate", str(max(1000.0, options.rate * 4)), "--burst", "100000"],
        *["--max-connections", str(connections + 16), "--idle-timeout", "0"],
    ]
    if name == "ours":
        arguments += ["--max-per-address", "0"]
        arguments += ["--connect-rate", "100000", "--connect-burst", "100000"]
        if options.ws_clients:
            arguments += ["--web", f"tcp:0:interface={HOST}"]
    return Contender(
        name,
        f"twistd -n chat ({python})",
        # -P: not the working directory's package, but the one python's
        # own environment installs (the baseline's checkout, say).
        [python, "-P", "-c", TWISTD, "-n", "--pidfile=", *arguments],
    )


async def run(
    options: argparse.Namespace,
    server: Server,
    totals: Totals,
    webTotals: Totals,
    log: ServerLog,
) -> Measured:
    """Connect everyone, talk for C{options.duration}, wait for the lines."""
    assert server.address is not None
    address = server.address
    clients: list[Client] = []
    try:
        started = time.monotonic()
        receivers = await asyncio.wait_for(
            connectAll(address, options.clients, totals, receiving=True),
            options.connect_timeout,
        )
        clients += receivers
        if options.ws_clients:
            if not await waitUntil(lambda: log.webAddress is not None, 10):
                raise RuntimeError("the server logged no webchat address")
            assert log.webAddress is not None
            webReceivers = await asyncio.wait_for(
                connectAll(
                    log.webAddress, options.ws_clients, webTotals, True, WebClient
                ),
                options.connect_timeout,
            )
            clients += webReceivers
            receivers += webReceivers
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

        serverCPU, benchCPU = cpuSeconds(server.pid), selfCPU()
        firstSend = time.perf_counter_ns()
        sentCounts = await asyncio.gather(
            *(
                talk(each, number, options.rate, options.duration, options.size)
                for number, each in enumerate(talkers)
            )
        )
        sent = sum(sentCounts)
        expected = sent * options.clients
        webExpected = sent * options.ws_clients
        drained = await waitUntil(
            lambda: (
                (totals.delivered >= expected and webTotals.delivered >= webExpected)
                or server.process.poll() is not None
            ),
            options.drain_timeout,
        )
        serverCPU = cpuSeconds(server.pid) - serverCPU
        benchCPU = selfCPU() - benchCPU
        lastDelivery = max(totals.lastDelivery, webTotals.lastDelivery)
        elapsed = (max(lastDelivery, firstSend + 1) - firstSend) / 1e9
        memory = peakRss(server.pid)
    finally:
        for client in clients:
            client.close()
    return Measured(
        loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
        connectTime=connectTime,
        sent=sent,
        expected=expected,
        webExpected=webExpected,
        drained=drained,
        serverCPU=serverCPU,
        benchCPU=benchCPU,
        elapsed=elapsed,
        memory=memory,
    )


def report(
    options: argparse.Namespace,
    plan: CpuPlan,
    totals: Totals,
    webTotals: Totals,
    measured: Measured,
    slowReaders: int,
) -> tuple[list[tuple[str, str]], dict[str, float]]:
    """The run's table rows, and its raw figures for C{--json}."""
    ordered = sorted(totals.latencies)
    webOrdered = sorted(webTotals.latencies)
    elapsed = measured.elapsed

    def latency(fraction: float, ordered: list[int] = ordered) -> float:
        if not ordered:
            return float("nan")
        return percentile(ordered, fraction) / 1e6  # nanoseconds to ms

    figures = {
        "deliveredPerSecond": totals.delivered / elapsed,
        "p99": latency(0.99),
        "delivered": totals.delivered,
        "expected": measured.expected,
        "serverCPU": 100 * measured.serverCPU / elapsed,
        "webDeliveredPerSecond": webTotals.delivered / elapsed,
        "webP99": latency(0.99, webOrdered),
    }
    rows = [
        ("receivers / talkers", f"{options.clients} / {options.talkers}"),
        ("offered", f"{options.rate:g} lines/s per talker for {options.duration:g} s"),
        ("server pinned", "yes (taskset)" if plan.pinned else "no"),
        ("event loop", measured.loop),
        ("connect + settle", f"{measured.connectTime:.1f} s"),
        ("lines sent", f"{measured.sent}"),
        ("deliveries", f"{totals.delivered} of {measured.expected}"),
        ("delivered lines/s", f"{totals.delivered / elapsed:,.0f}"),
        ("latency p50", f"{latency(0.50):.2f} ms"),
        ("latency p99", f"{latency(0.99):.2f} ms"),
        ("latency max", f"{latency(1.0):.2f} ms"),
    ]
    if options.ws_clients:
        rows += [
            ("WebSocket receivers", f"{options.ws_clients}"),
            ("WS deliveries", f"{webTotals.delivered} of {measured.webExpected}"),
            ("WS delivered lines/s", f"{webTotals.delivered / elapsed:,.0f}"),
            (
                "lines/s per receiver, TCP / WS",
                f"{totals.delivered / elapsed / options.clients:,.1f} / "
                f"{webTotals.delivered / elapsed / options.ws_clients:,.1f}",
            ),
            ("WS latency p50", f"{latency(0.50, webOrdered):.2f} ms"),
            ("WS latency p99", f"{latency(0.99, webOrdered):.2f} ms"),
            ("WS latency max", f"{latency(1.0, webOrdered):.2f} ms"),
        ]
    lost = totals.lost + webTotals.lost
    rows += [
        ("all drained", "yes" if measured.drained else "NO"),
        ("connections lost", f"{lost} ({slowReaders} as slow readers)"),
        ("server CPU", f"{100 * measured.serverCPU / elapsed:.0f}%"),
        ("load generator CPU", f"{100 * measured.benchCPU / elapsed:.0f}%"),
        ("server peak RSS", f"{measured.memory / 2**20:.0f} MiB"),
    ]
    return rows, figures


def measure(
    options: argparse.Namespace, plan: CpuPlan, contender: Contender
) -> tuple[list[tuple[str, str]], dict[str, float]]:
    """One run of C{contender}: its table rows and figures."""
    budget = options.connect_timeout * 3 + options.duration + options.drain_timeout
    budget += 60
    runner, _ = loopRunner()
    totals, webTotals = Totals(), Totals()
    log = ServerLog()
    # The load has its own deadline; this one also covers the server's
    # start and stop.
    with (
        watchdog("chat_fanout", budget + START_TIMEOUT + STOP_TIMEOUT + 10),
        running(contender, plan, onLine=log) as server,
    ):
        measured = runner(
            asyncio.wait_for(run(options, server, totals, webTotals, log), budget)
        )
    # After the stop: every line the server logged has been read.
    return report(options, plan, totals, webTotals, measured, log.slowReaders)


def compare(
    options: argparse.Namespace, plan: CpuPlan, contenders: list[Contender]
) -> None:
    """
    Ours and another contender in alternating rounds; medians and ratios,
    server CPU per delivered line among them (the offered load fixes the
    delivery rate, so the cost shows there).
    """
    figures: dict[str, list[dict[str, float]]] = {c.name: [] for c in contenders}
    for round in range(options.rounds):
        # Alternate who goes first, so neither always runs on a warmer machine.
        for contender in contenders if round % 2 == 0 else contenders[::-1]:
            _, measured = measure(options, plan, contender)
            measured["cpuPerLine"] = (
                1e6 * measured["serverCPU"] / 100 / measured["deliveredPerSecond"]
            )
            figures[contender.name].append(measured)
            print(
                f"  round {round + 1} {contender.name:<8}"
                f" {measured['deliveredPerSecond']:>10,.0f} lines/s"
                f"  p99 {measured['p99']:.2f} ms"
                f"  server CPU {measured['serverCPU']:.0f}%"
                f"  {measured['delivered']:.0f} of {measured['expected']:.0f}",
                flush=True,
            )
    print(f"chat fan-out, {options.clients} clients, medians of {options.rounds}")
    first, second = (contender.name for contender in contenders)
    for metric, unit in [
        ("deliveredPerSecond", "lines/s"),
        ("p99", "ms"),
        ("serverCPU", "% CPU"),
        ("cpuPerLine", "us CPU/line"),
    ]:
        ours = statistics.median(each[metric] for each in figures[first])
        other = statistics.median(each[metric] for each in figures[second])
        print(
            f"  {metric:<20} {first} {ours:,.2f} {unit}, {second} {other:,.2f}"
            f" {unit}, {second}/{first} {other / ours:.3f}"
        )


def main(argv: list[str] | None = None) -> None:
    options = parseArguments(argv)
    plan = cpuPlan(not options.no_pin)
    plan.pinSelf()
    raiseDescriptorLimit(options.clients + options.talkers + 256)
    stopOnTerm("chat_fanout")
    if options.baseline is not None:
        baseline = serverContender(options, str(options.baseline), "baseline")
        compare(options, plan, [serverContender(options), baseline])
        return
    if options.metrics:
        ours = serverContender(options)
        compare(options, plan, [ours, withMetrics(ours, "ours+metrics")])
        return
    rows, figures = measure(options, plan, serverContender(options))
    width = max(len(name) for name, _ in rows)
    print("chat fan-out")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if options.json:
        label = f"chat fan-out {options.clients} clients"
        workloads: list[dict[str, object]] = [
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
        if options.ws_clients:
            webLabel = f"{label}, its {options.ws_clients} WebSocket receivers"
            workloads += [
                {
                    "name": webLabel,
                    "metric": "delivered lines/s",
                    "higherIsBetter": True,
                    "ours": figures["webDeliveredPerSecond"],
                    "baselines": {},
                },
                {
                    "name": webLabel,
                    "metric": "p99 ms",
                    "higherIsBetter": False,
                    "ours": figures["webP99"],
                    "baselines": {},
                },
            ]
        writeWorkloads(options.json, workloads)


if __name__ == "__main__":
    main()
