"""
Tests for the twistd dropin, C{twisted/plugins/twisted_services_plugins.py}:
that C{twistd} finds it, lists the echo service in one line, documents every
option, and imports a service's module only when it runs.
"""

from __future__ import annotations

import re
import sys

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase

from tests.echo.test_tap import LONG_OPTIONS
from tests.support.twistd import runCommand, runTwistd, twistdCommand

# Loads every twistd plugin, then prints which of our modules that imported.
LIST_PLUGINS_AND_MODULES = """
import sys
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
tapnames = {maker.tapname for maker in getPlugins(IServiceMaker)}
assert "echo" in tapnames, tapnames
print(sorted(name for name in sys.modules if name.startswith("twisted_services")))
"""

# Builds every plugin's service from its default options (services' without
# the browser chat), then prints which optional parts that imported.
OPTIONAL_PARTS = (
    "prometheus_client",
    "twisted_services.server.metrics.exposition",
    "twisted.web.server",
    "wsproto",
    "txredisapi",
    "twisted_services.server.workers.supervisor",
)
BUILD_SERVICES = f"""
import sys
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
arguments = {{"services": ["--no-chat-web"]}}
for maker in getPlugins(IServiceMaker):
    if maker.tapname in ("echo", "chat", "http", "temperature", "services"):
        options = maker.options()
        options.parseOptions(arguments.get(maker.tapname, []))
        maker.makeService(options)
print(sorted(name for name in {OPTIONAL_PARTS!r} if name in sys.modules))
"""


def commandsSection(helpText: str) -> list[str]:
    """The lines after C{Commands:} in C{twistd --help}."""
    lines = helpText.splitlines()
    return lines[lines.index("Commands:") + 1 :]


class DropinTests(SynchronousTestCase):
    """The dropin as Twisted's plugin system sees it, in this process."""

    def echoMaker(self) -> IServiceMaker:
        makers = [m for m in getPlugins(IServiceMaker) if m.tapname == "echo"]
        self.assertEqual(len(makers), 1, "exactly one echo service maker")
        return makers[0]

    def test_echoPlugin(self) -> None:
        """The C{echo} maker builds its options from the echo tap module."""
        from twisted_services.echo import tap as echo

        maker = self.echoMaker()
        self.assertIsInstance(maker.options(), echo.Options)
        self.assertIs(maker.makeService, echo.makeService)

    def test_oneLineDescription(self) -> None:
        """The description is a single, non-empty line."""
        description = self.echoMaker().description
        self.assertTrue(description.strip())
        self.assertNotIn("\n", description)

    def test_lazyImport(self) -> None:
        """
        Loading the dropin imports no tap module, so one broken service
        cannot break C{twistd --help}.
        """
        result = runCommand(
            [sys.executable, "-c", LIST_PLUGINS_AND_MODULES], forked=False
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "[]")

    def test_optionalPartsNotImported(self) -> None:
        """
        A service built without the options that need them imports none of
        the optional parts (C{prometheus_client} and the metrics exporter, the
        workers supervisor, the browser chat, Redis): each costs every start
        tens of milliseconds. A new interpreter, not a fork of one that has
        imported Twisted already.
        """
        result = runCommand([sys.executable, "-c", BUILD_SERVICES], forked=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "[]")


class TwistdHelpTests(SynchronousTestCase):
    """What C{twistd --help} and C{twistd echo --help} print."""

    def test_twistdHelpListsEcho(self) -> None:
        """C{twistd --help} lists C{echo} with a description on one line."""
        result = runCommand(twistdCommand(["--help"]))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("Traceback", result.stdout + result.stderr)
        commands = commandsSection(result.stdout)
        entries = [
            index
            for index, line in enumerate(commands)
            if re.match(r"\s+echo\s+\S", line)
        ]
        self.assertEqual(len(entries), 1, result.stdout)
        line = commands[entries[0]]
        self.assertRegex(line, r"^\s+echo\s+\S.*echo server")
        # A wrapped description continues on an indented line with no name.
        following = commands[entries[0] + 1 : entries[0] + 2]
        for nextLine in following:
            self.assertRegex(nextLine, r"^(\s{1,8}\S|$)", "description wraps")

    def test_echoHelpDocumentsEveryOption(self) -> None:
        """C{twistd echo --help} names and explains every echo option."""
        result = runTwistd("echo", ["--help"])
        self.assertEqual(result.returncode, 0, result.stderr)
        helpText = result.stdout
        for option in LONG_OPTIONS:
            self.assertRegex(
                helpText, rf"(?m)^\s+(-\w, )?--{option}=\s+\w", f"--{option}"
            )
        self.assertIn("Echo server (RFC 862)", helpText)
        self.assertNotRegex(helpText, r"(?<!\.)\.\.(?!\.)", "a doubled full stop")
