"""
A supervisor's C{--metrics}: every worker's metrics in one exposition.

With workers, the metrics listener is the supervisor's alone (a shared one
would answer each scrape from whichever worker accepted it). At each scrape
the supervisor asks every worker that serves (or is leaving) for its
families over its pipe (L{channel.metricsRequest}); a worker answers with
its registry's samples as JSON data, so nothing parses the text format
back. What the supervisor answers:

 - the services' families (C{twisted_services_*}, but the build's) summed
   across workers, sample by sample: counters, gauges (connections open
   now, in total), histogram buckets, sums and counts, so that
   C{twisted_services_http_requests_total} counts the whole service;
 - the process families (C{process_*}) and C{twisted_services_build_info}
   of each process, labelled C{worker="SLOT"} and C{generation="N"} for a
   worker, C{worker="supervisor"} for itself: CPU seconds and memory per
   process say which one is busy, and C{sum()} in a query adds them up;
   a restarted worker's CPU counter starting again from 0 is an ordinary
   counter reset of its own series.

Counters must not go backwards when a worker restarts (or a reload
replaces it) and its counts start again from zero: the supervisor keeps the
last counter and histogram samples each worker answered, and once a worker
has ended adds them to a total of the ended workers' that goes into every
sum after. (What a worker counted after the last scrape before it died is
lost: the sum stays monotonic but may undercount.) A worker that does not
answer within L{ANSWER_TIMEOUT} is left out of this scrape's gauges and
process families, its last counters stand in for it, and it is logged and
counted in C{twisted_services_workers_metrics_missed_total}: a stuck worker
never holds the scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from twisted_services.server.metrics.exposition import BuildInfoCollector
from twisted_services.server.metrics.families import PREFIX, counter
from twisted_services.server.workers.pool import ENDED, WorkerPool, WorkerProcess

ANSWER_TIMEOUT = 2.0
"""
Seconds a scrape waits for a worker's answer: well inside Prometheus's
default 10 s scrape timeout, and ages for a worker whose reactor turns.
"""

FamilyData = dict[str, Any]
"""
One metric family as data: C{name}, C{type}, C{help}, C{unit}, and
C{samples}, a list of C{[sampleName, labels, value]}.
"""

_CUMULATIVE = ("counter", "histogram")
BUILD_INFO = PREFIX + "build_info"


def familyData(families: Iterable[Metric]) -> list[FamilyData]:
    """C{families} as data, to be sent as JSON."""
    return [
        {
            "name": family.name,
            "type": family.type,
            "help": family.documentation,
            "unit": family.unit,
            "samples": [[s.name, s.labels, s.value] for s in family.samples],
        }
        for family in families
    ]


def metricFamilies(data: Iterable[FamilyData]) -> Iterator[Metric]:
    """What L{familyData} made, as families C{generate_latest} renders."""
    for family in data:
        metric = Metric(family["name"], family["help"], family["type"], family["unit"])
        for name, labels, value in family["samples"]:
            metric.add_sample(name, labels, value)
        yield metric


def isServiceFamily(family: FamilyData) -> bool:
    """Whether C{family} counts a service's traffic (summed across workers)."""
    name: str = family["name"]
    return name.startswith(PREFIX) and name != BUILD_INFO


def cumulative(families: Iterable[FamilyData]) -> list[FamilyData]:
    """
    The families of C{families} that only ever grow (counters, histograms),
    which a worker's end must not take out of a sum.
    """
    return [
        {
            **family,
            "samples": [s for s in family["samples"] if not s[0].endswith("_created")],
        }
        for family in families
        if family["type"] in _CUMULATIVE
    ]


def mergeSummed(parts: Iterable[Sequence[FamilyData]]) -> list[FamilyData]:
    """
    One list of families from several processes', the values of samples
    with the same name and labels added up; families and samples keep the
    order they first came in.
    """
    merged: dict[str, FamilyData] = {}
    sums: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for part in parts:
        for family in part:
            name = family["name"]
            if name not in merged:
                merged[name] = {k: v for k, v in family.items() if k != "samples"}
                sums[name] = {}
            values = sums[name]
            for sampleName, labels, value in family["samples"]:
                key = (sampleName, tuple(sorted(labels.items())))
                values[key] = values.get(key, 0) + value
    for name, family in merged.items():
        family["samples"] = [
            [sampleName, dict(labels), value]
            for (sampleName, labels), value in sums[name].items()
        ]
    return list(merged.values())


def labelled(
    families: Iterable[FamilyData], labels: dict[str, str]
) -> list[FamilyData]:
    """C{families} with C{labels} added to every sample."""
    return [
        {
            **family,
            "samples": [[n, {**ls, **labels}, v] for n, ls, v in family["samples"]],
        }
        for family in families
    ]


def workerLabels(worker: WorkerProcess) -> dict[str, str]:
    """The labels of a worker's process families."""
    return {"worker": str(worker.slot), "generation": str(worker.generation)}


class WorkersMetrics:
    """
    The supervisor's view of its workers' metrics: asks each at every
    scrape, and keeps what makes the sums monotonic (see the module's
    docstring).

    @ivar missed: answers not received within the timeout, ever.
    """

    _log = Logger()

    def __init__(
        self,
        pool: WorkerPool,
        clock: IReactorTime,
        own: Callable[[], Iterable[Metric]],
        timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        """
        @param own: the supervisor's own families (its process, its build).
        """
        self._pool = pool
        self._clock = clock
        self._own = own
        self._timeout = timeout
        self._last: dict[WorkerProcess, list[FamilyData]] = {}
        self._ended: list[FamilyData] = []
        self.missed = 0

    def gather(self) -> Deferred[list[FamilyData]]:
        """Ask every worker; fires with the merged families."""
        self._foldEnded()
        workers = self._pool.answering()
        asked = [self._ask(worker) for worker in workers]
        return gatherResults(asked).addCallback(
            lambda answers: self.merge(list(zip(workers, answers, strict=True)))
        )

    def merge(
        self, answers: Sequence[tuple[WorkerProcess, list[FamilyData] | None]]
    ) -> list[FamilyData]:
        """
        The exposition's families from each worker's answer (C{None}: none
        came), its last counters and the ended workers' totals.
        """
        services: list[list[FamilyData]] = [self._ended]
        processes: list[list[FamilyData]] = []
        for worker, answer in answers:
            if answer is None:
                services.append(self._last.get(worker, []))
                continue
            own = [f for f in answer if isServiceFamily(f)]
            self._last[worker] = cumulative(own)
            services.append(own)
            other = [f for f in answer if not isServiceFamily(f)]
            processes.append(labelled(other, workerLabels(worker)))
        supervisor = labelled(familyData(self._own()), {"worker": "supervisor"})
        missed = familyData(
            [
                counter(
                    "workers_metrics_missed",
                    "Workers' metrics answers a scrape did not get in time.",
                    {},
                    self.missed,
                )
            ]
        )
        return [
            *mergeSummed(services),
            *mergeSummed([supervisor, *processes]),
            *missed,
        ]

    def _foldEnded(self) -> None:
        """Add the last counters of workers now ended to the ended total."""
        ended = [w for w in self._last if w.state == ENDED]
        if ended:
            self._ended = cumulative(
                mergeSummed([self._ended, *(self._last.pop(w) for w in ended)])
            )

    def _ask(self, worker: WorkerProcess) -> Deferred[list[FamilyData] | None]:
        asking = worker.askMetrics()
        asking.addTimeout(self._timeout, self._clock)

        def late(failure: Failure) -> None:
            self.missed += 1
            self._log.warn(
                "{service}: {worker} did not send its metrics within {timeout} s; "
                "its last counters stand in for it ({why})",
                service=self._pool.serviceName,
                worker=str(worker),
                timeout=self._timeout,
                why=failure.getErrorMessage(),
            )
            return None

        return asking.addErrback(late)


def supervisorFamilies() -> Callable[[], Iterable[Metric]]:
    """The supervisor's own families: its process's and its build's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BuildInfoCollector())
    ProcessCollector(registry=registry)
    return registry.collect


class _Fixed:
    """A collector of families already gathered."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def render(families: Iterable[FamilyData]) -> bytes:
    """The text exposition of C{families}."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(metricFamilies(families))))
    return generate_latest(registry)


class WorkersMetricsResource(Resource):
    """C{GET /metrics} of a supervisor: its workers' metrics, merged."""

    isLeaf = True
    _log = Logger()

    def __init__(self, metrics: WorkersMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: Request) -> int:
        request.setHeader(b"Content-Type", CONTENT_TYPE_PLAIN_0_0_4.encode("ascii"))
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)

        def answer(families: list[FamilyData]) -> None:
            if not gone:
                request.write(render(families))
                request.finish()

        def failed(failure: Failure) -> None:
            self._log.failure("merging the workers' metrics failed", failure)
            if not gone:
                request.setResponseCode(500)
                request.finish()

        self._metrics.gather().addCallback(answer).addErrback(failed)
        return NOT_DONE_YET
