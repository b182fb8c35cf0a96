"""
Bounded waiting for tests that talk to real processes and sockets: every
wait has a deadline and every loop a step limit, and nothing sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator


def polling(timeout: float, what: str, steps: int = 100_000) -> Iterator[float]:
    """
    Yield the seconds left until C{timeout}, at most C{steps} times; if the
    loop has not broken out by then, fail saying C{what} did not happen.

    The caller waits in each step on something that can wake it early (a
    socket timeout of the seconds left, a C{select}), never on a sleep.
    """
    deadline = time.monotonic() + timeout
    for _ in range(steps):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        yield remaining
    raise AssertionError(f"{what}: not done within {timeout}s / {steps} steps")
