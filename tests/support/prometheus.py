"""
Prometheus for tests: reading samples from a collector, rendering and
checking an exposition with C{promtool}, and a real C{prometheus} server on
loopback scraping a target, queried over its HTTP API.

Every wait has a deadline (L{tests.support.waiting.polling}); nothing sleeps.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import urlopen

from prometheus_client import CollectorRegistry, generate_latest

from tests.support.waiting import polling
from twisted_services.server.metrics.sources import Collector

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
NO_PROMTOOL = "promtool is not installed (Debian: apt-get install prometheus)"
NO_PROMETHEUS = "prometheus is not installed (Debian: apt-get install prometheus)"


def sampleValue(collector: Collector, name: str, **labels: str) -> float:
    """
    The value of the one sample C{name} (as exposed: C{..._total},
    C{..._bucket}) with exactly C{labels} that C{collector} gives.
    """
    found = [
        sample.value
        for family in collector.collect()
        for sample in family.samples
        if sample.name == name and sample.labels == labels
    ]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} samples {name} {labels}")
    return found[0]


def render(collectors: Iterable[Collector]) -> bytes:
    """The text exposition of C{collectors}, as C{/metrics} renders it."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


def promtoolCheck(exposition: bytes) -> subprocess.CompletedProcess[str]:
    """C{promtool check metrics} run on C{exposition}."""
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=exposition.decode("utf-8"),
        capture_output=True,
        text=True,
        timeout=30,
    )


class PrometheusServer:
    """
    The real C{prometheus} on C{127.0.0.1:port}, its storage and its config
    in C{directory}, scraping C{target} (C{host:port}) every second.
    """

    def __init__(self, directory: Path, port: int, target: str) -> None:
        assert PROMETHEUS is not None
        self.url = f"http://127.0.0.1:{port}"
        config = directory / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: services\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        self.log = directory / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def _get(self, path: str, timeout: float = 2.0) -> bytes:
        with urlopen(self.url + path, timeout=timeout) as response:
            return response.read()

    def waitReady(self, timeout: float = 30.0) -> None:
        """Wait until Prometheus answers C{/-/ready}."""
        for remaining in polling(timeout, "prometheus ready", steps=600):
            if self.process.poll() is not None:
                raise AssertionError("prometheus exited:\n" + self.log.read_text())
            try:
                self._get("/-/ready", min(remaining, 0.5))
                return
            except (URLError, OSError):
                # Not listening yet: urlopen's connect fails at once, so
                # wait on a process exit instead, as briefly.
                try:
                    self.process.wait(min(remaining, 0.05))
                except subprocess.TimeoutExpired:
                    pass

    def query(self, expression: str) -> list[dict]:
        """The result of an instant query, as the HTTP API gives it."""
        body = self._get("/api/v1/query?" + urlencode({"query": expression}))
        answer = json.loads(body)
        if answer["status"] != "success":
            raise AssertionError(answer)
        return answer["data"]["result"]

    def waitForValue(
        self, expression: str, wanted: float, timeout: float = 20.0
    ) -> None:
        """Wait until C{expression}'s single value is C{wanted}."""
        seen: list[dict] = []
        for remaining in polling(timeout, f"{expression} == {wanted} (saw {seen})"):
            seen[:] = self.query(expression)
            if len(seen) == 1 and float(seen[0]["value"][1]) == wanted:
                return
            try:
                self.process.wait(min(remaining, 0.2))
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError("prometheus exited:\n" + self.log.read_text())

    def stop(self) -> None:
        """Stop Prometheus and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
