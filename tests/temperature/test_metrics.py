"""
Tests for L{twisted_services.temperature.metrics}: requests by result and
datagrams by fate, on a fake UDP port, as the collector exposes them.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.support.prometheus import (
    NO_PROMTOOL,
    PROMTOOL,
    promtoolCheck,
    render,
    sampleValue,
)
from tests.support.udp import RefusingDatagramTransport
from twisted_services.server.udpguard import ReflectionGuard
from twisted_services.temperature.metrics import TemperatureCollector
from twisted_services.temperature.protocol import TemperatureProtocol
from twisted_services.testing import FakeDatagramTransport, attachDatagram

SOURCE = ("127.0.0.1", 5000)


class TemperatureMetricsTests(SynchronousTestCase):
    """Temperature counts requests by result and datagrams dropped by reason."""

    def setUp(self) -> None:
        self.guard = ReflectionGuard("temperature", Clock(), rate=1.0, burst=3)
        self.protocol = TemperatureProtocol(self.guard)
        self.transport = attachDatagram(self.protocol, FakeDatagramTransport(port=1314))
        self.collector = TemperatureCollector(
            self.protocol.results, self.guard.counters
        )

    def requests(self, result: str) -> float:
        return sampleValue(
            self.collector, "twisted_services_temperature_requests_total", result=result
        )

    def dropped(self, reason: str) -> float:
        return sampleValue(
            self.collector,
            "twisted_services_udp_datagrams_dropped_total",
            service="temperature",
            reason=reason,
        )

    def test_results(self) -> None:
        """A conversion counts as ok, a request with no answer as error."""
        self.protocol.datagramReceived(b"100", SOURCE)
        self.protocol.datagramReceived(b"hot", SOURCE)
        self.protocol.datagramReceived(b"98.6F", SOURCE)
        self.assertEqual(
            [reply for reply, _ in self.transport.written],
            [b"100 C = 212 F\n", b"ERROR not a number\n", b"98.6 F = 37 C\n"],
        )
        self.assertEqual((self.requests("ok"), self.requests("error")), (2, 1))

    def test_drops(self) -> None:
        """
        A reply-looking datagram is unanswerable; past the burst of 3 a
        source is rate_limited; neither counts as a request.
        """
        self.protocol.datagramReceived(b"1 C = 33.8 F", SOURCE)
        for _ in range(4):
            self.protocol.datagramReceived(b"1", SOURCE)
        self.assertEqual(self.dropped("unanswerable"), 1)
        self.assertEqual(self.dropped("rate_limited"), 1)
        self.assertEqual(self.requests("ok"), 3)
        self.assertEqual(
            sampleValue(
                self.collector,
                "twisted_services_udp_datagrams_answered_total",
                service="temperature",
            ),
            3,
        )

    def test_sendFailed(self) -> None:
        """
        A reply the system will not send still counts by its result, and as
        a send_failed drop rather than answered.
        """
        protocol = TemperatureProtocol(self.guard)
        attachDatagram(protocol, RefusingDatagramTransport())
        collector = TemperatureCollector(protocol.results, self.guard.counters)
        protocol.datagramReceived(b"100", SOURCE)
        protocol.datagramReceived(b"hot", SOURCE)
        results = {
            result: sampleValue(
                collector,
                "twisted_services_temperature_requests_total",
                result=result,
            )
            for result in ("ok", "error")
        }
        self.assertEqual(results, {"ok": 1, "error": 1})
        self.assertEqual(self.dropped("send_failed"), 2)

    def test_promtool(self) -> None:
        """Temperature's exposition passes C{promtool check metrics}."""
        if PROMTOOL is None:
            raise self.skipTest(NO_PROMTOOL)
        result = promtoolCheck(render([self.collector]))
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))
