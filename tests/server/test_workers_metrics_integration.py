"""
Integration test of C{--metrics} with C{--workers}: a real C{twistd http}
supervisor of two workers, its metrics scraped from the supervisor's own
listener over loopback. Which worker served which connection is read from
C{/proc}, as in L{tests.server.test_workers_integration}; every wait has a
deadline, and nothing sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from tests.server.test_workers_integration import (
    REQUEST_TIMEOUT,
    WORKERS,
    accepting,
    get,
    servingWorkers,
    startHttp,
)
from tests.support.prometheus import NO_PROMTOOL, PROMTOOL, promtoolCheck
from tests.support.twistd import STARTUP_TIMEOUT, Twistd

# Keep-alive requests sent on each connection held; the last one closes it.
PER_CONNECTION = 5
# At most this many connections are opened to find one on every worker.
MAX_CONNECTIONS = 200
KEEP_ALIVE = b"GET / HTTP/1.1\r\nHost: workers.test\r\n\r\n"
LAST = b"GET / HTTP/1.1\r\nHost: workers.test\r\nConnection: close\r\n\r\n"


def metricsAddress(twistd: Twistd) -> tuple[str, int]:
    """Where the supervisor serves C{--metrics}."""
    twistd.waitFor(
        lambda: any(b.service == "metrics" for b in twistd.bound), STARTUP_TIMEOUT
    )
    [bound] = [b for b in twistd.bound if b.service == "metrics"]
    return bound.loopbackAddress


def scrape(address: tuple[str, int]) -> bytes:
    """C{GET /metrics}: the exposition."""
    host, port = address
    url = f"http://{host}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT) as response:
        body: bytes = response.read()
        return body


def samples(exposition: bytes, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called C{name}: their sorted labels to their value."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
        if sample.name == name
    }


def requestsTotal(exposition: bytes) -> float:
    """C{twisted_services_http_requests_total}, summed over its labels."""
    return sum(samples(exposition, "twisted_services_http_requests_total").values())


def heldOnEveryWorker(
    address: tuple[str, int], pids: dict[int, int]
) -> list[tuple[socket.socket, int]]:
    """
    Connections opened one by one until every worker holds one (at most
    L{MAX_CONNECTIONS}), each with the slot of the worker holding it.
    """
    held: list[tuple[socket.socket, int]] = []
    for _ in range(MAX_CONNECTIONS):
        client = socket.create_connection(address, timeout=REQUEST_TIMEOUT)
        held.append((client, accepting(address[1], client, pids)))
        if {slot for _, slot in held} == set(pids):
            break
    return held


def requestAll(client: socket.socket) -> int:
    """L{PER_CONNECTION} requests on C{client}, pipelined: the 200s answered."""
    with client:
        client.sendall(KEEP_ALIVE * (PER_CONNECTION - 1) + LAST)
        chunks = []
        while chunk := client.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).count(b"HTTP/1.1 200 OK")


class WorkersMetricsTests(SynchronousTestCase):
    """C{twistd http --workers 2 --metrics}: one scrape counts every worker."""

    def test_summedAndMonotonic(self) -> None:
        """
        Requests served by both workers are all in the supervisor's sum, each
        process has its own CPU series, and after a worker is killed and
        replaced the sum has not gone down and goes on counting.
        """
        twistd, pids = startHttp(self, "--metrics", "tcp:0:interface=127.0.0.1")
        address = twistd.listener().loopbackAddress
        metrics = metricsAddress(twistd)
        held = heldOnEveryWorker(address, pids)
        self.assertEqual({slot for _, slot in held}, set(pids))
        sent = sum(requestAll(client) for client, _ in held)
        self.assertEqual(sent, PER_CONNECTION * len(held))

        first = scrape(metrics)
        self.assertEqual(requestsTotal(first), sent)
        self.assertEqual(
            {
                dict(labels)["worker"]
                for labels in samples(first, "process_cpu_seconds_total")
            },
            {"supervisor", *(str(slot) for slot in range(1, WORKERS + 1))},
        )

        os.kill(pids[1], signal.SIGKILL)
        twistd.waitFor(
            lambda: servingWorkers(twistd).get(1) not in (None, pids[1]),
            STARTUP_TIMEOUT,
        )
        again = scrape(metrics)
        self.assertEqual(requestsTotal(again), sent)
        more = sum(b"200 OK" in get(address) for _ in range(PER_CONNECTION))
        self.assertEqual(requestsTotal(scrape(metrics)), sent + more)

        if PROMTOOL is None:
            raise self.skipTest(NO_PROMTOOL)
        result = promtoolCheck(again)
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))
