"""
The Grafana dashboard in C{contrib/grafana/}: a panel per service, and every
metric it queries is one the services export.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from tests.support.prometheus import render
from tests.support.tap import Tap
from twisted_services.server.metrics.exposition import metricsRegistry
from twisted_services.services import tap

DASHBOARD = (
    Path(__file__).parent.parent / "contrib" / "grafana" / "twisted-services.json"
)
# A metric name in PromQL: ours, and the process collector's.
_NAME = re.compile(r"\b(?:twisted_services|process)_[a-z0-9_]+\b")


def exportedNames() -> set[str]:
    """
    Every sample name C{twistd services} exports, all services on (chat
    with C{--redis}, which adds its families; nothing connects on the fake
    reactor), and the name of each counter declared (before its first
    event it has none).
    """
    service, _ = Tap(tap).started(
        "--echo-args", "--udp-port 0", "--chat-args", "--redis redis://127.0.0.1:1/0"
    )
    exposition = render([metricsRegistry(lambda: service)]).decode()
    declared = set(re.findall(r"^# TYPE (\S+) counter$", exposition, re.MULTILINE))
    return declared | {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def queries() -> list[tuple[str, str]]:
    """Each panel's title with each of its queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


class DashboardTests(SynchronousTestCase):
    """The dashboard graphs what the services export."""

    def test_panelPerService(self) -> None:
        """Each service has its panel."""
        titles = {title for title, _ in queries()}
        self.assertTrue({"echo", "chat", "http", "temperature"} <= titles, titles)

    def test_namesExported(self) -> None:
        """Every metric name the dashboard queries is exported."""
        exported = exportedNames()
        used = {name for _, expr in queries() for name in _NAME.findall(expr)}
        self.assertGreater(len(used), 20)
        self.assertEqual(used - exported, set())

    def test_everyServiceGraphed(self) -> None:
        """Each service panel queries metrics of that service."""
        for title, exprs in self._byPanel().items():
            if title in ("echo", "chat", "http", "temperature"):
                self.assertTrue(
                    any(title in expr for expr in exprs), f"{title}: {exprs}"
                )

    def _byPanel(self) -> dict[str, list[str]]:
        panels: dict[str, list[str]] = {}
        for title, expr in queries():
            panels.setdefault(title, []).append(expr)
        return panels
