"""
Tests for L{tests.support.forkserver}: a C{python -c}/C{-m} command forked
from the fork server behaves as the same command in a new interpreter would,
for everything the suite relies on, and other commands still start as new
processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.support import forkserver

TIMEOUT = 30.0

# Prints what a test compares with what a new interpreter would have.
REPORT = """
import json, os, sys
print(json.dumps({
    "argv": sys.argv,
    "parent": os.getppid(),
    "cwd": os.getcwd(),
    "path0": sys.path[0],
    "marker": os.environ.get("FORKSERVER_TEST"),
    "reactor": "twisted.internet.reactor" in sys.modules,
    "ours": sorted(m for m in sys.modules if m.startswith("twisted_services")),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "session": os.getsid(0) == os.getpid(),
}))
"""


def report(*arguments: str, **kwargs: Any) -> dict[str, Any]:
    """Run L{REPORT} with C{arguments} through L{forkserver.run}; its output."""
    result = forkserver.run(
        [sys.executable, "-c", REPORT, *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        **kwargs,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class ForkedCommandTests(SynchronousTestCase):
    """A C{python -c} command runs as a fork server's child, as it would alone."""

    def test_forkedWithItsArguments(self) -> None:
        """
        The child's parent is the fork server, not this process; it gets
        its arguments as C{python -c} gives them, this process's working
        directory, and the environment it was given.
        """
        environment = {**os.environ, "FORKSERVER_TEST": "yes"}
        seen = report("a", "b c", env=environment)
        self.assertNotEqual(seen["parent"], os.getpid())
        self.assertEqual(seen["argv"], ["-c", "a", "b c"])
        self.assertEqual(seen["cwd"], os.getcwd())
        self.assertEqual(seen["path0"], "")
        self.assertEqual(seen["marker"], "yes")

    def test_nothingOfOursNorAReactor(self) -> None:
        """
        The fork server has imported none of this project's modules, and no
        reactor: each child imports them itself, as a new interpreter would.
        """
        seen = report()
        self.assertEqual((seen["ours"], seen["reactor"]), ([], False))

    def test_descriptors(self) -> None:
        """
        A passed descriptor is at its own number; no other one is open in
        the child but the standard three.
        """
        reading, writing = os.pipe()
        self.addCleanup(os.close, reading)
        self.addCleanup(os.close, writing)
        seen = report(pass_fds=[writing])
        # The one more is the directory listing itself.
        self.assertEqual(len(seen["fds"]), 5, seen["fds"])
        self.assertEqual(seen["fds"][:3], [0, 1, 2])
        self.assertIn(writing, seen["fds"])

    def test_workingDirectoryAndSession(self) -> None:
        """C{cwd} and C{start_new_session} are honoured."""
        directory = os.path.realpath(tempfile.mkdtemp())
        self.addCleanup(os.rmdir, directory)
        seen = report(cwd=directory, start_new_session=True)
        self.assertEqual((seen["cwd"], seen["session"]), (directory, True))
        self.assertFalse(report()["session"])

    def test_buffering(self) -> None:
        """
        Standard output is buffered, or not, as C{PYTHONUNBUFFERED} in the
        child's environment says, whatever the fork server's own says.
        """
        code = (
            "import sys; print(type(sys.stdout.buffer).__name__,"
            " sys.stdout.write_through, sys.stderr.line_buffering)"
        )
        for unbuffered, expected in (
            (True, "FileIO True False"),
            (False, "BufferedWriter False True"),
        ):
            environment = dict(os.environ)
            environment.pop("PYTHONUNBUFFERED", None)
            if unbuffered:
                environment["PYTHONUNBUFFERED"] = "1"
            result = forkserver.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                env=environment,
            )
            self.assertEqual(result.stdout.strip(), expected, result.stderr)

    def test_inputAndExitStatus(self) -> None:
        """Standard input is fed, and C{sys.exit}'s status is the return code."""
        result = forkserver.run(
            [sys.executable, "-c", "import sys; sys.exit(len(sys.stdin.read()))"],
            input=b"12345",
            timeout=TIMEOUT,
        )
        self.assertEqual(result.returncode, 5)

    def test_signalAndTimeout(self) -> None:
        """
        A child still running times C{wait} out; one killed by a signal has
        minus its number as the return code, as C{Popen} has it.
        """
        process = forkserver.Popen(
            [sys.executable, "-c", "import signal; signal.pause()"]
        )
        self.addCleanup(process.kill)
        with self.assertRaises(subprocess.TimeoutExpired):
            process.wait(0.01)
        self.assertIsNone(process.poll())
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(TIMEOUT), -signal.SIGTERM)

    def test_module(self) -> None:
        """
        C{python -m} runs the module as C{__main__}, its file as C{argv[0]},
        found on the working directory, which is first on the path.
        """
        directory = os.path.realpath(tempfile.mkdtemp())
        probe = os.path.join(directory, "forkserverprobe.py")
        with open(probe, "w") as module:
            module.write("import sys\nprint(__name__, sys.argv, sys.path[0])\n")
        self.addCleanup(shutil.rmtree, directory)
        result = forkserver.run(
            [sys.executable, "-m", "forkserverprobe", "x"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=directory,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, f"__main__ {[probe, 'x']} {directory}\n")


class CloseTests(SynchronousTestCase):
    """Closing a fork server (at exit) ends its children."""

    def test_closeKillsChildren(self) -> None:
        """
        A child still running when its server is closed is killed, and its
        status says so, as a test's clean-up after the server's will ask.
        """
        server = forkserver.ForkServer()
        self.addCleanup(server.close)
        with open(os.devnull, "rb") as devnull:
            request = {
                "mode": "-c",
                "target": "import signal; signal.pause()",
                "arguments": [],
                "environment": dict(os.environ),
                "cwd": os.getcwd(),
                "session": False,
            }
            pid = server.spawn(request, dict.fromkeys((0, 1, 2), devnull.fileno()))
        self.assertIsNone(server.status(pid, 0))
        server.close()
        self.assertEqual(server.status(pid, 0), -signal.SIGKILL)
        self.assertFalse(os.path.exists(f"/proc/{pid}"))


class NewProcessTests(SynchronousTestCase):
    """Commands the fork server cannot run as given start as before."""

    def test_otherCommands(self) -> None:
        """
        A command that is not this interpreter with C{-c} or C{-m} first (a
        shell, or C{python -u -c}) is this process's own child.
        """
        for command in (
            ["sh", "-c", "echo $PPID"],
            [sys.executable, "-u", "-c", "import os; print(os.getppid())"],
        ):
            result = forkserver.run(command, capture_output=True, timeout=TIMEOUT)
            self.assertEqual(int(result.stdout), os.getpid(), command)
