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

from twisted_services.server.udpguard import GuardedDatagramProtocol
from twisted_services.temperature.conversion import answerable, convertDatagram


class TemperatureProtocol(GuardedDatagramProtocol):
    """
    Answers each temperature request with its conversion, sent back to the
    sender's address, unless its guard or the size and loop rules say the
    datagram must go unanswered.
    """

    # Plain functions, not methods: one call less per datagram.
    answerable = staticmethod(answerable)
    reply = staticmethod(convertDatagram)
