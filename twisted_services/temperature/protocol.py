"""
The temperature service over UDP: L{TemperatureProtocol} answers each
datagram with its conversion by L{twisted_services.temperature.conversion}.

It is a L{GuardedDatagramProtocol}, so it cannot be used as a reflection
amplifier or ping-pong with another converter: every reply fits in
C{MAX_REPLY} bytes, and oversize datagrams, datagrams from reserved or our own
port, datagrams that are themselves error replies, and datagrams over the
per-source rate limit all go unanswered.
"""

from __future__ import annotations

from twisted_services.server.udpguard import GuardedDatagramProtocol
from twisted_services.temperature.conversion import (
    ERROR_PREFIX,
    MAX_REQUEST,
    convertDatagram,
)


class TemperatureProtocol(GuardedDatagramProtocol):
    """
    Answers each temperature request with its conversion, sent back to the
    sender's address, unless its guard or the size and loop rules say the
    datagram must go unanswered.
    """

    maxDatagram = MAX_REQUEST
    # Answering an error reply would let a datagram spoofed from one
    # converter to another trade "ERROR not a number" for ever.
    ignoredPrefixes = (ERROR_PREFIX.encode(),)

    def reply(self, data: bytes) -> bytes:
        """The conversion of C{data}, which never raises."""
        return convertDatagram(data)
