"""
Metrics on against metrics off, for every service, in one run: the goal of
issue 15 is each service's bench throughput with C{--metrics} on (and
scraped every second) at least 0.95x of it with C{--metrics} off.

    .venv/bin/python bench/metrics_overhead.py [--rounds 7] [--only echo http ...]

Each service is measured by its own bench's workload and measurement
(C{echo_bench}, C{http_bench}, C{temperature_bench}, C{chat_fanout}), only
ours, ours+metrics and, as a control, ours again (metrics off), many rounds
with the order rotating each round, so that a drift of this noisy VM hits
all three alike. Per workload it reports the ratio of the medians (on / off)
of the throughput and of the throughput per server CPU-second, the lowest
and highest of the per-round ratios, and the control: off again / off, two
identical servers, which shows how far the noise alone reaches in this run.
Where the noise is wider than the goal's 5%, the verdict here cannot settle
it: C{bench/metrics_instructions.py} counts instructions instead.

Echo's single-connection loads are reported but not judged: one connection
measures the VM's wake-up latency, not the server. Chat's delivered lines/s
is fixed by the offered load, so its cost shows in lines per server
CPU-second, which is judged with it.

Not part of C{make bench} (C{run_all.py} skips it): about 12 minutes with
the default 7 rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import chat_fanout
import echo_bench
import http_bench
import temperature_bench
from harness import (
    RESULTS,
    Contender,
    CpuPlan,
    cpuPlan,
    interleave,
    median,
    raiseDescriptorLimit,
    stopOnTerm,
    watchdog,
    withMetrics,
    writeResults,
)

GOAL = 0.95
OFF, ON, CONTROL = "ours", "ours+metrics", "ours again"
# Seconds one measurement of one contender may take, per service, with room.
PER_RUN = {"echo": 90.0, "http": 60.0, "temperature": 60.0, "chat": 120.0}


@dataclass
class Sample:
    """One workload of one contender in one round."""

    service: str
    workload: str
    contender: str
    round: int
    throughput: float
    unit: str
    serverCPU: float  # share of one core during the measured run
    judged: bool = True

    @property
    def perCPU(self) -> float:
        return self.throughput / self.serverCPU if self.serverCPU else 0.0


Measure = Callable[[Contender, int], list[Sample]]


@dataclass
class Service:
    """How to measure one service: its two contenders and one round of one."""

    name: str
    off: Contender
    measure: Measure
    contenders: list[Contender] = field(init=False)

    def __post_init__(self) -> None:
        self.contenders = [
            self.off,
            withMetrics(self.off, ON),
            dataclasses.replace(self.off, name=CONTROL),
        ]


def echoService(plan: CpuPlan) -> Service:
    options = echo_bench.parseArguments([])
    off = next(c for c in echo_bench.contenders() if c.name == OFF)

    def measure(contender: Contender, number: int) -> list[Sample]:
        return [
            Sample(
                "echo",
                echo_bench.workloadName(run["connections"], run["size"]),
                contender.name,
                number,
                run["messagesPerSecond"],
                "msg/s",
                run["serverCPU"],
                judged=run["connections"] > 1,
            )
            for run in echo_bench.measurePingPong(contender, number, options, plan)
        ]

    return Service("echo", off, measure)


def httpService(plan: CpuPlan) -> Service:
    options = http_bench.parseArguments([])
    off = next(c for c in http_bench.contenders(options) if c.name == OFF)

    def measure(contender: Contender, number: int) -> list[Sample]:
        run = http_bench.measure(contender, number, options, plan)
        errors = run.result.socketErrors + run.result.non2xx
        if errors:
            raise RuntimeError(f"{contender.name}: {errors} errors from wrk")
        workload = f"http keep-alive, {http_bench.CONNECTIONS} conn"
        return [
            Sample(
                "http",
                workload,
                contender.name,
                number,
                run.result.requestsPerSecond,
                "req/s",
                run.serverCPU,
            )
        ]

    return Service("http", off, measure)


def temperatureService(plan: CpuPlan) -> Service:
    options = temperature_bench.parseArguments([])
    off = next(c for c in temperature_bench.contenders() if c.name == OFF)

    def measure(contender: Contender, number: int) -> list[Sample]:
        run = temperature_bench.measure(contender, options, plan)
        workload = f"temperature, {options.sockets} sockets"
        return [
            Sample(
                "temperature",
                workload,
                contender.name,
                number,
                run["repliesPerSecond"],
                "replies/s",
                run["serverCPU"],
            )
        ]

    return Service("temperature", off, measure)


def chatService(plan: CpuPlan) -> Service:
    options = chat_fanout.parseArguments(["--quick"])
    raiseDescriptorLimit(options.clients + options.talkers + options.ws_clients + 256)
    off = chat_fanout.serverContender(options)

    def measure(contender: Contender, number: int) -> list[Sample]:
        _, figures = chat_fanout.measure(options, plan, contender)
        workload = (
            f"chat fan-out, {options.clients} TCP + {options.ws_clients} WebSocket"
        )
        return [
            Sample(
                "chat",
                workload,
                contender.name,
                number,
                figures["deliveredPerSecond"],
                "lines/s",
                figures["serverCPU"] / 100,
            )
        ]

    return Service("chat", off, measure)


SERVICES = {
    "echo": echoService,
    "http": httpService,
    "temperature": temperatureService,
    "chat": chatService,
}


@dataclass
class Verdict:
    """On against off for one workload."""

    service: str
    workload: str
    unit: str
    off: float
    on: float
    ratio: float
    roundRatios: list[float]
    perCPURatio: float
    control: float
    controlRounds: list[float]
    judged: bool

    @property
    def met(self) -> bool:
        return self.ratio >= GOAL and (
            self.service != "chat" or self.perCPURatio >= GOAL
        )


def perRound(off: list[Sample], other: list[Sample]) -> list[float]:
    """C{other}'s throughput over off's, round by round."""
    byRound = {s.round: s.throughput for s in off}
    return [s.throughput / byRound[s.round] for s in other if byRound.get(s.round)]


def spread(ratios: list[float]) -> str:
    """The lowest and highest of per-round ratios: how far the noise reached."""
    return f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "-"


def verdicts(samples: list[Sample]) -> list[Verdict]:
    found = []
    for key in dict.fromkeys((s.service, s.workload) for s in samples):
        mine = [s for s in samples if (s.service, s.workload) == key]
        off = [s for s in mine if s.contender == OFF]
        on = [s for s in mine if s.contender == ON]
        again = [s for s in mine if s.contender == CONTROL]
        offRate, onRate = (
            median(s.throughput for s in off),
            median(s.throughput for s in on),
        )
        offCost, onCost = median(s.perCPU for s in off), median(s.perCPU for s in on)
        found.append(
            Verdict(
                *key,
                mine[0].unit,
                offRate,
                onRate,
                onRate / offRate if offRate else float("nan"),
                perRound(off, on),
                onCost / offCost if offCost else float("nan"),
                median(s.throughput for s in again) / offRate
                if offRate
                else float("nan"),
                perRound(off, again),
                mine[0].judged,
            )
        )
    return found


def table(found: list[Verdict], rounds: int) -> str:
    lines = [
        f"metrics on / off: medians of {rounds} rotating rounds; goal {GOAL}x; "
        "control: off again / off",
        f"  {'workload':<40} {'off':>9} {'on':>9} {'on/off':>7} "
        f"{'(rounds)':>10} {'per CPU-s':>9} {'control':>7} {'(rounds)':>10}  verdict",
    ]
    for verdict in found:
        if not verdict.judged:
            outcome = "not judged (one connection: wake-up latency)"
        else:
            outcome = "met" if verdict.met else "NOT MET"
            if abs(verdict.control - 1) > 1 - GOAL:
                outcome += ", but the control is off by more than the goal"
        lines.append(
            f"  {verdict.workload:<40} {verdict.off:>9,.0f} {verdict.on:>9,.0f} "
            f"{verdict.ratio:>6.3f}x {spread(verdict.roundRatios):>10} "
            f"{verdict.perCPURatio:>8.3f}x {verdict.control:>6.3f}x "
            f"{spread(verdict.controlRounds):>10}  {outcome}"
        )
    return "\n".join(lines)


def parseArguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Every service's bench with --metrics on against off, in one run."
    )
    parser.add_argument("--rounds", type=int, default=7, help="rounds (7)")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(SERVICES), help="these services only"
    )
    options = parser.parse_args(argv)
    if not 1 <= options.rounds <= 30:
        parser.error("--rounds must be 1-30")
    return options


def main(argv: list[str]) -> int:
    options = parseArguments(argv)
    plan = cpuPlan().require("metrics_overhead")
    plan.pinSelf()
    stopOnTerm("metrics_overhead")
    names = options.only or list(SERVICES)
    budget = sum(3 * options.rounds * PER_RUN[name] for name in names) + 60
    samples: list[Sample] = []
    with watchdog("metrics_overhead", budget):
        for name in names:
            service = SERVICES[name](plan)
            rounds = interleave(options.rounds, service.contenders, rotate=True)
            for number, contender in rounds:
                measured = service.measure(contender, number)
                samples += measured
                print(
                    f"  {name} round {number} {contender.name:<13} "
                    + "  ".join(
                        f"{s.throughput:>10,.0f} {s.unit} ({s.serverCPU:.0%} CPU)"
                        for s in measured
                    ),
                    flush=True,
                )
    found = verdicts(samples)
    print()
    print(table(found, options.rounds))
    writeResults(
        RESULTS,
        "metrics",
        {"rounds": options.rounds, "services": names, "goal": GOAL},
        verdicts=[asdict(verdict) for verdict in found],
        samples=[asdict(sample) for sample in samples],
    )
    return 0 if all(v.met for v in found if v.judged) else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit("metrics_overhead: interrupted")
