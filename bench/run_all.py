"""
The benchmark suite (C{make bench}): runs every benchmark script in
C{bench/} and prints one table of our figures against the baselines measured
in the same run.

    .venv/bin/python bench/run_all.py [--budget SECONDS] [--only NAME ...]

Each script runs as a subprocess with C{--quick --json PATH} and its own time
budget (L{BUDGETS}; the whole suite stays under six minutes on two cores).
The interface every script follows: C{--quick} selects a short
configuration, and C{--json PATH} writes::

    {"workloads": [{"name": str, "metric": str, "higherIsBetter": bool,
                    "ours": float, "baselines": {name: float}}]}

A script that is missing, fails, runs out of time or writes no usable JSON
gets a row saying so; the suite goes on. The table goes to standard output
and, as Markdown and JSON with the machine's core count and the Python and
Twisted versions, to C{bench/results/suite-<time>.md} and C{.json}; each
script's output goes to C{bench/results/suite-<time>/<script>.log}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
# Seconds each script may take in quick mode, with room to spare; the sum
# stays under six minutes. A script not listed gets DEFAULT_BUDGET.
BUDGETS = {
    "echo_bench.py": 100.0,
    "http_bench.py": 75.0,
    "chat_fanout.py": 40.0,
    "temperature_bench.py": 40.0,
    "chat_redis_bench.py": 30.0,
    "workers_bench.py": 60.0,
}
DEFAULT_BUDGET = 30.0
TOTAL_BUDGET = 350.0
# Expected in the suite: reported as missing if absent.
EXPECTED = list(BUDGETS)
# Modules the scripts import, not benchmarks.
LIBRARIES = {"harness.py"}
# Benchmarks too long for the suite, run on their own.
SEPARATE = {"metrics_overhead.py"}
STOP_GRACE = 10.0


@dataclass
class Outcome:
    """What running one script gave: its workloads, or why there are none."""

    script: str
    # "ok", "partial" (figures, but a non-zero exit), "missing", "failed",
    # "timed out", "no results" or "skipped".
    status: str
    detail: str = ""
    seconds: float = 0.0
    workloads: list[dict[str, object]] = field(default_factory=list)


def discover(only: list[str]) -> list[str]:
    """
    The scripts to run: the expected ones and any other C{bench/*.py} but
    this one, the L{LIBRARIES}, the L{SEPARATE} ones and private modules.
    """
    found = sorted(
        path.name
        for path in HERE.glob("*.py")
        if path.name != Path(__file__).name
        and path.name not in LIBRARIES | SEPARATE
        and not path.name.startswith("_")
    )
    names = EXPECTED + [name for name in found if name not in EXPECTED]
    if only:
        names = [name for name in names if name in only or name[:-3] in only]
    return names


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the script (it stops its servers), then SIGKILL its group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
    # The script leads its own process group: nothing else is in it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_GRACE)


def runScript(name: str, budget: float, logs: Path) -> Outcome:
    """Run C{bench/NAME --quick --json ...} for at most C{budget} seconds."""
    script = HERE / name
    if not script.exists():
        return Outcome(name, "missing", "not in bench/ yet")
    output = logs / f"{name[:-3]}.json"
    log = logs / f"{name[:-3]}.log"
    command = [sys.executable, str(script), "--quick", "--json", str(output)]
    print(f"\n== {name} (budget {budget:.0f} s)", flush=True)
    started = time.monotonic()
    tail: list[str] = []
    with log.open("wb") as logFile:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

        def relay() -> None:
            assert process.stdout is not None
            for raw in process.stdout:
                logFile.write(raw)
                line = raw.decode("utf-8", "replace").rstrip()
                tail[:] = [*tail[-19:], line]
                print(f"   | {line}", flush=True)

        reader = threading.Thread(target=relay, daemon=True)
        reader.start()
        try:
            code = process.wait(budget)
        except subprocess.TimeoutExpired:
            _terminate(process)
            reader.join(STOP_GRACE)
            return Outcome(
                name,
                "timed out",
                f"stopped after {budget:.0f} s",
                time.monotonic() - started,
            )
        finally:
            if process.poll() is None:
                _terminate(process)
        reader.join(STOP_GRACE)
    seconds = time.monotonic() - started
    last = next((line for line in reversed(tail) if line.strip()), "")
    try:
        workloads = json.loads(output.read_text())["workloads"]
        for workload in workloads:
            float(workload["ours"])
            str(workload["name"]), str(workload["metric"])
            bool(workload["higherIsBetter"])
            {str(k): float(v) for k, v in workload.get("baselines", {}).items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        if code != 0:
            return Outcome(name, "failed", f"exit {code}: {last[:160]}", seconds)
        return Outcome(name, "no results", f"bad --json output: {error}", seconds)
    if code != 0:
        # Figures were written, but the script says something went wrong.
        detail = f"exit {code} after writing its figures: see {log.name}"
        return Outcome(name, "partial", detail, seconds, workloads)
    return Outcome(name, "ok", "", seconds, workloads)


def advantage(workload: dict[str, object], baseline: float) -> float:
    """How many times better ours is than C{baseline} (>1: ours is better)."""
    ours = float(workload["ours"])  # type: ignore[arg-type]
    better, worse = (ours, baseline) if workload["higherIsBetter"] else (baseline, ours)
    if worse == 0:
        # Both zero (no loss on either side) is a tie; one zero has no ratio.
        return 1.0 if better == 0 else math.nan
    return better / worse


def rows(outcomes: list[Outcome]) -> list[list[str]]:
    """Table rows: workload, metric, ours, baseline, its figure, the ratio."""
    found = []
    for outcome in outcomes:
        if outcome.status != "ok":
            status = f"{outcome.status.upper()}: {outcome.detail}"
            found.append([outcome.script, "", "", "", "", status])
        for workload in outcome.workloads:
            ours = float(workload["ours"])  # type: ignore[arg-type]
            baselines = workload.get("baselines") or {}
            assert isinstance(baselines, dict)
            first = [str(workload["name"]), str(workload["metric"]), figure(ours)]
            if not baselines:
                found.append([*first, "(none)", "", ""])
            for index, (name, value) in enumerate(baselines.items()):
                ratio = advantage(workload, float(value))
                cells = [str(name), figure(float(value))]
                cells.append("n/a" if math.isnan(ratio) else f"{ratio:.2f}x")
                found.append([*(first if index == 0 else ["", "", ""]), *cells])
    return found


def figure(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


HEADER = ["workload", "metric", "ours", "baseline", "baseline's", "ours vs it"]


def textTable(body: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [HEADER, *body]) for i in range(6)]
    right = {2, 4, 5}

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join(
        [line(HEADER), line(["-" * width for width in widths])]
        + [line(row) for row in body]
    )


def markdownTable(body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|--:|---|--:|--:|"]
    for row in body:
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    return "\n".join(lines)


def machine() -> dict[str, object]:
    import twisted

    return {
        "cores": os.cpu_count(),
        "usableCores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "platform": platform.platform(),
    }


NOTE = (
    '"ours vs it" is how many times better ours is than that baseline '
    "(above 1: ours is better; for latency and loss, lower is better, so it "
    'is theirs/ours). A baseline named "ceiling" is no contender: it shows '
    "the load generator's headroom."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark in bench/.")
    parser.add_argument(
        "--budget",
        type=float,
        default=TOTAL_BUDGET,
        help=f"seconds for the whole suite ({TOTAL_BUDGET:.0f})",
    )
    parser.add_argument("--only", nargs="*", default=[], help="scripts to run")
    options = parser.parse_args(argv)

    def terminated(signum: int, frame: object) -> None:
        # Unwinds through runScript, which stops the script it is running.
        raise SystemExit(f"run_all: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    logs = RESULTS / f"suite-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    scripts = discover(options.only)
    deadline = time.monotonic() + options.budget
    outcomes = []
    for number, name in enumerate(scripts):
        remaining = deadline - time.monotonic()
        # Whatever is left is shared fairly with the scripts still to run.
        later = sum(BUDGETS.get(each, DEFAULT_BUDGET) for each in scripts[number + 1 :])
        budget = min(BUDGETS.get(name, DEFAULT_BUDGET), remaining - later * 0.5)
        if budget < 5:
            outcomes.append(Outcome(name, "skipped", "suite time budget spent"))
            continue
        outcomes.append(runScript(name, budget, logs))
    body = rows(outcomes)
    info = machine()
    title = (
        f"bench suite {stamp}: {info['cores']} cores, Python {info['python']}, "
        f"Twisted {info['twisted']}"
    )
    print(f"\n{title}\n")
    print(textTable(body))
    print(f"\n{NOTE}")
    markdown = RESULTS / f"suite-{stamp}.md"
    markdown.write_text(
        f"# {title}\n\n{markdownTable(body)}\n\n{NOTE}\n\n"
        + "\n".join(
            f"- `{each.script}`: {each.status}"
            + (f" ({each.detail})" if each.detail else "")
            + (f", {each.seconds:.0f} s" if each.seconds else "")
            for each in outcomes
        )
        + "\n"
    )
    data = RESULTS / f"suite-{stamp}.json"
    data.write_text(
        json.dumps(
            {
                "when": stamp,
                "machine": info,
                "scripts": [asdict(each) for each in outcomes],
                "table": [dict(zip(HEADER, row, strict=True)) for row in body],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nresults: {markdown}\n         {data}\n         logs in {logs}")
    return 0 if all(each.status == "ok" for each in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
