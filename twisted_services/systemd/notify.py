"""
systemd's readiness protocol (C{Type=notify}), spoken over Twisted's unix
datagram support, with no dependency on libsystemd.

systemd names a unix datagram socket in C{NOTIFY_SOCKET} (a path, or an
abstract name written with a leading C{@}); a service sends it lines such as
C{READY=1}, C{STATUS=...}, C{WATCHDOG=1} and C{STOPPING=1}. With
C{WatchdogSec=} systemd also sets C{WATCHDOG_USEC}, and restarts a service
that does not send C{WATCHDOG=1} within that many microseconds.

L{twisted_services.server.listeners.serviceWith} makes a L{SystemdNotifier}
the last child of every plugin's service, so that it starts after every
listener and stops before them, and tells it how to describe them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger


def notifyAddress(value: str) -> str:
    """
    The socket address for a C{NOTIFY_SOCKET} value: a path as it is, an
    abstract name (C{@name}) with the C{@} turned into the NUL byte Linux
    expects.
    """
    if value.startswith("@"):
        return "\0" + value[1:]
    return value


def watchdogInterval(environ: Mapping[str, str], pid: int) -> float | None:
    """
    How often, in seconds, to send C{WATCHDOG=1}: half of C{WATCHDOG_USEC},
    as systemd recommends; L{None} when the watchdog is off, malformed, or
    (C{WATCHDOG_PID}) meant for another process.
    """
    watchdogPID = environ.get("WATCHDOG_PID")
    if watchdogPID and watchdogPID.strip() != str(pid):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000


class _SendOnly(DatagramProtocol):
    """The notify socket is written to, never read from."""

    noisy = False


class SystemdNotifier(Service):
    """
    Tells systemd on C{NOTIFY_SOCKET} that the service is ready (with a
    one-line C{STATUS=} naming every listener), keeps its watchdog fed while
    the reactor runs, and says when it is stopping; does nothing at all when
    C{NOTIFY_SOCKET} is unset.

    It must be the last child of the top-level service: then every listener
    bound before it starts, and it stops (saying C{STOPPING=1}) before them.

    A notify socket that cannot be written to (systemd gone, or a
    misconfigured unit) is logged once and otherwise ignored: readiness
    reporting never stops the service itself.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any = None,
        environ: Mapping[str, str] | None = None,
        describe: Callable[[IService], str] | None = None,
    ) -> None:
        """
        @param reactor: provides C{listenUNIXDatagram}, C{callWhenRunning}
            and the clock for the watchdog; the global reactor by default,
            imported only if C{NOTIFY_SOCKET} is set.
        @param environ: where to read C{NOTIFY_SOCKET}, C{WATCHDOG_USEC} and
            C{WATCHDOG_PID}, at start; C{os.environ} by default.
        @param describe: says, given this notifier, what the process serves,
            for C{STATUS=}; without it the status is C{running}.
        """
        self._describe = describe
        self._reactor = reactor
        self._environ = environ
        self._address: str | None = None
        self._port: IListeningPort | None = None
        self._watchdog: LoopingCall | None = None
        self._failed = False
        # The summary sent with READY=1, kept for tests and introspection.
        self.status: str | None = None

    def startService(self) -> None:
        super().startService()
        environ = os.environ if self._environ is None else self._environ
        value = environ.get("NOTIFY_SOCKET")
        if not value:
            return
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        self._failed = False
        self._address = notifyAddress(value)
        try:
            # Unbound and unconnected: each message is a sendto, as
            # sd_notify does, so nothing depends on the socket's lifetime.
            self._port = reactor.listenUNIXDatagram(None, _SendOnly())
        except Exception as error:
            self._giveUp(error)
            return
        interval = watchdogInterval(environ, os.getpid())
        if interval is not None:
            self._watchdog = LoopingCall(self._send, "WATCHDOG=1")
            self._watchdog.clock = reactor
        # startService runs before twistd starts the reactor: ready means
        # the reactor is running too, not only that the ports are bound.
        reactor.callWhenRunning(self._ready, interval)

    def stopService(self) -> None:
        super().stopService()
        if self._watchdog is not None:
            if self._watchdog.running:
                self._watchdog.stop()
            self._watchdog = None
        if self._port is not None:
            self._send("STOPPING=1")
            port, self._port = self._port, None
            port.stopListening()

    def _ready(self, interval: float | None) -> None:
        """Say READY=1 with the status, and start feeding the watchdog."""
        if not self.running or self._port is None:
            return
        self.status = "running" if self._describe is None else self._describe(self)
        self._send(f"READY=1\nSTATUS={self.status}")
        if self._watchdog is not None and interval is not None:
            self._watchdog.start(interval, now=False)

    def _send(self, message: str) -> None:
        """Write one notification; on failure log once and fall silent."""
        if self._port is None or self._address is None or self._failed:
            return
        try:
            self._port.write(message.encode("utf-8"), self._address)
        except Exception as error:
            self._giveUp(error)

    def _giveUp(self, error: Exception) -> None:
        """Log that systemd cannot be told anything, once, and stop trying."""
        self._failed = True
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        self._log.warn(
            "systemd notify: cannot write to NOTIFY_SOCKET {address}: {error}; "
            "no further readiness or watchdog notifications",
            address=(self._address or "").replace("\0", "@"),
            error=error,
        )
