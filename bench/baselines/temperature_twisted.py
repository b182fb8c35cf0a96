"""
Baseline for C{bench/temperature_bench.py}: the bare Twisted converter, what
C{twistd temperature} costs over the minimum. A plain Twisted
C{DatagramProtocol} on the same reactor answers each datagram with the same
L{twisted_services.temperature.conversion.convertDatagram}, with no
reflection guard, no rate limit and no size or loop checks.

    python bench/baselines/temperature_twisted.py [--port 0] [--interface 127.0.0.1]

Prints C{temperature listening on udp:HOST:PORT} once bound, as twistd does,
and stops on SIGTERM or SIGINT (the reactor's own handlers).
"""

from __future__ import annotations

import argparse

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

from twisted_services.temperature.conversion import convertDatagram


class Converter(DatagramProtocol):
    """Answers every datagram with its conversion."""

    noisy = False

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.write(convertDatagram(data), addr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interface", default="127.0.0.1")
    options = parser.parse_args()
    port = reactor.listenUDP(  # type: ignore[attr-defined]
        options.port, Converter(), interface=options.interface
    )
    bound = port.getHost()
    print(f"temperature listening on udp:{bound.host}:{bound.port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
