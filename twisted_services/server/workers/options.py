"""
C{--workers N|auto}, shared by every plugin that can run worker processes,
and the one way to get, from a plugin's parsed options, the options of one
worker process.
"""

from __future__ import annotations

import os
import sys
from typing import TypeVar

from twisted.python import usage

from twisted_services.server.options import forOption, positiveInt

AUTO = "auto"

_O = TypeVar("_O", bound="WorkerOptions")


def usableCPUs() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def workerCount(value: str) -> int:
    """Coerce C{--workers}: a whole number of at least 1, or C{auto}."""
    if value == AUTO:
        return usableCPUs()
    try:
        return positiveInt(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a whole number of at least 1 nor {AUTO}"
        ) from None


workerCount.coerceDoc = (  # type: ignore[attr-defined]
    "A whole number, at least 1, or auto (one a usable CPU)."
)


class WorkerOptions(usage.Options):
    """
    C{--workers}, for a plugin's options; mixed in before the plugin's base
    options class. The command line parsed is kept in L{argv}, so that each
    worker parses the very same one.
    """

    optParameters = [
        [
            "workers",
            None,
            1,
            "Worker processes serving the same listeners (auto: one a usable "
            "CPU). Above 1 this process supervises them: restarts any that "
            "dies, reloads them on SIGHUP without dropping a connection.",
            forOption("workers", workerCount),
        ],
    ]

    argv: list[str]

    def parseOptions(self, options: list[str] | None = None) -> None:
        self.argv = list(sys.argv[1:] if options is None else options)
        super().parseOptions(options)

    def workersRefusal(self) -> str | None:
        """
        Why this configuration cannot run more than one worker process, or
        L{None} if it can.
        """
        return None

    def postOptions(self) -> None:
        super().postOptions()
        if self["workers"] > 1:
            refusal = self.workersRefusal()
            if refusal is not None:
                raise usage.UsageError(f"--workers {self['workers']}: {refusal}")


def supervising(options: usage.Options) -> bool:
    """Whether C{options} ask for a supervisor and worker processes."""
    return int(options.get("workers", 1)) > 1


def oneProcess(options: _O) -> _O:
    """
    What one worker process runs: C{options} parsed again from the same
    command line, with C{--workers} 1.
    """
    again = type(options)()
    again.parseOptions(options.argv)
    again["workers"] = 1
    return again
