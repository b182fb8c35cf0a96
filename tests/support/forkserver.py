"""
Starts the suite's C{python -c ...} and C{python -m ...} commands (every
C{twistd} the integration tests run, and the clients) as forks of a process
that has already imported Twisted, instead of as new interpreters.

A new interpreter spends about 0.3 s of CPU importing Twisted before
C{twistd} does anything, and a run of the suite starts a few hundred: on
two cores that was most of C{make test}'s time. The fork server
(L{tests.support.forkserver_main}) pays it once per test process. Each
child then runs the command as the interpreter would: its own arguments,
environment, working directory, standard streams and passed descriptors,
the reactor it installs itself, and this project's modules imported afresh.

L{Popen} and L{run} stand in for C{subprocess}'s: any other command (curl,
a launcher that execs C{twistd}, the README's shell commands, the installed
C{twistd} script) starts a new process as before, and so do the tests that
check what a start imports.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_MAIN = Path(__file__).with_name("forkserver_main.py")
_BOOT = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
_MESSAGE = 1 << 20
_REPLY_TIMEOUT = 30.0


class ForkServer:
    """One fork server process and the reports it sends about its children."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(_MAIN), str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        self._control = ours
        self._spawning = threading.Lock()
        self._pids: queue.Queue[int | None] = queue.Queue()
        self._reported = threading.Condition()
        self._statuses: dict[int, int] = {}
        self._ended = False
        self._closed = False
        threading.Thread(target=self._read, name="forkserver", daemon=True).start()

    def _read(self) -> None:
        """Sort the server's messages: new pids, and exit statuses."""
        try:
            while message := self._control.recv(_MESSAGE):
                report = json.loads(message)
                if "status" in report:
                    with self._reported:
                        self._statuses[report["pid"]] = report["status"]
                        self._reported.notify_all()
                else:
                    self._pids.put(report["pid"])
        except OSError:
            pass  # closed by close()
        with self._reported:
            self._ended = True
            self._reported.notify_all()
        self._pids.put(None)

    def spawn(self, request: dict[str, Any], descriptors: dict[int, int]) -> int:
        """
        Fork a child to run C{request} (see L{tests.support.forkserver_main})
        with C{descriptors} (its number there: a descriptor here); return
        its pid.
        """
        message = json.dumps({**request, "targets": list(descriptors)}).encode()
        with self._spawning:
            socket.send_fds(self._control, [message], list(descriptors.values()))
            try:
                pid = self._pids.get(timeout=_REPLY_TIMEOUT)
            except queue.Empty:
                pid = None
        if pid is None:
            raise AssertionError("the fork server did not answer" + self._stderr())
        return pid

    def status(self, pid: int, timeout: float | None) -> int | None:
        """C{pid}'s exit status, waiting up to C{timeout} seconds for it."""
        with self._reported:
            self._reported.wait_for(
                lambda: pid in self._statuses or self._ended, timeout
            )
            if pid in self._statuses:
                return self._statuses.pop(pid)
            if self._closed:
                return -signal.SIGKILL  # by the server, as close() asked
            if self._ended:
                raise AssertionError("the fork server exited" + self._stderr())
            return None

    def _stderr(self) -> str:
        if self._process.poll() is None or self._process.stderr is None:
            return ""
        return ":\n" + self._process.stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        """Close the control socket: the server kills its children and exits."""
        if self._control.fileno() == -1:
            return
        with self._reported:
            self._closed = True
        # shutdown() first: the reading thread, blocked in recv(), keeps
        # the socket open (and the server waiting) past a close() alone.
        self._control.shutdown(socket.SHUT_RDWR)
        self._control.close()
        self._process.wait()
        if self._process.stderr is not None:
            self._process.stderr.close()


_server: ForkServer | None = None


def _forkServer() -> ForkServer:
    global _server
    if _server is None:
        _server = ForkServer()
        atexit.register(_server.close)
    return _server


def _interpreterRequest(args: Sequence[Any]) -> dict[str, Any] | None:
    """
    What the fork server runs for C{args}, if it is C{python -c CODE ...}
    or C{python -m MODULE ...} in this interpreter (options before C{-c} or
    C{-m}, such as C{-u}, change the interpreter: those run as they are).
    """
    args = [os.fspath(arg) for arg in args]
    if len(args) < 3 or args[0] != sys.executable or args[1] not in ("-c", "-m"):
        return None
    return {"mode": args[1], "target": args[2], "arguments": args[3:]}


class Popen(subprocess.Popen):  # type: ignore[type-arg]
    """
    C{subprocess.Popen}, but a C{python -c}/C{-m} command in this
    interpreter is a fork of the fork server rather than a new process.

    Everything C{Popen} does around the child (pipes, text, C{communicate},
    timeouts, signals) is its own; only starting the child and learning its
    exit status differ, in the three methods overridden here (CPython's,
    as of 3.11). The fork server, not this process, is the child's parent:
    it reaps it and reports the status.
    """

    _forkedBy: ForkServer | None = None

    def _execute_child(  # type: ignore[override]
        self, args: Any, executable: Any, preexec_fn: Any, close_fds: bool,
        pass_fds: Sequence[int], cwd: Any, env: Any, startupinfo: Any,
        creationflags: int, shell: bool, p2cread: int, p2cwrite: int,
        c2pread: int, c2pwrite: int, errread: int, errwrite: int,
        restore_signals: bool, gid: Any, gids: Any, uid: Any, umask: int,
        start_new_session: bool, process_group: Any,
    ) -> None:  # fmt: skip
        request = None
        plain = (executable, preexec_fn, gid, gids, uid) == (None,) * 5
        if plain and not shell and close_fds and umask < 0 and process_group == -1:
            request = _interpreterRequest(args)
        if request is None:
            return super()._execute_child(  # type: ignore[misc]
                args, executable, preexec_fn, close_fds, pass_fds, cwd, env,
                startupinfo, creationflags, shell, p2cread, p2cwrite, c2pread,
                c2pwrite, errread, errwrite, restore_signals, gid, gids, uid,
                umask, start_new_session, process_group,
            )  # fmt: skip
        server = _forkServer()
        streams = (p2cread, c2pwrite, errwrite)
        descriptors = {
            number: number if fd == -1 else fd for number, fd in enumerate(streams)
        }
        descriptors.update({fd: fd for fd in pass_fds})
        request.update(
            environment=dict(os.environ if env is None else env),
            cwd=os.fspath(os.getcwd() if cwd is None else cwd),
            session=start_new_session,
        )
        try:
            self.pid = server.spawn(request, descriptors)
        finally:
            self._close_pipe_fds(
                p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite
            )
        self._forkedBy = server
        self._child_created = True

    def _internal_poll(self, _deadstate: Any = None, **kwargs: Any) -> int | None:
        if self._forkedBy is None:
            return super()._internal_poll(_deadstate, **kwargs)  # type: ignore[misc]
        if self.returncode is None:
            self.returncode = self._forkedBy.status(self.pid, 0)
        return self.returncode

    def _wait(self, timeout: float | None) -> int:
        if self._forkedBy is None:
            return super()._wait(timeout)  # type: ignore[misc]
        if self.returncode is None:
            self.returncode = self._forkedBy.status(self.pid, timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode


def run(
    *popenargs: Any,
    input: bytes | str | None = None,
    capture_output: bool = False,
    timeout: float | None = None,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """C{subprocess.run} with L{Popen}."""
    if capture_output:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    with Popen(*popenargs, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except BaseException:
            process.kill()
            raise
    return subprocess.CompletedProcess(process.args, process.poll(), stdout, stderr)
