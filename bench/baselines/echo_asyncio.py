"""
Benchmark baseline: an asyncio C{Protocol} echo server, on uvloop with
C{--uvloop}:

    .venv/bin/python bench/baselines/echo_asyncio.py PORT [--uvloop] [--interface H]

PORT may be 0. It prints C{asyncio listening on tcp:HOST:PORT} (or
C{uvloop ...}) once bound, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal


class Echo(asyncio.Protocol):
    """Writes back what it reads; no flow control, like the minimal Twisted one."""

    def __init__(self) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)


async def serve(name: str, host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, host, port)
    bound = server.sockets[0].getsockname()
    print(f"{name} listening on tcp:{bound[0]}:{bound[1]}", flush=True)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with server:
        await stopping.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    options = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if options.uvloop:
        import uvloop

        uvloop.run(serve("uvloop", options.interface, options.port))
    else:
        asyncio.run(serve("asyncio", options.interface, options.port))


if __name__ == "__main__":
    main()
