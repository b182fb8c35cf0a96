"""
Benchmark baseline: aiohttp serving the http service's hello-world body,
run by hand or by C{bench/http_bench.py}:

    .venv/bin/python bench/baselines/aiohttp_hello.py [--port 0] [--uvloop]

C{GET /} answers C{Hello World} as C{text/plain; charset=utf-8}, with no
access log. The event loop is plain asyncio unless C{--uvloop} is given. It
prints C{aiohttp listening on tcp:HOST:PORT} once bound, and stops on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

BODY = "Hello World"


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=BODY)


async def serve(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    print(f"aiohttp listening on tcp:{bound[0]}:{bound[1]}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument(
        "--uvloop", action="store_true", help="run on uvloop instead of asyncio"
    )
    options = parser.parse_args(argv)
    if options.uvloop:
        import uvloop

        uvloop.run(serve(options.interface, options.port))
    else:
        asyncio.run(serve(options.interface, options.port))


if __name__ == "__main__":
    main()
