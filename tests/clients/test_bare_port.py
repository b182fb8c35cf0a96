"""
A port given alone as the server (C{python -m twisted_services.echo 8888})
is a usage error that suggests C{localhost:PORT}, in every client, instead
of an attempt to reach host C{8888} (the IPv4 address 0.0.34.184).
"""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.support import forkserver
from tests.support.twistd import startTwistd

PROCESS_TIMEOUT = 15.0
USAGE_ERROR = 2


def runClient(
    service: str, *arguments: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run C{python -m twisted_services.SERVICE ARGUMENTS} to completion."""
    return forkserver.run(
        [sys.executable, "-m", f"twisted_services.{service}", *arguments],
        input=stdin,
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
    )


class BarePortTests(SynchronousTestCase):
    """Each client, given a port alone, says which server it means."""

    def assertSuggestsLocalhost(self, service: str, port: int, *arguments: str) -> None:
        """The client exits 2 with one line naming C{localhost:PORT}."""
        result = runClient(service, *arguments)
        stderr = result.stderr.decode("utf-8")
        self.assertEqual(result.returncode, USAGE_ERROR, stderr)
        self.assertEqual(
            stderr.splitlines()[0],
            f"{service}: bad server '{port}': a port without a host; "
            f"did you mean localhost:{port}?",
        )
        self.assertEqual(result.stdout, b"")

    def test_echoSuggestionWorks(self) -> None:
        """
        The echo client refuses C{PORT} alone, and the C{localhost:PORT} it
        suggests reaches the echo server on that port.
        """
        port = (
            startTwistd(self, "echo", ["--port", "0", "--interface", "127.0.0.1"])
            .listener()
            .port
        )
        self.assertSuggestsLocalhost("echo", port, str(port))
        result = runClient("echo", f"localhost:{port}", stdin=b"hi\n")
        self.assertEqual((result.returncode, result.stdout), (0, b"hi\n"))

    def test_chat(self) -> None:
        """The chat client refuses a port alone the same way."""
        self.assertSuggestsLocalhost("chat", 12345, "12345")

    def test_temperature(self) -> None:
        """The temperature client's C{--server} refuses a port alone too."""
        self.assertSuggestsLocalhost("temperature", 1314, "100", "--server", "1314")
