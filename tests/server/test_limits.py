"""
Tests for L{twisted_services.server.limits}: the descriptor limit is raised
for the connections allowed, and a limit that stays too low is reported.
"""

from __future__ import annotations

import resource

from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.server.limits import HEADROOM, reserveDescriptors


class FakeLimits:
    """C{getrlimit}/C{setrlimit} over one remembered (soft, hard) pair."""

    def __init__(self, soft: int, hard: int, refuse: bool = False) -> None:
        self.limits = (soft, hard)
        self.refuse = refuse

    def get(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.limits

    def set(self, which: int, limits: tuple[int, int]) -> None:
        assert which == resource.RLIMIT_NOFILE
        if self.refuse:
            raise ValueError("not allowed")
        self.limits = limits


def reserve(limits: FakeLimits, connections: int) -> tuple[int, list[str]]:
    """L{reserveDescriptors} on C{limits}: the soft limit and the warnings."""
    with capturedLogs() as events:
        soft = reserveDescriptors(connections, limits.get, limits.set)
    warnings = [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn]
    return soft, warnings


class ReserveDescriptorsTests(SynchronousTestCase):
    """L{reserveDescriptors} raises the soft limit toward the hard one."""

    def test_raisedForConnections(self) -> None:
        """A soft limit below what the connections need is raised, silently."""
        limits = FakeLimits(1024, 1048576)
        self.assertEqual(reserve(limits, 10000), (10000 + HEADROOM, []))
        self.assertEqual(limits.limits, (10000 + HEADROOM, 1048576))

    def test_enoughAlready(self) -> None:
        """A soft limit that holds them already is left alone."""
        limits = FakeLimits(65536, 1048576)
        self.assertEqual(reserve(limits, 10000), (65536, []))

    def test_justEnough(self) -> None:
        """A hard limit exactly the need is enough: no warning."""
        limits = FakeLimits(1024, 10000 + HEADROOM)
        self.assertEqual(reserve(limits, 10000), (10000 + HEADROOM, []))

    def test_hardLimitTooLow(self) -> None:
        """
        One short of the need: raised to the hard limit, and one warning
        saying how many connections can work and what to change.
        """
        limits = FakeLimits(1024, 10000 + HEADROOM - 1)
        soft, warnings = reserve(limits, 10000)
        self.assertEqual(soft, 10000 + HEADROOM - 1)
        self.assertEqual(len(warnings), 1)
        self.assertIn("the descriptor limit (ulimit -n) is 10063", warnings[0])
        self.assertIn("10000 connections (--max-connections)", warnings[0])
        self.assertIn("LimitNOFILE=", warnings[0])

    def test_cannotRaise(self) -> None:
        """A refused raise is said, then the shortfall, once each."""
        limits = FakeLimits(256, 4096, refuse=True)
        soft, warnings = reserve(limits, 1000)
        self.assertEqual(soft, 256)
        self.assertEqual(len(warnings), 2)
        self.assertIn("cannot raise the descriptor limit from 256", warnings[0])
        self.assertIn("connections past about 192 will fail", warnings[1])
