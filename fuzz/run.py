"""
Run every fuzz harness in this directory (each C{fuzz_*.py}) for a bounded
time, one after the other, and fail if any of them finds a crash, a hang or
unbounded memory growth.

Each harness is an atheris (libFuzzer) program: it exits non-zero and
writes the failing input as C{crash-*}, C{timeout-*} or C{oom-*} into the
artifact directory when it finds one. Every run also starts from the
harness's seed corpus, C{fuzz/corpus/NAME/}, if there is one.

    python fuzz/run.py --seconds 60            # make fuzz
    python fuzz/run.py --seconds 3             # the short run make test does
    python fuzz/run.py --seconds 60 fuzz_chat  # one harness
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# libFuzzer's own limits: one input may take this long, and the process may
# use this much memory, before the run counts as a hang or as unbounded growth.
PER_INPUT_TIMEOUT = 10
RSS_LIMIT_MB = 1024


def harnesses(only: list[str]) -> list[Path]:
    """Every C{fuzz_*.py} here, or those named in C{only}."""
    found = sorted(HERE.glob("fuzz_*.py"))
    if only:
        found = [path for path in found if path.stem in only]
        missing = set(only) - {path.stem for path in found}
        if missing:
            raise SystemExit(f"no such harness: {', '.join(sorted(missing))}")
    return found


def runHarness(path: Path, seconds: int, artifacts: Path) -> bool:
    """Fuzz C{path} for C{seconds}; C{True} if it found nothing."""
    corpus = HERE / "corpus" / path.stem
    # libFuzzer writes new interesting inputs into the first corpus
    # directory: keep those out of the checkout.
    scratch = Path(tempfile.mkdtemp(prefix=f"{path.stem}-"))
    command = [
        sys.executable,
        str(path),
        f"-max_total_time={seconds}",
        f"-timeout={PER_INPUT_TIMEOUT}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
        str(scratch),
    ]
    if corpus.is_dir():
        command.append(str(corpus))
    print(f"fuzz: {path.stem} for {seconds} s", flush=True)
    # A hung harness is stopped by libFuzzer's -timeout; this is the backstop.
    try:
        result = subprocess.run(command, timeout=seconds + 60 + PER_INPUT_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"fuzz: {path.stem} did not stop by itself", flush=True)
        return False
    if result.returncode != 0:
        print(f"fuzz: {path.stem} FAILED; inputs in {artifacts}", flush=True)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="per harness")
    parser.add_argument(
        "--artifacts",
        default=str(Path(tempfile.gettempdir()) / "twisted-services-fuzz"),
        help="where failing inputs are written",
    )
    parser.add_argument("only", nargs="*", help="harness names (default: all)")
    options = parser.parse_args(argv)
    artifacts = Path(options.artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    found = harnesses(options.only)
    if not found:
        raise SystemExit("no fuzz harnesses found")
    failed = [
        path.stem for path in found if not runHarness(path, options.seconds, artifacts)
    ]
    print(f"fuzz: {len(found) - len(failed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
