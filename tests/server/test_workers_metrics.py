"""
Tests for L{twisted_services.server.workers.metrics} and the channel it
uses: a supervisor's C{--metrics} asks every worker for its families and
answers with them merged. On fake process transports and a L{Clock}.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from tests.server.test_workers_pool import (
    Supervised,
    end,
    serving,
    written,
)
from tests.support.prometheus import NO_PROMTOOL, PROMTOOL, promtoolCheck
from tests.support.tap import Tap
from twisted_services.http import tap as http
from twisted_services.server.listeners import Listener
from twisted_services.server.metrics.exposition import MetricsExporter
from twisted_services.server.tree import walk
from twisted_services.server.workers.channel import (
    MAX_REQUEST,
    Reporter,
    decodeReport,
    encodeMetrics,
    metricsRequest,
    parseMetricsRequest,
)
from twisted_services.server.workers.metrics import (
    ANSWER_TIMEOUT,
    FamilyData,
    WorkersMetrics,
    WorkersMetricsResource,
    cumulative,
    familyData,
    labelled,
    mergeSummed,
    metricFamilies,
    render,
    supervisorFamilies,
)
from twisted_services.server.workers.pool import BACKOFF_BASE, WorkerProcess
from twisted_services.server.workers.workerside import (
    Stopper,
    SupervisorLink,
    workerMetrics,
)

REQUESTS = "twisted_services_http_requests"


def requests(ok: float, missing: float = 0) -> FamilyData:
    """An http requests counter family, as a worker sends it."""
    return {
        "name": REQUESTS,
        "type": "counter",
        "help": "Requests answered.",
        "unit": "",
        "samples": [
            [REQUESTS + "_total", {"code": "200"}, ok],
            [REQUESTS + "_total", {"code": "404"}, missing],
        ],
    }


def openConnections(value: float) -> FamilyData:
    """A gauge family of open connections."""
    name = "twisted_services_connections_open"
    return {
        "name": name,
        "type": "gauge",
        "help": "Connections open now.",
        "unit": "",
        "samples": [[name, {"service": "http"}, value]],
    }


def duration(buckets: list[float], total: float) -> FamilyData:
    """A histogram family with buckets 0.1, 1 and +Inf (cumulative counts)."""
    name = "twisted_services_http_request_duration_seconds"
    bounds = ["0.1", "1.0", "+Inf"]
    return {
        "name": name,
        "type": "histogram",
        "help": "Request durations.",
        "unit": "",
        "samples": [
            *[
                [name + "_bucket", {"le": le}, count]
                for le, count in zip(bounds, buckets, strict=True)
            ],
            [name + "_count", {}, buckets[-1]],
            [name + "_sum", {}, total],
        ],
    }


def cpu(seconds: float) -> FamilyData:
    """A process CPU counter family."""
    return {
        "name": "process_cpu_seconds",
        "type": "counter",
        "help": "CPU seconds.",
        "unit": "",
        "samples": [["process_cpu_seconds_total", {}, seconds]],
    }


def values(families: list[FamilyData], sampleName: str) -> dict[tuple[Any, ...], float]:
    """The samples called C{sampleName}: sorted labels to value."""
    return {
        tuple(sorted(labels.items())): value
        for family in families
        for name, labels, value in family["samples"]
        if name == sampleName
    }


def total(families: list[FamilyData], sampleName: str) -> float:
    """The sum of the samples called C{sampleName}."""
    return sum(values(families, sampleName).values())


def answer(worker: WorkerProcess, families: list[FamilyData]) -> None:
    """C{worker} answers the last metrics request it was sent."""
    lines = written(worker).splitlines()
    requestId = parseMetricsRequest(lines[-1])
    assert requestId is not None
    worker.childDataReceived(3, encodeMetrics(requestId, families))


def noFamilies() -> list[Any]:
    """A supervisor with no families of its own."""
    return []


class Scraping:
    """A L{WorkersMetrics} over a L{Supervised} pool of two serving workers."""

    def __init__(self) -> None:
        self.supervised = Supervised(2)
        self.workers = self.supervised.start()
        self.metrics = WorkersMetrics(
            self.supervised.pool, self.supervised.clock, noFamilies
        )

    def scrape(self, *answers: list[FamilyData] | None) -> list[FamilyData]:
        """One scrape, each current worker answering in turn (C{None}: not)."""
        results: list[list[FamilyData]] = []
        self.metrics.gather().addCallback(results.append)
        current = self.supervised.pool.answering()
        for worker, families in zip(current, answers, strict=True):
            if families is not None:
                answer(worker, families)
        if not results:
            self.supervised.clock.advance(ANSWER_TIMEOUT)
        [merged] = results
        return merged


class ChannelTests(SynchronousTestCase):
    """The metrics request and its answer, as lines."""

    def test_request(self) -> None:
        """A request line gives back its id; other lines give C{None}."""
        self.assertEqual(parseMetricsRequest(metricsRequest(7).rstrip()), 7)
        self.assertLessEqual(len(metricsRequest(10**12)), MAX_REQUEST)
        for line in (b"retire", b"metrics", b"metrics x", b"metrics 1 2"):
            self.assertIsNone(parseMetricsRequest(line))

    def test_answer(self) -> None:
        """An answer decodes as the C{metrics} control, its id and families."""
        control, record = decodeReport(encodeMetrics(3, [requests(1)]).rstrip())
        self.assertEqual(control, "metrics")
        self.assertEqual((record["id"], record["families"]), (3, [requests(1)]))


class MergeTests(SynchronousTestCase):
    """The pure merge: several processes' families into one exposition's."""

    def test_countersAndGaugesSum(self) -> None:
        """Samples of one name and labels add up; families keep their order."""
        merged = mergeSummed(
            [[requests(3, 1), openConnections(2)], [requests(4), openConnections(5)]]
        )
        self.assertEqual(
            [f["name"] for f in merged],
            [REQUESTS, "twisted_services_connections_open"],
        )
        self.assertEqual(
            values(merged, REQUESTS + "_total"),
            {(("code", "200"),): 7, (("code", "404"),): 1},
        )
        self.assertEqual(total(merged, "twisted_services_connections_open"), 7)

    def test_histogramsAddUp(self) -> None:
        """Each bucket, the count and the sum add up across workers."""
        merged = mergeSummed([[duration([1, 2, 3], 1.5)], [duration([4, 4, 6], 9.0)]])
        name = "twisted_services_http_request_duration_seconds"
        self.assertEqual(
            values(merged, name + "_bucket"),
            {(("le", "0.1"),): 5, (("le", "1.0"),): 6, (("le", "+Inf"),): 9},
        )
        self.assertEqual(total(merged, name + "_count"), 9)
        self.assertEqual(total(merged, name + "_sum"), 10.5)

    def test_oneWorker(self) -> None:
        """With one part, the merge is that part, unchanged."""
        self.assertEqual(mergeSummed([[requests(3, 1)]]), [requests(3, 1)])

    def test_cumulative(self) -> None:
        """Only counters and histograms grow; C{_created} samples are left out."""
        created = requests(1)
        created["samples"].append([REQUESTS + "_created", {}, 1.7e9])
        kept = cumulative([created, openConnections(3), duration([1, 1, 1], 0.1)])
        self.assertEqual(
            [f["name"] for f in kept],
            [REQUESTS, "twisted_services_http_request_duration_seconds"],
        )
        self.assertNotIn(REQUESTS + "_created", [s[0] for s in kept[0]["samples"]])

    def test_labelled(self) -> None:
        """Every sample gets the labels, beside its own."""
        [family] = labelled([requests(1)], {"worker": "2"})
        self.assertEqual(
            [labels for _, labels, _ in family["samples"]],
            [{"code": "200", "worker": "2"}, {"code": "404", "worker": "2"}],
        )

    def test_roundTrip(self) -> None:
        """Families as data render as the text format parses them back."""
        families = [requests(3, 1), openConnections(2), duration([1, 2, 3], 1.5)]
        parsed = list(text_string_to_metric_families(render(families).decode()))
        self.assertEqual(familyData(parsed), familyData(metricFamilies(families)))
        self.assertEqual([f.name for f in parsed], [f["name"] for f in families])


class GatherTests(SynchronousTestCase):
    """L{WorkersMetrics.gather}: every worker asked, the answers merged."""

    def test_everyWorkerAsked(self) -> None:
        """Each serving worker is asked; the services' counts are summed."""
        scraping = Scraping()
        merged = scraping.scrape([requests(3), cpu(1.0)], [requests(4), cpu(2.0)])
        for worker in scraping.workers:
            self.assertEqual(written(worker), metricsRequest(1))
        self.assertEqual(total(merged, REQUESTS + "_total"), 7)
        self.assertEqual(
            values(merged, "process_cpu_seconds_total"),
            {
                (("generation", "1"), ("worker", "1")): 1.0,
                (("generation", "1"), ("worker", "2")): 2.0,
            },
        )
        self.assertEqual(
            total(merged, "twisted_services_workers_metrics_missed_total"), 0
        )

    def test_startingNotAsked(self) -> None:
        """A worker not serving yet is not asked (it has counted nothing)."""
        supervised = Supervised(2)
        first, second = supervised.start(serve=False)
        serving(first)
        metrics = WorkersMetrics(supervised.pool, supervised.clock, noFamilies)
        results: list[list[FamilyData]] = []
        metrics.gather().addCallback(results.append)
        self.assertEqual(written(second), b"")
        answer(first, [requests(2)])
        self.assertEqual(total(results[0], REQUESTS + "_total"), 2)

    def test_timeout(self) -> None:
        """
        A worker that does not answer in time is left out, logged and
        counted; its late answer changes nothing.
        """
        scraping = Scraping()
        results: list[list[FamilyData]] = []
        scraping.metrics.gather().addCallback(results.append)
        quick, slow = scraping.workers
        answer(quick, [requests(3), openConnections(1)])
        scraping.supervised.clock.advance(ANSWER_TIMEOUT - 0.1)
        self.assertEqual(results, [])
        with capturedLogs() as events:
            scraping.supervised.clock.advance(0.1)
        [merged] = results
        self.assertEqual(total(merged, REQUESTS + "_total"), 3)
        self.assertEqual(
            total(merged, "twisted_services_workers_metrics_missed_total"), 1
        )
        self.assertEqual(scraping.metrics.missed, 1)
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])
        answer(slow, [requests(100)])
        self.assertEqual(
            total(scraping.scrape([requests(3)], [requests(4)]), REQUESTS + "_total"), 7
        )

    def test_lateWorkerKeepsItsCounters(self) -> None:
        """
        A worker that answered before and not now: its last counters stand
        in for it, so the sum does not fall; its gauges are left out.
        """
        scraping = Scraping()
        scraping.scrape(
            [requests(3), openConnections(1)], [requests(4), openConnections(2)]
        )
        merged = scraping.scrape([requests(5), openConnections(1)], None)
        self.assertEqual(total(merged, REQUESTS + "_total"), 9)
        self.assertEqual(total(merged, "twisted_services_connections_open"), 1)

    def test_endedWhileAsked(self) -> None:
        """A worker whose process ends before it answers does not hold the scrape."""
        scraping = Scraping()
        results: list[list[FamilyData]] = []
        scraping.metrics.gather().addCallback(results.append)
        first, second = scraping.workers
        answer(first, [requests(3)])
        end(second)
        [merged] = results
        self.assertEqual(total(merged, REQUESTS + "_total"), 3)
        self.assertEqual(scraping.metrics.missed, 0)

    def test_restartedWorkerMonotonic(self) -> None:
        """
        A worker that dies and starts again from zero: the sum does not go
        down, since its last counts are kept, and they are kept once.
        """
        scraping = Scraping()
        supervised = scraping.supervised
        merged = scraping.scrape(
            [requests(5), duration([1, 2, 5], 2.0)],
            [requests(3), duration([0, 1, 3], 1.0)],
        )
        self.assertEqual(total(merged, REQUESTS + "_total"), 8)
        end(scraping.workers[0], signal=9)
        supervised.clock.advance(BACKOFF_BASE)
        replacement = supervised.launched[-1]
        self.assertIsNot(replacement, scraping.workers[0])
        serving(replacement)
        name = "twisted_services_http_request_duration_seconds"
        for _ in range(2):
            merged = scraping.scrape(
                [requests(4), duration([1, 1, 1], 0.5)],
                [requests(1), duration([0, 0, 1], 0.5)],
            )
            self.assertEqual(total(merged, REQUESTS + "_total"), 10)
            self.assertEqual(
                values(merged, name + "_bucket"),
                {(("le", "0.1"),): 2, (("le", "1.0"),): 3, (("le", "+Inf"),): 7},
            )
            self.assertEqual(total(merged, name + "_sum"), 3.0)

    def test_reloadRetiresWithTheirCounts(self) -> None:
        """
        Across a reload, the old generation's counts stay in the sum, and
        the leaving workers are asked while they run.
        """
        scraping = Scraping()
        supervised = scraping.supervised
        scraping.scrape([requests(5)], [requests(3)])
        supervised.pool.reopen()
        new = supervised.launched[2:]
        for worker in new:
            serving(worker)
        asked = supervised.pool.answering()
        self.assertEqual(len(asked), 4)
        merged = scraping.scrape(
            [requests(6)], [requests(3)], [requests(1)], [requests(0)]
        )
        self.assertEqual(total(merged, REQUESTS + "_total"), 10)
        for worker in scraping.workers:
            end(worker, code=0)
        merged = scraping.scrape([requests(2)], [requests(1)])
        self.assertEqual(total(merged, REQUESTS + "_total"), 12)

    def test_supervisorOwn(self) -> None:
        """The supervisor's own process families are labelled as its."""
        supervised = Supervised(1)
        supervised.start()
        metrics = WorkersMetrics(
            supervised.pool, supervised.clock, supervisorFamilies()
        )
        results: list[list[FamilyData]] = []
        metrics.gather().addCallback(results.append)
        answer(supervised.launched[0], [])
        found = values(results[0], "process_cpu_seconds_total")
        self.assertEqual(list(found), [(("worker", "supervisor"),)])
        self.assertEqual(
            next(iter(values(results[0], "twisted_services_build_info")))[-1],
            ("worker", "supervisor"),
        )


class ResourceTests(SynchronousTestCase):
    """L{WorkersMetricsResource}: the merged exposition, once all answered."""

    def test_render(self) -> None:
        """The scrape is answered once the workers have, in the text format."""
        scraping = Scraping()
        request = DummyRequest([b"metrics"])
        resource = WorkersMetricsResource(scraping.metrics)
        self.assertEqual(resource.render_GET(request), NOT_DONE_YET)
        self.assertEqual(request.finished, 0)
        first, second = scraping.workers
        answer(first, [requests(3), duration([1, 2, 3], 1.5)])
        answer(second, [requests(4), duration([4, 4, 6], 9.0)])
        self.assertEqual(request.finished, 1)
        body = b"".join(request.written)
        self.assertIn(b'twisted_services_http_requests_total{code="200"} 7.0', body)
        if PROMTOOL is not None:
            result = promtoolCheck(body)
            self.assertEqual((result.returncode, result.stderr), (0, ""))

    def test_clientGone(self) -> None:
        """A scraper gone before the answer: nothing is written."""
        scraping = Scraping()
        request = DummyRequest([b"metrics"])
        WorkersMetricsResource(scraping.metrics).render_GET(request)
        request.processingFailed(Exception("gone"))  # type: ignore[no-untyped-call]
        first, second = scraping.workers
        answer(first, [requests(3)])
        answer(second, [requests(4)])
        self.assertEqual(request.written, [])

    def test_promtool(self) -> None:
        """The merged families of real http workers pass C{promtool}."""
        if PROMTOOL is None:
            raise self.skipTest(NO_PROMTOOL)
        scraping = Scraping()
        options = Tap(http).parse("--port", "0", "--metrics", "tcp:0")
        metrics = workerMetrics(http.makeService(options, MemoryReactorClock()))
        scraping.metrics = WorkersMetrics(
            scraping.supervised.pool, scraping.supervised.clock, supervisorFamilies()
        )
        results: list[list[FamilyData]] = []
        scraping.metrics.gather().addCallback(results.append)
        for worker in scraping.workers:
            answer(worker, metrics())
        result = promtoolCheck(render(results[0]))
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))


class WorkerSideTests(SynchronousTestCase):
    """A worker answers its supervisor's requests, and does not serve --metrics."""

    def test_exporterUnbound(self) -> None:
        """The worker's exporter keeps no listener; its families are the service's."""
        options = Tap(http).parse("--port", "0", "--metrics", "tcp:0")
        service = http.makeService(options, MemoryReactorClock())
        metrics = workerMetrics(service)
        [exporter] = [s for s in walk(service) if isinstance(s, MetricsExporter)]
        self.assertEqual(list(exporter), [])
        names = [f["name"] for f in metrics()]
        self.assertIn(REQUESTS, names)
        self.assertIn("process_cpu_seconds", names)

    def test_noExporter(self) -> None:
        """Without --metrics, a worker answers with no families."""
        service = http.makeService(Tap(http).parse("--port", "0"), MemoryReactorClock())
        self.assertEqual(workerMetrics(service)(), [])

    def test_answers(self) -> None:
        """A request on the supervisor's pipe is answered on the report pipe."""
        reactor = MemoryReactorClock()
        readEnd, writeEnd = os.pipe()
        self.addCleanup(os.close, readEnd)
        self.addCleanup(os.close, writeEnd)
        link = SupervisorLink(
            reactor,
            [],
            Stopper(reactor),
            reporter=Reporter(writeEnd),
            metrics=lambda: [requests(2)],
        )
        request = metricsRequest(41)
        link.childDataReceived("supervisor", request[:4])
        link.childDataReceived("supervisor", request[4:] + metricsRequest(42))
        lines = os.read(readEnd, 65536).splitlines()
        self.assertEqual([decodeReport(line)[1]["id"] for line in lines], [41, 42])
        self.assertEqual(decodeReport(lines[0])[1]["families"], [requests(2)])
        self.assertFalse(link.retired)


class SupervisorTreeTests(SynchronousTestCase):
    """With C{--workers} and C{--metrics}, the supervisor serves the metrics."""

    def test_metricsNotShared(self) -> None:
        """
        The metrics listener is the supervisor's own exporter's, and not
        among the sockets handed to workers.
        """
        options = Tap(http).parse(
            "--workers", "2", "--port", "0", "--metrics", "tcp:0:interface=127.0.0.1"
        )
        reactor = MemoryReactorClock()
        service = http.makeService(options, reactor)
        [exporter] = [c for c in service if isinstance(c, MetricsExporter)]
        self.assertEqual(exporter.descriptions, ["tcp:0:interface=127.0.0.1"])
        shared = [c for c in service if isinstance(c, Listener)]
        self.assertEqual([c.serviceName for c in shared], ["http"])
