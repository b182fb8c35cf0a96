"""
Every shell command of the README runs as printed, and the endpoint example
in every plugin's C{--help} works in bash: each is read from the text at test
time and given to C{bash}, so the docs and the tests cannot drift apart.

The commands are those of the C{```sh} (or C{bash}, C{shell}) blocks, and the
"talk to it" column of the tour's table. Each is of one kind this module
runs: a server (C{twistd -n ...}, or C{make run}), a file-making line
(C{openssl ...}, C{printf ... > file}), C{twistd PLUGIN --help}, the
plugin-cache C{python -c ...}, or a client (C{nc}, C{curl},
C{python -m twisted_services.X}) whose output is checked against what the
README says it prints. L{ReadmeCompleteTests} fails naming any command that is
none of these and not marked as not run here.

Markers, an HTML comment on the line before a block:
  - C{<!-- needs: FILES -->}: the block needs files the reader makes first
    (a key and certificate, say); none of its commands run.
  - C{<!-- served by: COMMAND -->}: the block's clients talk to servers the
    README does not start in that block; the test starts COMMAND for them.
  - C{<!-- run by CI: make test -->} and C{<!-- by hand: make bench -->}: that
    one command is not run here, because CI runs it (it runs this suite) or
    because it takes minutes. Only these two commands may be so marked.

The commands use the README's own ports (8888, 6667, 7, ...), which other
programs on this machine may hold, so each server runs in a network
namespace of its own (C{unshare -rn}: no privilege needed) whose loopback is
brought up first, and its clients join that namespace (C{nsenter}). A server
counts as started when it tells systemd's notify socket C{READY=1}, which it
does once every listener is bound. A client of a block talks to the last
server its block started, or else to the four services of C{make run}.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.twistd import (
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    Twistd,
    runTwistd,
    spawnTwistd,
)

PROJECT = Path(__file__).resolve().parent.parent
README = PROJECT / "README.md"
SHELL_FENCES = ("sh", "bash", "shell")
MARKER = re.compile(
    r"^<!-- (?P<kind>needs|served by|run by CI|by hand): (?P<what>.+) -->$"
)
NOT_RUN_HERE = {"run by CI": "make test", "by hand": "make bench"}
"""The only commands that may be marked as not run, each with its one marker."""
TOUR_COLUMN = "talk to it"
HELP_EXAMPLE = re.compile(r"'tcp6:[^'\s]*'")
COMMAND_TIMEOUT = 20.0
ECHO_INPUT = b"hello, echo\n"
FILE_INPUT = bytes(range(256)) * 64
CHAT_INPUT = b"/who\n/quit\n"
GUEST = r"guest\d+"


@dataclass(frozen=True)
class Block:
    """
    One shell block (or the tour table): its first line, its commands as
    printed, and the markers on the lines before it.
    """

    line: int
    commands: list[str]
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def needs(self) -> str | None:
        return self.markers.get("needs")

    def notRun(self, command: str) -> str | None:
        """The marker saying C{command} is not run here, if there is one."""
        for kind in NOT_RUN_HERE:
            if self.markers.get(kind) == words(command):
                return kind
        return None


def words(command: str) -> str:
    """C{command} as bash splits it, comments dropped, one space apart."""
    return " ".join(shlex.split(command, comments=True))


def markersBefore(lines: list[str], index: int) -> dict[str, str]:
    """The markers on the non-blank lines right before line C{index}."""
    markers: dict[str, str] = {}
    for line in reversed(lines[:index]):
        if not line.strip():
            continue
        marker = MARKER.match(line.strip())
        if marker is None:
            break
        markers[marker["kind"]] = marker["what"]
    return markers


def shellBlocks(markdown: str) -> list[Block]:
    """
    Every shell block of C{markdown}, each command with its
    backslash-continued lines; blank and comment-only lines are not commands.
    A C{console} block (prompts mixed with output) is refused.
    """
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        fence = lines[index].strip()
        if fence == "```console":
            raise AssertionError(f"README.md:{index + 1}: write ```sh, not console")
        if fence not in {f"```{language}" for language in SHELL_FENCES}:
            index += 1
            continue
        block = Block(index + 1, [], markersBefore(lines, index))
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


def tableCells(markdown: str, header: str) -> tuple[int, list[str]]:
    """
    The first line of the table with a column named C{header}, and every
    C{`code`} span in that column, C{\\|} read as C{|}.
    """
    lines = markdown.splitlines()
    for index, line in enumerate(lines):
        columns = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header not in columns:
            continue
        column = columns.index(header)
        spans: list[str] = []
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            cells = re.split(r"(?<!\\)\|", row.strip().strip("|"))
            spans += re.findall(r"`([^`]+)`", cells[column].replace("\\|", "|"))
        return index + 1, spans
    raise AssertionError(f"no table with a {header!r} column")


def readmeBlocks(markdown: str) -> list[Block]:
    """The shell blocks and the tour table's commands, in the README's order."""
    line, commands = tableCells(markdown, TOUR_COLUMN)
    return sorted([*shellBlocks(markdown), Block(line, commands)], key=lambda b: b.line)


def isServer(command: str) -> bool:
    """Whether C{command} serves: twistd in the foreground (C{-n}), C{make run}."""
    split = shlex.split(command, comments=True)
    return split == ["make", "run"] or (
        bool(split) and split[0].endswith("twistd") and "-n" in split
    )


def makesFiles(command: str) -> bool:
    """Whether C{command} makes files a later server of its block reads."""
    split = shlex.split(command, comments=True)
    if not split:
        return False
    return split[0] == "openssl" or (split[0] == "printf" and ">" in split)


def isHelp(command: str) -> bool:
    """Whether C{command} is C{twistd PLUGIN --help}."""
    return "twistd" in command and "--help" in shlex.split(command, comments=True)


def buildsPluginCache(command: str) -> bool:
    """Whether C{command} is the README's C{python -c} building the cache."""
    split = shlex.split(command, comments=True)
    return split[:2] == ["python", "-c"] and "getPlugins" in split[2]


def tourPorts(markdown: str) -> dict[int, str]:
    """The tour's default ports: C{{8888: "echo", ...}}."""
    return {
        int(port): service
        for service, port in re.findall(
            r"^\| `(\w+)` \| (?:TCP|UDP) (\d+) \|", markdown, re.MULTILINE
        )
    }


def clientService(command: str, ports: dict[int, str]) -> str | None:
    """
    The service a client command talks to: the module it runs, C{http}
    for curl, and for C{nc} the service of its port in the tour.
    """
    module = re.search(r"python -m twisted_services\.(\w+)", command)
    if module:
        return module[1]
    split = shlex.split(command.rpartition(" | ")[2], comments=True)
    if split and split[0] == "curl":
        return "http"
    if split and split[0] == "nc" and split[-1].isdigit():
        return ports.get(int(split[-1]))
    return None


def commandKind(command: str, ports: dict[int, str]) -> str | None:
    """Which of this module's tests runs C{command}, or C{None}."""
    if isServer(command):
        return "server"
    if makesFiles(command):
        return "files"
    if isHelp(command):
        return "help"
    if buildsPluginCache(command):
        return "plugin cache"
    if clientService(command, ports) is not None:
        return "client"
    return None


def namespaced(script: str) -> list[str]:
    """
    The command running C{script} in bash in a network namespace of its
    own; skip the test if this system cannot make one.
    """
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None or shutil.which("nsenter") is None:
        raise SkipTest("unshare, nsenter (util-linux) and ip (iproute2) are needed")
    probe = subprocess.run(
        [unshare, "-rn", ip, "link", "set", "lo", "up"],
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
    )
    if probe.returncode != 0:
        raise SkipTest(f"no unprivileged network namespaces: {probe.stderr!r}")
    # A PID namespace too, whose processes all die with unshare: killing it
    # at clean-up cannot leave twistd running under a killed make.
    return [
        *(unshare, "-rn", "--fork", "--pid", "--kill-child"),
        *("bash", "-c", f"{ip} link set lo up || exit 97\n{script}"),
    ]


@dataclass
class Server:
    """A printed server command, running in its namespace under C{unshare}."""

    command: str
    twistd: Twistd
    status: str

    def stop(self, testCase: SynchronousTestCase) -> None:
        """
        SIGTERM the command (unshare, its parent, ignores SIGTERM); twistd,
        under make or not, must shut down cleanly.
        """
        unshare = self.twistd.process.pid
        [command] = Path(f"/proc/{unshare}/task/{unshare}/children").read_text().split()
        os.kill(int(command), signal.SIGTERM)
        self.twistd.process.wait(STOP_TIMEOUT)
        self.twistd.kill()
        testCase.assertIn("Server Shut Down.", self.twistd.log(), self.command)


class Printed:
    """
    A directory to run printed commands in: C{.venv} there is this test
    environment (with the C{Makefile} whose stamps it has), and C{twistd}
    and C{python} on C{PATH} are its own.
    """

    def __init__(self, testCase: SynchronousTestCase) -> None:
        self.testCase = testCase
        self.directory = temporaryDirectory(testCase, "readme-")
        (self.directory / ".venv").symlink_to(sys.prefix)
        for name in ("Makefile", "pyproject.toml"):
            (self.directory / name).symlink_to(PROJECT / name)
        self.path = f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin"
        self._notifications = 0

    def start(self, command: str) -> Server:
        """Start the server C{command} and wait until it says C{READY=1}."""
        if words(command) == "make run":
            self._refuseInstalls()
        self._notifications += 1
        notifyPath = str(self.directory / f"notify{self._notifications}")
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
        status = self._ready(notify, twistd, command)
        notify.close()
        return Server(command, twistd, status)

    def serve(self, command: str) -> str:
        """Start the server C{command}, then stop it; return its status line."""
        server = self.start(command)
        server.stop(self.testCase)
        return server.status

    def _refuseInstalls(self) -> None:
        """
        Skip unless C{make run} would go straight to twistd: with stale
        stamps it would pip-install this directory into the environment.
        """
        stale = subprocess.run(
            ["make", "-q", "install"],
            cwd=self.directory,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
        )
        if stale.returncode != 0:
            raise SkipTest(f"{sys.prefix} is not an up-to-date `make install`")

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

    def run(
        self, command: str, server: Server | None = None, stdin: bytes = b""
    ) -> subprocess.CompletedProcess[bytes]:
        """
        Run C{command} to completion in bash, here, fed C{stdin}; in the
        network namespace of C{server} if given.
        """
        launcher: list[str] = []
        if server is not None:
            pid = str(server.twistd.process.pid)
            launcher = ["nsenter", "--preserve-credentials", "-U", "-n", "-t", pid]
        process = subprocess.Popen(
            [*launcher, "bash", "-c", command],
            cwd=self.directory,
            env={"PATH": self.path, "HOME": str(self.directory)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(stdin, timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            # The whole group: a child left running would hold the pipes open.
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"{command}: still running after "
                f"{COMMAND_TIMEOUT}s; stdout {stdout!r}, "
                f"stderr {stderr!r}"
            ) from None
        return subprocess.CompletedProcess(
            process.args, process.returncode, stdout, stderr
        )


class Client:
    """
    One client command of the README: what it is fed, and the check that
    its output is what the README says it prints.
    """

    def __init__(self, printed: Printed, command: str, service: str) -> None:
        self.printed = printed
        self.command = command
        self.service = service
        self.testCase = printed.testCase
        left, pipe, _ = command.rpartition(" | ")
        self.piped = self._output(left) if pipe else None
        split = shlex.split(command, comments=True)
        self.inputFile = split[split.index("<") + 1] if "<" in split else None
        self.outputFile = split[split.index(">") + 1] if ">" in split else None
        self.arguments = split

    def _output(self, command: str) -> bytes:
        result = self.printed.run(command)
        self.testCase.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def talk(self, server: Server, shown: Shown) -> None:
        """Run the command against C{server} and check what it printed."""
        stdin = {"echo": ECHO_INPUT, "chat": CHAT_INPUT}.get(self.service, b"")
        if self.inputFile is not None:
            (self.printed.directory / self.inputFile).write_bytes(FILE_INPUT)
            stdin = FILE_INPUT
        result = self.printed.run(self.command, server, b"" if self.piped else stdin)
        message = f"{self.command}\nstderr: {result.stderr!r}\nserver:\n"
        self.testCase.assertEqual(result.returncode, 0, message + server.twistd.log())
        output = result.stdout
        if self.outputFile is not None:
            output = (self.printed.directory / self.outputFile).read_bytes()
        check = getattr(self, f"_check_{self.service}")
        check(output.decode("utf-8", "replace"), stdin, shown)

    def _check_echo(self, output: str, stdin: bytes, _: Shown) -> None:
        """Every byte comes back unchanged."""
        sent = self.piped if self.piped is not None else stdin
        self.testCase.assertEqual(output, sent.decode("utf-8", "replace"), self.command)

    def _check_chat(self, output: str, stdin: bytes, shown: Shown) -> None:
        """
        C{/who} answers as the README shows, naming its sender alone in the
        lobby: C{--nick}'s nick, or a guest's.
        """
        args = self.arguments
        nick = re.escape(args[args.index("--nick") + 1]) if "--nick" in args else GUEST
        room = re.escape(shown.who.rpartition(": ")[0])
        who = rf"^{room}: {nick}\r?$"
        self.testCase.assertRegex(output, re.compile(who, re.MULTILINE), self.command)

    def _check_http(self, output: str, stdin: bytes, shown: Shown) -> None:
        """
        C{/} has the README's body; C{/health} is JSON with the status,
        uptime, open connections and requests served.
        """
        [url] = [a for a in self.arguments if "localhost" in a]
        if urlsplit(url if "//" in url else f"//{url}").path == "/health":
            health = json.loads(output)
            self.testCase.assertEqual(health.pop("status"), "ok", output)
            self.testCase.assertEqual(
                sorted(health), ["connections", "requests", "uptime"], output
            )
        else:
            self.testCase.assertEqual(output, shown.httpBody, self.command)

    def _check_temperature(self, output: str, stdin: bytes, shown: Shown) -> None:
        """Each value gets the README's conversion of it, one line each."""
        if self.piped is not None:
            values = self.piped.decode().split()
        else:
            module = self.arguments.index("twisted_services.temperature")
            values = [self.arguments[module + 1]]
        expected = [shown.conversions.get(value) or celsius(value) for value in values]
        self.testCase.assertEqual(output.splitlines(), expected, self.command)


def celsius(value: str) -> str:
    """The temperature service's reply to a value in Celsius."""
    degrees = float(value)
    return f"{degrees:g} C = {round(degrees * 9 / 5 + 32, 2):g} F"


@dataclass(frozen=True)
class Shown:
    """
    Output the README shows: conversions, the body of C{GET /}, and what
    chat's C{/who} answers.
    """

    conversions: dict[str, str]
    httpBody: str
    who: str

    @classmethod
    def read(cls, markdown: str) -> Shown:
        """From C{`100` -> `100 C = 212 F`} and the http and chat tables."""
        [who] = re.findall(r"^\| `/who` \| `([^`]+)`", markdown, re.M)
        [body] = re.findall(r"^\| `GET /` \| `200`, `[^`]+`, `([^`]+)`", markdown, re.M)
        conversions = dict(re.findall(r"`([^`]+)` -> `([^`]+)`", markdown))
        return cls(conversions, body, who)


class ShellBlocksTests(SynchronousTestCase):
    """L{shellBlocks} and L{tableCells} read commands as bash would get them."""

    def test_commands(self) -> None:
        """Continuations stay one command; comments and blanks are dropped."""
        [block] = shellBlocks(
            "text\n<!-- needs: key.pem -->\n<!-- by hand: b -->\n\n  ```sh\n"
            "  # a comment\n  a --x \\\n      --y\n\n  b # slow\n  ```\n"
        )
        self.assertEqual(block.commands, ["a --x \\\n--y", "b # slow"])
        self.assertEqual((block.line, block.needs), (5, "key.pem"))
        self.assertEqual(block.notRun("b # slow"), "by hand")
        self.assertIsNone(block.notRun("a --x \\\n--y"))

    def test_console(self) -> None:
        """A C{console} block, whose commands cannot be told from output, fails."""
        with self.assertRaises(AssertionError):
            shellBlocks("```console\n$ ls\nfile\n```\n")

    def test_tableCells(self) -> None:
        """Code spans of the named column, escaped pipes unescaped."""
        line, cells = tableCells(
            "x\n| a | talk to it |\n|---|---|\n| `e` | `printf 'x' \\| nc h 1`, "
            "or `nc h 2` |\n| `f` | `curl h` |\n\nafter | `no`\n",
            "talk to it",
        )
        self.assertEqual(
            (line, cells), (2, ["printf 'x' | nc h 1", "nc h 2", "curl h"])
        )


class ReadmeCompleteTests(SynchronousTestCase):
    """Every shell command of the README is run by a test here, or marked."""

    def test_everyCommandRunsOrIsMarked(self) -> None:
        """
        No README command is of a kind no test runs, unless its block says
        it needs files the reader makes; and the only commands marked as not
        run here are C{make test} (by CI) and C{make bench} (by hand).
        """
        markdown = README.read_text()
        ports = tourPorts(markdown)
        unrun = []
        for block in readmeBlocks(markdown):
            for kind, command in NOT_RUN_HERE.items():
                if kind in block.markers:
                    self.assertEqual(block.markers[kind], command, block)
                    self.assertIn(command, map(words, block.commands), block)
            if block.needs is not None:
                continue
            unrun += [
                f"README.md:{block.line}: {command}"
                for command in block.commands
                if block.notRun(command) is None and commandKind(command, ports) is None
            ]
        self.assertEqual(unrun, [], "neither run by tests/test_readme.py nor marked")

    def test_kinds(self) -> None:
        """The README's own commands are told apart as the runners expect."""
        ports = tourPorts(README.read_text())
        self.assertEqual(
            ports, {8888: "echo", 8080: "http", 1314: "temperature", 12345: "chat"}
        )
        kinds = {
            "make run": "server",
            ".venv/bin/twistd -n --pidfile= echo --port 8888": "server",
            "openssl req -x509 -nodes -keyout ca.key": "files",
            "printf 'x\\n' > san.ext": "files",
            ".venv/bin/twistd echo --help  # every option": "help",
            'python -c "from twisted.plugin import getPlugins"': "plugin cache",
            "printf 'hi\\n' | nc -N localhost 8888": "client",
            "echo 100 | nc -u -w1 localhost 1314": "client",
            "curl --cacert ca.pem https://localhost:8443/": "client",
            "python -m twisted_services.chat --nick alice localhost:12345": "client",
            "nc localhost 9": None,
            "make test": None,
            "kill $(cat echo.pid)": None,
        }
        self.assertEqual({c: commandKind(c, ports) for c in kinds}, kinds)


class ReadmeCommandsTests(SynchronousTestCase):
    """Every README command this module knows how to run, runs as printed."""

    def test_serversAndClients(self) -> None:
        """
        Each server command of a block not marked C{needs:} binds every
        listener it names and says C{READY=1}; the files a block makes are
        made; and each client command prints what the README says, talking
        to its block's server (or the C{served by:} one, or C{make run}'s).
        """
        markdown = README.read_text()
        ports, shown = tourPorts(markdown), Shown.read(markdown)
        printed = Printed(self)
        default: Server | None = None
        ran = {"server": 0, "client": 0}
        for block in readmeBlocks(markdown):
            if block.needs is not None:
                continue
            servedBy = block.markers.get("served by")
            server = printed.start(servedBy) if servedBy else None
            for command in block.commands:
                kind = commandKind(command, ports)
                if block.notRun(command) or kind not in ("server", "files", "client"):
                    continue
                ran[kind] = ran.get(kind, 0) + 1
                if kind == "files":
                    result = printed.run(command)
                    self.assertEqual(result.returncode, 0, result.stderr)
                elif kind == "client":
                    target = server or default
                    self.assertIsNotNone(target, f"no server for {command}")
                    assert target is not None
                    service = clientService(command, ports)
                    assert service is not None
                    Client(printed, command, service).talk(target, shown)
                elif words(command) == "make run":
                    default = printed.start(command)
                    for port, service in ports.items():
                        self.assertRegex(
                            default.status, rf"\b{service} on \S+:{port}\b"
                        )
                else:
                    if server is not None:
                        server.stop(self)
                    server = printed.start(command)
                    self.assertIn("STATUS=serving ", server.status, command)
            if server is not None:
                server.stop(self)
        if default is not None:
            default.stop(self)
        self.assertGreaterEqual(ran["server"], 7)
        self.assertGreaterEqual(ran["client"], 12)

    def test_helpCommands(self) -> None:
        """C{twistd PLUGIN --help} commands in the README succeed."""
        printed = Printed(self)
        helps = [
            c for b in readmeBlocks(README.read_text()) for c in b.commands if isHelp(c)
        ]
        self.assertTrue(helps)
        for command in helps:
            result = printed.run(command)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(b"--listen", result.stdout)

    def test_pluginCache(self) -> None:
        """
        The README's cache-building C{python -c} runs without a word of
        output: no plugin fails to load.
        """
        printed = Printed(self)
        commands = [
            c
            for b in readmeBlocks(README.read_text())
            for c in b.commands
            if buildsPluginCache(c)
        ]
        self.assertTrue(commands)
        for command in commands:
            result = printed.run(command)
            self.assertEqual(
                (result.returncode, result.stdout, result.stderr), (0, b"", b"")
            )


class HelpExamplesTests(SynchronousTestCase):
    """The C{tcp6:} example in every TCP plugin's C{--help} works in bash."""

    def test_tcp6Example(self) -> None:
        """
        The example, copied from the help as printed after C{--listen},
        listens on the address it names.
        """
        printed = Printed(self)
        for plugin in ("echo", "chat", "http"):
            help = runTwistd(plugin, ["--help"]).stdout
            # usage.Options may wrap the example's line, never inside it.
            [example] = HELP_EXAMPLE.findall(help)
            status = printed.serve(
                f".venv/bin/twistd -n --pidfile= {plugin} --listen {example}"
            )
            self.assertIn(f"{plugin} on tcp:[::1]:8888", status)
