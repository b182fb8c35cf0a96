"""
Driving a C{twistd} plugin's tap module (its C{Options} and C{makeService})
in memory, as C{twistd} would: parse a command line, build the service on a
fake reactor, start it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from twisted.application.service import IServiceMaker, MultiService
from twisted.internet.error import CannotListenError
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.testing import UDPMemoryReactor

OptionsT = TypeVar("OptionsT", bound=usage.Options)


def parseOptions(options: OptionsT, *arguments: str) -> OptionsT:
    """C{options}, having parsed the command line C{arguments}."""
    options.parseOptions(list(arguments))
    return options


def pluginMaker(tapname: str) -> IServiceMaker:
    """The one dropin service maker C{twistd TAPNAME} would use."""
    [maker] = [m for m in getPlugins(IServiceMaker) if m.tapname == tapname]
    return maker


class PortsInUseReactor(UDPMemoryReactor):
    """A fake reactor on which every TCP and UDP port is already in use."""

    def listenTCP(self, port, factory, backlog=50, interface=""):  # type: ignore[no-untyped-def]
        raise CannotListenError(interface, port, OSError(98, "Address already in use"))

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):  # type: ignore[no-untyped-def]
        raise CannotListenError(interface, port, OSError(98, "Address already in use"))


@dataclass(frozen=True)
class Tap:
    """
    One tap module, C{module}, whose services are started by default on a
    L{UDPMemoryReactor}: it fakes TCP, UNIX, TLS and UDP listening (and
    datagram socket adoption), so any of our services starts on it.
    """

    module: ModuleType

    def parse(self, *arguments: str) -> Any:
        """The module's C{Options} parsed from C{arguments}."""
        return parseOptions(self.module.Options(), *arguments)

    def started(
        self, *arguments: str, reactor: UDPMemoryReactor | None = None
    ) -> tuple[MultiService, Any]:
        """
        The service C{makeService} builds for C{arguments}, started as
        C{twistd} starts it (privileged part first), on C{reactor} or a new
        fake one; and that reactor.
        """
        if reactor is None:
            reactor = UDPMemoryReactor()
        service = self.module.makeService(self.parse(*arguments), reactor)
        service.privilegedStartService()
        service.startService()
        return service, reactor

    def failedStart(self, testCase: SynchronousTestCase, *arguments: str) -> str:
        """
        Start the service for C{arguments} where every port is in use: it
        must exit with status 1 after exactly one critical log line, which
        is returned.
        """
        service = self.module.makeService(self.parse(*arguments), PortsInUseReactor())
        with capturedLogs() as events:
            exit = testCase.assertRaises(SystemExit, service.privilegedStartService)
        testCase.assertEqual(exit.code, 1)
        [event] = events
        testCase.assertEqual(event["log_level"], LogLevel.critical)
        return formatEvent(event)
