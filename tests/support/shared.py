"""
One C{twistd} subprocess shared by the tests of a class that only read from
it, under pytest and trial alike: each start costs about 0.3 s of CPU, which
a suite run twice (pytest and trial) pays for every test that starts one.

trial never calls C{setUpClass}/C{tearDownClass}, and C{trial -j} spreads a
class's tests over its workers; so the process is started by the first test
of the class that asks for it in this process, and stopped by
C{tearDownClass} where the runner calls it (pytest), else as soon as a test
of another class asks for a shared process (every runner goes through the
classes one after the other in each process), else when this process exits.

A test that leaves the process dead fails, in its own clean-up; the next
test of the class then starts a fresh one.
"""

from __future__ import annotations

import atexit
from collections.abc import Sequence

from twisted.trial.unittest import SynchronousTestCase

from tests.support.twistd import STARTUP_TIMEOUT, Twistd, pluginCommand

_Key = tuple[str, tuple[str, ...]]

_owner: type | None = None
_running: dict[_Key, Twistd] = {}


def sharedTwistd(
    testCase: SynchronousTestCase,
    plugin: str,
    arguments: Sequence[str] = (),
    listeners: int = 1,
) -> Twistd:
    """
    The running C{twistd -n PLUGIN ARGUMENTS} that the tests of
    C{testCase}'s class share, started (and waited for until C{listeners}
    listeners have logged their addresses) if this is the first ask.
    """
    global _owner
    owner = type(testCase)
    if _owner is not owner:
        stopShared()
        _owner = owner
    key = (plugin, tuple(arguments))
    twistd = _running.get(key)
    if twistd is None or twistd.process.poll() is not None:
        twistd = Twistd.spawn(pluginCommand(plugin, arguments))
        _running[key] = twistd
        try:
            twistd.waitFor(lambda: len(twistd.bound) >= listeners, STARTUP_TIMEOUT)
        except BaseException:
            del _running[key]
            twistd.kill()
            raise
    testCase.addCleanup(_assertAlive, twistd)
    return twistd


def _assertAlive(twistd: Twistd) -> None:
    """The test that ends must leave the shared process running."""
    if twistd.process.poll() is not None:
        raise AssertionError(
            f"the shared twistd exited ({twistd.process.returncode}):\n{twistd.log()}"
        )


def stopShared() -> None:
    """Kill every shared process (a class's C{tearDownClass}, and at exit)."""
    global _owner
    _owner = None
    running = list(_running.values())
    _running.clear()
    for twistd in running:
        twistd.kill()


atexit.register(stopShared)


class SharedTwistdTestCase(SynchronousTestCase):
    """Tests that share L{sharedTwistd} processes; pytest stops them after the class."""

    @classmethod
    def tearDownClass(cls) -> None:
        stopShared()
        super().tearDownClass()
