"""
Benchmark baseline: C{twisted.web.server.Site} serving the http service's
hello-world body, run by hand or by C{bench/http_bench.py}:

    .venv/bin/python bench/baselines/twisted_web_hello.py [--port 0]

One leaf resource answers every request with C{Hello World} as
C{text/plain; charset=utf-8}. Like C{twistd http --no-access-log}, it writes
no access log (Site otherwise formats a log line per request). It prints
C{twisted.web listening on tcp:HOST:PORT} once bound, and stops on SIGTERM
or SIGINT.
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

BODY = b"Hello World"


class Hello(Resource):
    """The same body for every path and method, like a one-route app."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return BODY


class QuietSite(Site):
    """A L{Site} without the per-request access log line."""

    def log(self, request: Request) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interface", default="127.0.0.1")
    options = parser.parse_args(argv)
    port = reactor.listenTCP(  # type: ignore[attr-defined]
        options.port, QuietSite(Hello()), interface=options.interface
    )
    address = port.getHost()
    print(f"twisted.web listening on tcp:{address.host}:{address.port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]
    sys.exit(0)


if __name__ == "__main__":
    main()
