"""
Tests for chat's Redis metrics in L{twisted_services.chat.metrics}: the
broker on the fake link of L{tests.chat.test_redisbroker}, read by chat's
collector as a scrape would, each metric moving as its event happens.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.chat.test_redisbroker import TIMEOUT, bringUp, brokerOn, entered
from tests.support.prometheus import (
    NO_PROMTOOL,
    PROMTOOL,
    promtoolCheck,
    render,
    sampleValue,
)
from tests.support.tap import Tap
from twisted_services.chat import tap
from twisted_services.chat.metrics import ChatCollector
from twisted_services.chat.protocol import ChatFactory
from twisted_services.chat.redisbroker import RedisBroker
from twisted_services.server.metrics.exposition import metricsRegistry

MAX_PENDING = 100
LINE = b"x" * 48 + b"\r\n"


def collectorOf(broker: RedisBroker) -> ChatCollector:
    """Chat's collector over C{broker}'s state, as C{makeService} builds it."""
    factory = ChatFactory(Clock(), broker=broker)
    return ChatCollector(factory.counters, factory.connections, factory.state, broker)


class RedisMetricsTests(SynchronousTestCase):
    """The Redis link's state and the lines that did not cross it are exported."""

    def value(self, collector: ChatCollector, name: str) -> float:
        return sampleValue(collector, f"twisted_services_{name}")

    def test_dropPastMaxPending(self) -> None:
        """
        Lines awaiting Redis are pending bytes; the one past
        C{--redis-max-pending} is counted dropped, not pending, and Redis's
        answer frees its bytes.
        """
        broker, link, _ = brokerOn(maxPending=MAX_PENDING)
        collector = collectorOf(broker)
        entered(broker, link, "alice")
        broker.publish("lobby", LINE)
        broker.publish("lobby", LINE)
        self.assertEqual(self.value(collector, "chat_redis_pending_bytes"), 100)
        self.assertEqual(self.value(collector, "chat_redis_lines_dropped_total"), 0)
        broker.publish("lobby", LINE)
        self.assertEqual(self.value(collector, "chat_redis_lines_dropped_total"), 1)
        self.assertEqual(self.value(collector, "chat_redis_pending_bytes"), 100)
        link.take("publish")[-1].callback(1)
        self.assertEqual(self.value(collector, "chat_redis_pending_bytes"), 50)
        self.assertEqual(self.value(collector, "chat_redis_lines_unshared_total"), 0)

    def test_linkLostAndBack(self) -> None:
        """
        Losing Redis sets the link gauge to 0, counts one loss, empties the
        pending bytes, and counts lines said meanwhile as unshared, not
        dropped; back up, the gauge is 1 and the counts stay.
        """
        broker, link, _ = brokerOn()
        collector = collectorOf(broker)
        entered(broker, link, "alice")
        self.assertEqual(self.value(collector, "chat_redis_link_up"), 1)
        self.assertEqual(self.value(collector, "chat_redis_link_losses_total"), 0)
        broker.publish("lobby", LINE)
        broker.linkLost(Failure(ConnectionError("gone")))
        self.assertEqual(self.value(collector, "chat_redis_link_up"), 0)
        self.assertEqual(self.value(collector, "chat_redis_link_losses_total"), 1)
        self.assertEqual(self.value(collector, "chat_redis_pending_bytes"), 0)
        broker.publish("lobby", LINE)
        broker.publish("lobby", LINE)
        self.assertEqual(self.value(collector, "chat_redis_lines_unshared_total"), 2)
        self.assertEqual(self.value(collector, "chat_redis_lines_dropped_total"), 0)
        bringUp(broker, link)
        self.assertEqual(self.value(collector, "chat_redis_link_up"), 1)
        self.assertEqual(self.value(collector, "chat_redis_link_losses_total"), 1)
        self.assertEqual(self.value(collector, "chat_redis_lines_unshared_total"), 2)

    def test_notReachedAtStart(self) -> None:
        """
        Until Redis is first reached the link gauge is 0 with no loss
        counted; reached, it is 1.
        """
        broker, link, clock = brokerOn(up=False)
        collector = collectorOf(broker)
        clock.advance(TIMEOUT)
        self.assertEqual(self.value(collector, "chat_redis_link_up"), 0)
        self.assertEqual(self.value(collector, "chat_redis_link_losses_total"), 0)
        bringUp(broker, link)
        self.assertEqual(self.value(collector, "chat_redis_link_up"), 1)

    def test_tapHandsBrokerOver(self) -> None:
        """
        C{twistd chat --redis URL} exports the Redis families of its broker
        (not reached on the fake reactor, so its link is down); without
        C{--redis} it exports none.
        """
        shared, _ = Tap(tap).started("--redis", "redis://127.0.0.1:1/0")
        registry = metricsRegistry(lambda: shared)
        self.assertEqual(
            sampleValue(registry, "twisted_services_chat_redis_link_up"), 0
        )
        alone, _ = Tap(tap).started()
        names = [family.name for family in metricsRegistry(lambda: alone).collect()]
        self.assertIn("twisted_services_chat_members", names)
        self.assertEqual([name for name in names if "redis" in name], [])

    def test_promtool(self) -> None:
        """Chat's exposition with the Redis families passes C{promtool}."""
        if PROMTOOL is None:
            raise self.skipTest(NO_PROMTOOL)
        broker, link, _ = brokerOn(maxPending=MAX_PENDING)
        entered(broker, link, "alice")
        for _ in range(3):
            broker.publish("lobby", LINE)
        result = promtoolCheck(render([collectorOf(broker)]))
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))
