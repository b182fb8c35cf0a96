"""
Tests for C{--metrics} in L{twisted_services.services.tap}: one exporter for
the process, collecting every service's metrics.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.prometheus import render
from tests.support.tap import Tap
from twisted_services.server.metrics.exposition import (
    MetricsExporter,
    TreeCollector,
)
from twisted_services.server.tree import walk
from twisted_services.services import tap

SERVICES = Tap(tap)


class CombinedMetricsTests(SynchronousTestCase):
    """C{twistd services --metrics} exports all four services at one endpoint."""

    def test_oneExporter(self) -> None:
        """
        One exporter listens, on the endpoint given, and what it collects
        holds each service's families.
        """
        service, reactor = SERVICES.started(
            "--metrics", "tcp:9100:interface=127.0.0.1", "--echo-args", "--udp-port 0"
        )
        exporters = [s for s in walk(service) if isinstance(s, MetricsExporter)]
        self.assertEqual(len(exporters), 1)
        self.assertIn((9100, "127.0.0.1"), [(s[0], s[3]) for s in reactor.tcpServers])
        text = render([TreeCollector(lambda: service)]).decode()
        for line in [
            'twisted_services_connections_open{service="echo"}',
            'twisted_services_connections_open{service="chat"}',
            'twisted_services_connections_open{service="http"}',
            'twisted_services_udp_datagrams_answered_total{service="echo"}',
            'twisted_services_udp_datagrams_answered_total{service="temperature"}',
            "twisted_services_chat_members",
            "twisted_services_http_request_duration_seconds_count",
            'twisted_services_temperature_requests_total{result="ok"}',
        ]:
            self.assertIn(line, text)

    def test_offByDefault(self) -> None:
        """Without C{--metrics} no exporter is made."""
        service, _ = SERVICES.started()
        self.assertEqual(
            [s for s in walk(service) if isinstance(s, MetricsExporter)], []
        )

    def test_notInServiceArguments(self) -> None:
        """C{--metrics} is given to services itself, not in a C{--X-args}."""
        error = self.assertRaises(
            UsageError, SERVICES.parse, "--chat-args", "--metrics tcp:9100"
        )
        self.assertIn(
            "--chat-args: --metrics is an option of services itself", str(error)
        )
