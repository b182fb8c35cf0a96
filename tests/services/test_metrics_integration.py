"""
Integration tests of C{--metrics}: the real C{twistd -n services} exporting
every service's metrics, scraped by Debian's real C{prometheus} on loopback
and checked by C{promtool}; and a metrics port in use failing start-up.

Every wait has a deadline; nothing sleeps.
"""

from __future__ import annotations

import socket
from urllib.request import urlopen

from twisted.trial.unittest import SynchronousTestCase

from tests.chat.sockets import LineClient
from tests.support.files import temporaryDirectory
from tests.support.prometheus import (
    NO_PROMETHEUS,
    NO_PROMTOOL,
    PROMETHEUS,
    PROMTOOL,
    PrometheusServer,
    promtoolCheck,
)
from tests.support.sockets import recvUntilEOF
from tests.support.twistd import Bound, Twistd, runTwistd, startTwistd

TIMEOUT = 5.0
LOOPBACK = "tcp:0:interface=127.0.0.1"
EVERYTHING = [
    *("--echo", LOOPBACK, "--chat", LOOPBACK, "--http", LOOPBACK),
    *("--temperature", "0", "--temperature-args", "--interface 127.0.0.1"),
    *("--http-args", "--no-access-log"),
    *("--metrics", LOOPBACK),
]


def freePort() -> int:
    """A loopback TCP port free now, for a server that cannot take port 0."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrometheusScrapeTests(SynchronousTestCase):
    """
    A real Prometheus scrapes C{twistd services --metrics}, and its query API
    gives back the traffic this test generated.
    """

    def bound(self, twistd: Twistd, service: str) -> Bound:
        [bound] = [b for b in twistd.bound if b.service == service]
        return bound

    def traffic(self, twistd: Twistd) -> None:
        """
        5 bytes echoed; three GET / and one POST; one chat line from two
        clients; one temperature converted and one not.
        """
        with self.bound(twistd, "echo").connect(TIMEOUT) as connection:
            connection.sendall(b"ping\n")
            connection.shutdown(socket.SHUT_WR)
            self.assertEqual(recvUntilEOF(connection), b"ping\n")
        with self.bound(twistd, "http").connect(TIMEOUT) as connection:
            get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            post = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            connection.sendall(get * 3 + post)
            self.assertEqual(recvUntilEOF(connection).count(b"HTTP/1.1 "), 4)
        chat = self.bound(twistd, "chat").loopbackAddress
        talker, listener = LineClient.connect(chat), LineClient.connect(chat)
        for client in (talker, listener):
            self.addCleanup(client.close)
        talker.waitFor("*** welcome, you are guest1 in lobby; type /help for commands")
        listener.waitFor(
            "*** welcome, you are guest2 in lobby; type /help for commands"
        )
        talker.send("hello")
        listener.waitFor("<guest1> hello")
        temperature = self.bound(twistd, "temperature").loopbackAddress
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            client.bind(("127.0.0.1", 0))
            for request, reply in [(b"100", b"100 C = 212 F\n"), (b"x", b"ERROR")]:
                client.sendto(request, temperature)
                self.assertTrue(client.recvfrom(512)[0].startswith(reply))

    def test_scraped(self) -> None:
        """
        Prometheus scrapes the target (C{up} is 1) and its values match the
        traffic; the exposition itself passes C{promtool check metrics}.
        """
        if PROMETHEUS is None:
            raise self.skipTest(NO_PROMETHEUS)
        twistd = startTwistd(self, "services", EVERYTHING, listeners=5)
        self.traffic(twistd)
        metrics = self.bound(twistd, "metrics")
        host, port = metrics.loopbackAddress
        directory = temporaryDirectory(self)
        prometheus = PrometheusServer(directory, freePort(), f"{host}:{port}")
        self.addCleanup(prometheus.stop)
        prometheus.waitReady()
        for expression, wanted in [
            ('up{job="services"}', 1),
            ('twisted_services_received_bytes_total{service="echo"}', 5),
            ('twisted_services_sent_bytes_total{service="echo"}', 5),
            ('twisted_services_http_requests_total{method="GET",code="200"}', 3),
            ('twisted_services_http_requests_total{method="other",code="405"}', 1),
            ('twisted_services_http_responses_total{route="/"}', 3),
            ("twisted_services_chat_lines_received_total", 1),
            ("twisted_services_chat_members", 2),
            ('twisted_services_temperature_requests_total{result="ok"}', 1),
            ('twisted_services_temperature_requests_total{result="error"}', 1),
            ('twisted_services_connections_accepted_total{service="chat"}', 2),
            ('count(twisted_services_build_info{version="0.1.0"})', 1),
        ]:
            prometheus.waitForValue(expression, wanted)
        if PROMTOOL is None:
            raise self.skipTest(NO_PROMTOOL)
        with urlopen(f"http://{host}:{port}/metrics", timeout=TIMEOUT) as response:
            exposition = response.read()
        result = promtoolCheck(exposition)
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))


class MetricsStartupTests(SynchronousTestCase):
    """A metrics port that cannot be bound fails start-up like any listener."""

    def test_portInUse(self) -> None:
        """twistd exits 1 with one line saying the metrics port is in use."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = runTwistd(
                "echo",
                [
                    *("--port", "0", "--interface", "127.0.0.1"),
                    *("--metrics", f"tcp:{port}:interface=127.0.0.1"),
                ],
                timeout=20,
            )
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertIn(
            f"metrics: cannot listen on tcp:{port}:interface=127.0.0.1: "
            "Address already in use",
            output,
        )
        self.assertNotIn("Traceback", output)
