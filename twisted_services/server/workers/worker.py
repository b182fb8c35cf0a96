"""
A worker process's entry point, started by the supervisor as
C{python -m twisted_services.server.workers.worker SPEC} (see
L{twisted_services.server.workers.supervisor.Launcher} for SPEC and the
descriptors it finds open).

Kept free of Twisted imports: sockets systemd passed are found at
descriptors 3 and up with C{LISTEN_FDS}, and C{LISTEN_PID} must name this
process before C{twisted.internet.endpoints} reads them, at its import.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Run the worker SPEC describes; its exit status."""
    arguments = sys.argv if argv is None else argv
    spec = json.loads(arguments[1])
    if "LISTEN_FDS" in os.environ:
        os.environ["LISTEN_PID"] = str(os.getpid())
    from twisted_services.server.workers.workerside import runWorker

    return runWorker(spec)


if __name__ == "__main__":
    sys.exit(main())
