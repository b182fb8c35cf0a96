"""
Tests for L{twisted_services.server.heap}: start-up's objects are frozen out
of the garbage collector's passes once the services have started.
"""

from __future__ import annotations

import gc

from twisted.trial.unittest import SynchronousTestCase

from twisted_services.server.heap import StartupHeapFreezer


class StartupHeapFreezerTests(SynchronousTestCase):
    def setUp(self) -> None:
        gc.unfreeze()
        self.addCleanup(gc.unfreeze)

    def test_freezesWhenStarted(self) -> None:
        """
        Starting it moves every object the collector tracks into the
        permanent generation, where full passes no longer walk them; until
        then nothing is frozen.
        """
        freezer = StartupHeapFreezer()
        self.assertEqual(gc.get_freeze_count(), 0)
        freezer.startService()
        self.assertTrue(freezer.running)
        self.assertGreater(gc.get_freeze_count(), 1000)
