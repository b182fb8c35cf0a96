"""
Tests for L{twisted_services.systemd.notify}: systemd readiness, status, watchdog and
stopping notifications, on a fake datagram port and a L{MemoryReactorClock}.
"""

from __future__ import annotations

import os

from twisted.application.service import MultiService
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests.support.listeners import fakeListener
from twisted_services.server.listeners import describeListeners, serviceWith
from twisted_services.systemd.notify import (
    SystemdNotifier,
    notifyAddress,
    watchdogInterval,
)


class FakeNotifyPort:
    """A unix datagram port stand-in that records what is written where."""

    def __init__(self, error: Exception | None = None) -> None:
        self.written: list[tuple[bytes, str]] = []
        self.stopped = False
        self._error = error

    def write(self, datagram: bytes, address: str) -> None:
        if self._error is not None:
            raise self._error
        self.written.append((datagram, address))

    def stopListening(self) -> None:
        self.stopped = True


class NotifyReactor(MemoryReactorClock):
    """A L{MemoryReactorClock} that also fakes C{listenUNIXDatagram}."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.port = FakeNotifyPort(error)
        self.unixDatagramServers: list[tuple[object, DatagramProtocol]] = []

    def listenUNIXDatagram(
        self, address: object, protocol: DatagramProtocol, *args: object
    ) -> FakeNotifyPort:
        self.unixDatagramServers.append((address, protocol))
        return self.port

    def messages(self) -> list[bytes]:
        """Every notification written so far."""
        return [datagram for datagram, _ in self.port.written]


WATCHED = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "400000"}


def started(
    environ: dict[str, str], reactor: NotifyReactor | None = None
) -> tuple[MultiService, NotifyReactor]:
    """A service with one listener and a notifier, started; the reactor not run."""
    reactor = reactor or NotifyReactor()
    service = serviceWith(
        [fakeListener("echo", IPv4Address("TCP", "0.0.0.0", 8888))], notify=False
    )
    SystemdNotifier(reactor, environ, describeListeners).setServiceParent(service)
    service.startService()
    return service, reactor


class NotifyAddressTests(SynchronousTestCase):
    """L{notifyAddress} turns C{NOTIFY_SOCKET} into a socket address."""

    def test_path(self) -> None:
        """A filesystem path is used as it is."""
        self.assertEqual(notifyAddress("/run/systemd/notify"), "/run/systemd/notify")

    def test_abstract(self) -> None:
        """A leading C{@} names the abstract namespace: a NUL byte."""
        self.assertEqual(notifyAddress("@/org/example/notify"), "\0/org/example/notify")


class WatchdogIntervalTests(SynchronousTestCase):
    """L{watchdogInterval} is half of C{WATCHDOG_USEC}, for this process only."""

    def test_half(self) -> None:
        """Pings go at half the timeout, in seconds."""
        self.assertEqual(watchdogInterval({"WATCHDOG_USEC": "30000000"}, 7), 15.0)

    def test_unset(self) -> None:
        """No C{WATCHDOG_USEC}, or a bad or zero one, means no watchdog."""
        for environ in [{}, {"WATCHDOG_USEC": "soon"}, {"WATCHDOG_USEC": "0"}]:
            self.assertIsNone(watchdogInterval(environ, 7), environ)

    def test_pid(self) -> None:
        """C{WATCHDOG_PID} naming another process turns the watchdog off."""
        environ = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "8"}
        self.assertIsNone(watchdogInterval(environ, 7))
        self.assertEqual(watchdogInterval({**environ, "WATCHDOG_PID": "7"}, 7), 0.5)


class SystemdNotifierTests(SynchronousTestCase):
    """L{SystemdNotifier} speaks systemd's notify protocol around the reactor."""

    def test_noSocket(self) -> None:
        """Without C{NOTIFY_SOCKET} nothing is opened, scheduled or sent."""
        service, reactor = started({"WATCHDOG_USEC": "400000"})
        reactor.run()
        reactor.advance(10)
        service.stopService()
        self.assertEqual(reactor.unixDatagramServers, [])
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_readyOnceRunning(self) -> None:
        """
        C{READY=1} with the status goes out once the reactor runs, not at
        start-up, to the C{NOTIFY_SOCKET} path from an unbound socket.
        """
        _, reactor = started(WATCHED)
        self.assertEqual(reactor.messages(), [])
        self.assertEqual(
            [address for address, _ in reactor.unixDatagramServers], [None]
        )
        reactor.run()
        self.assertEqual(
            reactor.port.written,
            [
                (
                    b"READY=1\nSTATUS=serving echo on tcp:0.0.0.0:8888",
                    "/run/systemd/notify",
                )
            ],
        )

    def test_abstractSocket(self) -> None:
        """An abstract C{@name} is written to as the NUL-prefixed name."""
        _, reactor = started({"NOTIFY_SOCKET": "@notify"})
        reactor.run()
        [(_, address)] = reactor.port.written
        self.assertEqual(address, "\0notify")

    def test_watchdog(self) -> None:
        """C{WATCHDOG=1} goes out at half of C{WATCHDOG_USEC}, from ready on."""
        _, reactor = started(WATCHED)
        reactor.advance(1)
        self.assertEqual(reactor.messages(), [])
        reactor.run()
        reactor.advance(0.19)
        self.assertEqual(len(reactor.messages()), 1)
        reactor.advance(0.01)
        self.assertEqual(reactor.messages()[1:], [b"WATCHDOG=1"])
        reactor.pump([0.2] * 3)
        self.assertEqual(reactor.messages()[1:], [b"WATCHDOG=1"] * 4)

    def test_noWatchdog(self) -> None:
        """Without C{WATCHDOG_USEC} only readiness is sent."""
        _, reactor = started({"NOTIFY_SOCKET": "/run/systemd/notify"})
        reactor.run()
        reactor.advance(100)
        self.assertEqual(len(reactor.messages()), 1)
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_stopping(self) -> None:
        """
        Stopping sends C{STOPPING=1}, ends the watchdog and closes the socket,
        before any listener stops (the notifier is the last child).
        """
        service, reactor = started(WATCHED)
        reactor.run()
        echo = next(iter(service))
        seen: list[bool] = []
        reactor.port.stopListening = lambda: seen.append(echo.running)  # type: ignore[method-assign]
        service.stopService()
        self.assertEqual(reactor.messages()[-1], b"STOPPING=1")
        self.assertEqual(seen, [True])
        self.assertEqual(reactor.getDelayedCalls(), [])
        reactor.advance(10)
        self.assertEqual(reactor.messages()[-1], b"STOPPING=1")

    def test_stoppedBeforeRunning(self) -> None:
        """Stopped before the reactor ran: no C{READY=1} ever, no watchdog."""
        service, reactor = started(WATCHED)
        service.stopService()
        reactor.run()
        reactor.advance(10)
        self.assertEqual(reactor.messages(), [b"STOPPING=1"])

    def test_socketGone(self) -> None:
        """
        A notify socket that cannot be written to is logged once, as a
        warning, and never raises into twistd; the watchdog stops.
        """
        reactor = NotifyReactor(ConnectionRefusedError(111, "Connection refused"))
        with capturedLogs() as events:
            service, _ = started(WATCHED, reactor)
            reactor.run()
            reactor.advance(5)
            service.stopService()
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("/run/systemd/notify", formatEvent(warnings[0]))
        self.assertIn("Connection refused", formatEvent(warnings[0]))
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_cannotOpen(self) -> None:
        """A socket that cannot even be created is logged once, not raised."""

        class NoSockets(NotifyReactor):
            def listenUNIXDatagram(self, *args: object) -> FakeNotifyPort:
                raise OSError(24, "Too many open files")

        with capturedLogs() as events:
            service, reactor = started(WATCHED, NoSockets())
            reactor.run()
            service.stopService()
        self.assertEqual(
            [e["log_level"] for e in events if "notify" in formatEvent(e)],
            [LogLevel.warn],
        )
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_readsEnvironmentAtStart(self) -> None:
        """The environment is read when starting, not when built."""
        environ: dict[str, str] = {}
        reactor = NotifyReactor()
        notifier = SystemdNotifier(reactor, environ)
        environ.update(WATCHED)
        notifier.startService()
        reactor.run()
        self.assertEqual(len(reactor.messages()), 1)

    def test_defaultEnvironment(self) -> None:
        """By default C{os.environ} is read; unset, nothing happens."""
        if "NOTIFY_SOCKET" in os.environ:
            self.skipTest("running under systemd's notify protocol")
        reactor = NotifyReactor()
        SystemdNotifier(reactor).startService()
        self.assertEqual(reactor.unixDatagramServers, [])
