"""
Benchmark ceiling: fixed response bytes for every request, no HTTP parsing,
so that C{bench/http_bench.py} can show how far one C{wrk} thread drives a
server that does almost nothing:

    .venv/bin/python bench/baselines/static_hello.py [--port 0] [--no-uvloop]

Not an HTTP server: it counts blank-line head terminators and writes one
precomputed C{200 Hello World} per terminator, which is only right for
bodiless GETs such as C{wrk}'s. Runs on uvloop when it is installed. It
prints C{static listening on tcp:HOST:PORT} once bound, and stops on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 11\r\n"
    b"\r\n"
    b"Hello World"
)
END = b"\r\n\r\n"


class Static(asyncio.Protocol):
    """One precomputed response per request head seen."""

    def __init__(self) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self.transport: asyncio.WriteTransport | None = None
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        data = self.tail + data
        count = data.count(END)
        # Keep enough to find a terminator split across reads.
        self.tail = data[-3:] if not data.endswith(END) else b""
        if count and self.transport is not None:
            self.transport.write(RESPONSE * count)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Static, host, port)
    bound = server.sockets[0].getsockname()
    print(f"static listening on tcp:{bound[0]}:{bound[1]}", flush=True)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with server:
        await stopping.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--no-uvloop", action="store_true", help="plain asyncio")
    options = parser.parse_args(argv)
    try:
        if options.no_uvloop:
            raise ImportError
        import uvloop
    except ImportError:
        asyncio.run(serve(options.interface, options.port))
    else:
        uvloop.run(serve(options.interface, options.port))


if __name__ == "__main__":
    main()
