"""
Benchmark baseline: the bare Twisted echo, what C{twistd echo} costs over
the minimum (no flow control, no timeout, no limits, no logging):

    .venv/bin/python bench/baselines/echo_twisted_minimal.py PORT [--interface H]

PORT may be 0. It prints C{minimal listening on tcp:HOST:PORT} once bound
and stops on SIGTERM or SIGINT (the reactor's own handlers).
"""

from __future__ import annotations

import argparse
import resource

from twisted.internet import protocol, reactor


class Echo(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--interface", default="127.0.0.1")
    options = parser.parse_args()
    # As many descriptors as the hard limit allows, for the idle workload.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = reactor.listenTCP(  # type: ignore[attr-defined]
        options.port, protocol.Factory.forProtocol(Echo), interface=options.interface
    )
    bound = port.getHost()
    print(f"minimal listening on tcp:{bound.host}:{bound.port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
