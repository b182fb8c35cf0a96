"""
Graceful stop for the stream services: a L{ShutdownService} that, when the
application stops, asks a factory to finish its connections and waits.
"""

from __future__ import annotations

from typing import Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred


class Drainable(Protocol):
    """
    A factory that can finish its connections: L{shutdown} sets
    C{shuttingDown}, and fires its L{Deferred} once every connection is gone.
    """

    shuttingDown: bool

    def shutdown(self) -> Deferred[None]: ...


class ShutdownService(Service):
    """
    Runs its factory's C{shutdown} when stopped, so SIGTERM lets every
    connection finish (or be told) before the reactor drops it.

    Add it to the L{MultiService} before the listeners: a C{MultiService}
    stops its children in reverse order, so the listeners stop first and no
    one connects during the drain.
    """

    def __init__(self, factory: Drainable) -> None:
        self.factory = factory

    def startService(self) -> None:
        super().startService()
        self.factory.shuttingDown = False

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self.factory.shutdown()
