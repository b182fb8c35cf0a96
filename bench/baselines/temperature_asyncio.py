"""
Baseline for C{bench/temperature_bench.py}: the same conversion as
C{twistd temperature} (L{twisted_services.temperature.conversion.convertDatagram}, so
only the I/O stack differs) served by a plain asyncio C{DatagramProtocol},
with no reflection guard or rate limit.

    python bench/baselines/temperature_asyncio.py [--port 0] [--interface 127.0.0.1]
        [--uvloop] [--no-convert]

With C{--no-convert} every datagram gets the same fixed reply: on uvloop
that is the ceiling that shows how far the load generator can go. Prints
C{temperature listening on udp:HOST:PORT} once bound, as twistd does.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import cast

from twisted_services.temperature.conversion import MAX_REQUEST, convertDatagram

FIXED = b"100 C = 212 F\n"


class Converter(asyncio.DatagramProtocol):
    """Answers each datagram with its conversion (or a fixed reply)."""

    def __init__(self, convert: bool) -> None:
        self.convert = convert
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if len(data) > MAX_REQUEST:
            return
        self.transport.sendto(convertDatagram(data) if self.convert else FIXED, addr)


async def serve(options: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set_result, None)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Converter(not options.no_convert),
        local_addr=(options.interface, options.port),
    )
    host, port = transport.get_extra_info("sockname")[:2]
    print(f"temperature listening on udp:{host}:{port}", flush=True)
    try:
        await stopped
    finally:
        transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--no-convert", action="store_true")
    options = parser.parse_args()
    if options.uvloop:
        import uvloop  # type: ignore[import-not-found]

        uvloop.run(serve(options))
    else:
        asyncio.run(serve(options))


if __name__ == "__main__":
    main()
