"""
The README's C{twistd} commands, and the endpoint examples in every
plugin's C{--help}, run as printed: each is read from the text at test time
and given to C{bash}, so the docs and the tests cannot drift apart.

The commands use the README's own ports (8888, 6667, 7, ...), which other
programs on this machine may hold, so each runs in a network namespace of
its own (C{unshare -rn}: no privilege needed) whose loopback is brought up
first. A server counts as started when it tells systemd's notify socket
C{READY=1}, which it does once every listener is bound.

A code block preceded by C{<!-- needs: FILES -->} needs files the reader
makes first (a key and certificate, say); its commands are not run. Files a
block makes itself (C{openssl ...}, C{printf ... > file}) are made before
its servers start.
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.twistd import STARTUP_TIMEOUT, Twistd, spawnTwistd

PROJECT = Path(__file__).resolve().parent.parent
README = PROJECT / "README.md"
NEEDS = re.compile(r"^<!-- needs: (?P<files>.+) -->$")
HELP_EXAMPLE = re.compile(r"'tcp6:[^'\s]*'")
COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class Block:
    """One C{```sh} block: its first line and its commands, as printed."""

    line: int
    commands: list[str]
    needs: str | None


def shellBlocks(markdown: str) -> list[Block]:
    """
    Every C{```sh} block of C{markdown}, each command with its
    backslash-continued lines; blank and comment-only lines are not commands.
    """
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```sh":
            index += 1
            continue
        previous = next(
            (line.strip() for line in reversed(lines[:index]) if line.strip()), ""
        )
        marker = NEEDS.match(previous)
        block = Block(index + 1, [], marker["files"] if marker else None)
        index += 1
        command = ""
        while lines[index].strip() != "```":
            line = lines[index].strip()
            index += 1
            if not command and (not line or line.startswith("#")):
                continue
            command += line
            if command.endswith("\\"):
                command += "\n"
                continue
            block.commands.append(command)
            command = ""
        blocks.append(block)
        index += 1
    return blocks


def isServer(command: str) -> bool:
    """Whether C{command} runs twistd in the foreground (C{-n})."""
    words = shlex.split(command, comments=True)
    return bool(words) and words[0].endswith("twistd") and "-n" in words


def makesFiles(command: str) -> bool:
    """Whether C{command} makes files a later server of its block reads."""
    words = shlex.split(command, comments=True)
    if not words:
        return False
    return words[0] == "openssl" or (words[0] == "printf" and ">" in command)


def namespaced(script: str) -> list[str]:
    """
    The command running C{script} in bash in a network namespace of its
    own; skip the test if this system cannot make one.
    """
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        raise SkipTest("unshare (util-linux) and ip (iproute2) are needed")
    probe = subprocess.run(
        [unshare, "-rn", ip, "link", "set", "lo", "up"],
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
    )
    if probe.returncode != 0:
        raise SkipTest(f"no unprivileged network namespaces: {probe.stderr!r}")
    return [unshare, "-rn", "bash", "-c", f"{ip} link set lo up || exit 97\n{script}"]


class Printed:
    """
    A directory to run printed commands in: C{.venv} there is this test
    environment, and C{twistd} on C{PATH} is its C{twistd}.
    """

    def __init__(self, testCase: SynchronousTestCase) -> None:
        self.testCase = testCase
        self.directory = temporaryDirectory(testCase, "readme-")
        (self.directory / ".venv").symlink_to(sys.prefix)
        self.path = f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin"

    def serve(self, command: str) -> str:
        """
        Run the server C{command} until it says C{READY=1}, then stop it;
        return its status line.
        """
        notifyPath = str(self.directory / "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.testCase.addCleanup(notify.close)
        notify.bind(notifyPath)
        notify.settimeout(STARTUP_TIMEOUT)
        script = f"cd {shlex.quote(str(self.directory))} || exit 98\nexec {command}"
        twistd = spawnTwistd(
            self.testCase,
            namespaced(script),
            env={"PATH": self.path, "NOTIFY_SOCKET": notifyPath},
        )
        ready = self._ready(notify, twistd, command)
        self.testCase.assertIn(twistd.stop(signal.SIGTERM), (0, -signal.SIGTERM))
        notify.close()
        Path(notifyPath).unlink()
        return ready

    def _ready(self, notify: socket.socket, twistd: Twistd, command: str) -> str:
        try:
            message = notify.recv(4096).decode("utf-8")
        except TimeoutError:
            raise AssertionError(
                f"{command}: no READY=1; output:\n{twistd.log()}"
            ) from None
        self.testCase.assertTrue(message.startswith("READY=1\n"), message)
        self.testCase.assertIsNone(twistd.process.poll(), twistd.log())
        return message

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        """Run C{command} to completion in bash, here."""
        return subprocess.run(
            ["bash", "-c", command],
            cwd=self.directory,
            env={"PATH": self.path, "HOME": str(self.directory)},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )


class ShellBlocksTests(SynchronousTestCase):
    """L{shellBlocks} reads commands as bash would get them."""

    def test_commands(self) -> None:
        """Continuations stay one command; comments and blanks are dropped."""
        [block] = shellBlocks(
            "text\n<!-- needs: key.pem -->\n\n  ```sh\n  # a comment\n"
            "  a --x \\\n      --y\n\n  b\n  ```\n"
        )
        self.assertEqual(block.commands, ["a --x \\\n--y", "b"])
        self.assertEqual((block.line, block.needs), (4, "key.pem"))


class ReadmeServersTests(SynchronousTestCase):
    """Every C{twistd -n} command in the README starts, as printed."""

    def test_serversStart(self) -> None:
        """
        Each foreground twistd command of a README block not marked
        C{needs:} binds every listener it names and says C{READY=1}.
        """
        printed = Printed(self)
        served = 0
        for block in shellBlocks(README.read_text()):
            if block.needs is not None:
                continue
            for command in block.commands:
                if isServer(command):
                    status = printed.serve(command)
                    self.assertIn("STATUS=serving ", status, command)
                    served += 1
                elif makesFiles(command):
                    result = printed.run(command)
                    self.assertEqual(result.returncode, 0, result.stderr)
        self.assertGreaterEqual(served, 6)

    def test_helpCommands(self) -> None:
        """C{twistd PLUGIN --help} commands in the README succeed."""
        printed = Printed(self)
        helps = [
            c
            for b in shellBlocks(README.read_text())
            for c in b.commands
            if "twistd" in c and "--help" in shlex.split(c, comments=True)
        ]
        self.assertTrue(helps)
        for command in helps:
            result = printed.run(command)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("--listen", result.stdout)


class HelpExamplesTests(SynchronousTestCase):
    """The C{tcp6:} example in every TCP plugin's C{--help} works in bash."""

    def test_tcp6Example(self) -> None:
        """
        The example, copied from the help as printed after C{--listen},
        listens on the address it names.
        """
        printed = Printed(self)
        for plugin in ("echo", "chat", "http"):
            help = printed.run(f".venv/bin/twistd {plugin} --help").stdout
            # usage.Options may wrap the example's line, never inside it.
            [example] = HELP_EXAMPLE.findall(help)
            status = printed.serve(
                f".venv/bin/twistd -n --pidfile= {plugin} --listen {example}"
            )
            self.assertIn(f"{plugin} on tcp:[::1]:8888", status)
