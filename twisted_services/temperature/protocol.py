"""
The temperature service over UDP: L{TemperatureProtocol} answers each
datagram with its conversion by L{twisted_services.temperature.conversion}.

It is a L{GuardedDatagramProtocol}, so it cannot be used as a reflection
amplifier or ping-pong with another converter or a UDP echo: every reply fits
in C{MAX_REPLY} bytes; empty and oversize datagrams, datagrams that are
themselves replies (see L{answerable}), datagrams from reserved or our own
port and datagrams over the per-source rate limit all go unanswered.
"""

from __future__ import annotations

from twisted_services.server.udpguard import GuardedDatagramProtocol, ReflectionGuard
from twisted_services.temperature.conversion import (
    ERROR_PREFIX,
    answerable,
    convertDatagram,
)
from twisted_services.temperature.metrics import TemperatureCounters

_ERROR_BYTES = ERROR_PREFIX.encode()
_ERROR_LENGTH = len(_ERROR_BYTES)


class TemperatureProtocol(GuardedDatagramProtocol):
    """
    Answers each temperature request with its conversion, sent back to the
    sender's address, unless its guard or the size and loop rules say the
    datagram must go unanswered.

    @ivar results: the requests answered with an error, for metrics.
    """

    # A plain function, not a method: one call less per datagram.
    answerable = staticmethod(answerable)

    def __init__(self, guard: ReflectionGuard) -> None:
        super().__init__(guard)
        self.results = TemperatureCounters()

    def reply(self, data: bytes) -> bytes:
        """
        The conversion of C{data}, or an error, which is counted (every
        other reply is a conversion: see
        L{twisted_services.temperature.metrics.TemperatureCollector}).
        """
        answer = convertDatagram(data)
        if answer[:_ERROR_LENGTH] == _ERROR_BYTES:
            self.results.errors += 1
        return answer
