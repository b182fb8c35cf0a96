"""
The process behind L{tests.support.forkserver}: it imports the part of
Twisted that every C{twistd} run imports, then runs C{python -c CODE ARGS}
and C{python -m MODULE ARGS} commands by forking itself, so that each one
starts with those imports done.

It is run as C{python -c "import runpy; runpy.run_path(THIS_FILE, ...)"}
with its end of a C{SOCK_SEQPACKET} control socket as its one argument.
Each request on it is a JSON object: C{mode} (C{-c} or C{-m}), C{target}
(the code or the module), C{arguments}, C{environment}, C{cwd}, C{session}
(whether to start a new session) and C{targets} (the number, in the child,
of each file descriptor sent with it). The reply is C{{"pid": N}}; when
that child exits and is reaped, C{{"pid": N, "status": S}} follows, S as
C{Popen.returncode} has it. When the control socket closes (the test
process ended), it kills the children left and exits.

Standard library and Twisted only: the tests check what this project's
own modules import at start-up, so each child imports them afresh. Nor the
reactor: C{twistd} installs the one its options name.
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import io
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import types
from typing import Any

# What every twistd -n echo|chat|http|temperature|services imports from
# Twisted (and, through it, the standard library, pyOpenSSL, cryptography
# and service_identity): about 0.3 s of CPU on this project's VM, out of
# about 0.37 s for a start-to-stop run.
PRELOAD = (
    "twisted.scripts.twistd",
    "twisted.application.app",
    "twisted.application.reactors",
    "twisted.internet.default",
    "twisted.internet.epollreactor",
    "twisted.internet.endpoints",
    "twisted.internet.ssl",
    "twisted.internet.stdio",
    "twisted.internet.process",
    "twisted.internet.task",
    "twisted.logger",
    "twisted.plugin",
    "twisted.protocols.policies",
    "twisted.python.systemd",
    "twisted.python.usage",
    # What Twisted's own dropins import when twistd loads them (not the
    # dropins: twisted.plugins finds its directories at import).
    "twisted.cred.strcred",
    "twisted.trial.itrial",
    "twisted.words.iwords",
)
_MESSAGE = 1 << 20
_MOST_FDS = 64


def _preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    if "twisted.internet.reactor" in sys.modules:
        raise RuntimeError("preloading installed a reactor: twistd must choose it")


def _serve(control: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """
    Answer requests until this process is a forked child (return its
    request and file descriptors) or the control socket closes (C{None}).
    """
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    children: dict[int, int] = {}  # pidfd: pid
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                message, fds, _, _ = socket.recv_fds(control, _MESSAGE, _MOST_FDS)
                if not message:
                    _killAll(children)
                    return None
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    control.close()
                    for pidfd in children:
                        os.close(pidfd)
                    return json.loads(message), fds
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = pid
                selector.register(pidfd, selectors.EVENT_READ)
                report = {"pid": pid}
            else:
                pidfd = key.fd
                selector.unregister(pidfd)
                os.close(pidfd)
                pid = children.pop(pidfd)
                _, status = os.waitpid(pid, 0)
                report = {"pid": pid, "status": os.waitstatus_to_exitcode(status)}
            try:
                control.send(json.dumps(report).encode())
            except OSError:  # the test process is gone
                _killAll(children)
                return None


def _killAll(children: dict[int, int]) -> None:
    """Kill and reap every child left: none outlives the test process."""
    for pidfd, pid in children.items():
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it has exited already, and is reaped below
        os.waitpid(pid, 0)
        os.close(pidfd)


def _placeDescriptors(fds: list[int], targets: list[int]) -> None:
    """
    Put each received descriptor at its target number, inheritable, and
    close every other one above stderr, as C{subprocess}'s C{pass_fds}
    and C{close_fds} leave a child.
    """
    highest = max([2, *targets]) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, highest) for fd in fds]
    for fd in fds:
        os.close(fd)
    for fd, target in zip(moved, targets, strict=True):
        os.dup2(fd, target, inheritable=True)
    kept = sorted({0, 1, 2, *targets})
    for low, high in zip(kept, [*kept[1:], os.sysconf("SC_OPEN_MAX")], strict=True):
        os.closerange(low + 1, high)


def _standardStreams(unbuffered: bool) -> None:
    """
    New C{sys.stdin}, C{stdout} and C{stderr} on the descriptors now at 0,
    1 and 2, buffered as the interpreter buffers them at start-up for the
    child's C{PYTHONUNBUFFERED}: this process's own were made for its own
    environment. (Neither closes its descriptor, as the interpreter's own
    never do.)
    """
    streams = []
    for fd, old in enumerate((sys.stdin, sys.stdout, sys.stderr)):
        raw = io.FileIO(fd, "wb" if fd else "rb", closefd=False)
        raw.name = f"<{('stdin', 'stdout', 'stderr')[fd]}>"
        buffered: io.RawIOBase | io.BufferedIOBase = raw
        if not fd:
            buffered = io.BufferedReader(raw)
        elif not unbuffered:
            buffered = io.BufferedWriter(raw)
        streams.append(
            io.TextIOWrapper(
                buffered,  # type: ignore[arg-type]
                encoding=old.encoding,
                errors=old.errors,
                # As Python 3.9 and later: stderr by lines, stdout only on
                # a terminal.
                line_buffering=bool(fd)
                and not unbuffered
                and (fd == 2 or os.isatty(fd)),
                write_through=bool(fd) and unbuffered,
            )
        )
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams


def _become(request: dict[str, Any], fds: list[int]) -> None:
    """Turn this forked child into C{python -c|-m TARGET ARGS} and run it."""
    _placeDescriptors(fds, request["targets"])
    if request["session"]:
        os.setsid()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["environment"])
    _standardStreams(bool(os.environ.get("PYTHONUNBUFFERED")))
    if request["mode"] == "-m":
        # As the interpreter does for -m: the working directory first on
        # the path, the module's file as argv[0] (run_module sets it).
        sys.path[0] = os.getcwd()
        sys.argv = ["-m", *request["arguments"]]
        runpy.run_module(request["target"], run_name="__main__", alter_sys=True)
        return
    sys.argv = ["-c", *request["arguments"]]
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    exec(compile(request["target"], "<string>", "exec"), main.__dict__)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    _preload()
    # Out of the collector's passes, as a service's own heap is once it
    # has started (StartupHeapFreezer): a child's collections then leave
    # the shared pages alone instead of copying each one they touch.
    gc.freeze()
    child = _serve(control)
    if child is not None:
        _become(*child)


if __name__ == "__main__":
    main()
