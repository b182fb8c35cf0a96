"""
Coverage-guided fuzzing of the http service's handling around its parser:
L{HTTPProtocol}'s callbacks, limits, timers, pipelining, backpressure and
closing, driven through a fake transport as a client's bytes would reach it.

C{httptools} is C and gives the fuzzer no coverage of its own, so the input
does not go to it whole: its first bytes pick the limits and whether the
stream is raw (the input's bytes as they are, for the parser's error paths)
or built (a pipeline of requests assembled from fragments the input picks,
with the input's bytes mutating them, for the paths a request only reaches
once its head parses). The stream is then fed in pieces split where the
input says, with the clock moving and the client pausing and resuming
between them.

A run fails on an exception out of the protocol or a callback bug it logged
(a crash), an input that takes longer than libFuzzer's C{-timeout} (a hang),
a buffer or a count past its bound, output that is not responses, data
answered after the close, or a connection left open, timed or registered
once every deadline has passed.

    python fuzz/fuzz_http.py -max_total_time=60 fuzz/corpus/fuzz_http
    python fuzz/run.py --seconds 60 fuzz_http
"""

from __future__ import annotations

import sys

import atheris

# Coverage is traced in our own code, the code under test: instrumenting
# every module imported here (Twisted, typing_extensions, ...) took about
# 20 s of CPU at each start, four times the short run make test does.
with atheris.instrument_imports(include=["twisted_services"]):
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransportWithDisconnection
    from twisted.logger import LogEvent, globalLogPublisher

    from twisted_services.http.protocol import CLOSE_GRACE, HTTPFactory, HTTPProtocol
    from twisted_services.testing import peerAddress

# Small limits, so that short inputs reach them.
MAX_BODY = 256
MAX_HEADER_SIZE = 512
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
IDLE_TIMEOUT = 5.0
MAX_READ = 300
MAX_READS = 200
# A response is at most this many times the request bytes that caused it,
# plus one fixed-size error response (the /request echo is the largest).
OUTPUT_RATIO = 40
OUTPUT_SLACK = 4096

METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"CONNECT", b"OPTIONS", b"G\x00T"]
TARGETS = [b"/", b"/health", b"/request", b"/x", b"http://h/request?q", b"*", b"/?a"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b""]
HEADERS = [
    b"Host: example.com",
    b"Host: [::1]:80",
    b"Host: a b",
    b"Host:",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Connection: upgrade\r\nUpgrade: websocket",
    b"Content-Length: 5",
    b"Content-Length: 300",
    b"Content-Length: -1",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip, chunked",
    b"Expect: 100-continue",
    b'User-Agent: \xff"\\',
    b"Referer: http://r/",
    b" folded",
    b"X: y",
]
BODIES = [
    b"hello",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"1;ext=" + b"e" * 40 + b"\r\nx\r\n0\r\n\r\n",
    b"00000000001\r\nx\r\n0\r\nTrailer: t\r\nHost: h\r\n\r\n",
    # Past MAX_HEADER_SIZE as one chunk size line, and as chunk framing.
    b"1;" + b"e" * 900 + b"\r\nx\r\n0\r\n\r\n",
    b"0" * 900 + b"1\r\nx\r\n0\r\n\r\n",
    (b"1;e\r\nx\r\n") * 40,
    b"ffffffffffffffffff\r\n",
    b"\r\n",
]


class FuzzTransport(StringTransportWithDisconnection):
    """A loopback-like transport that can half-close when asked to."""

    writeClosed = False

    def loseWriteConnection(self) -> None:
        self.writeClosed = True


class PlainTransport(StringTransportWithDisconnection):
    """A transport that cannot half-close, as TLS cannot here."""


class CallbackBug(Exception):
    """The protocol logged a failure: one of its callbacks raised."""


def failures(event: LogEvent) -> None:
    if "log_failure" in event:
        raise CallbackBug(event["log_failure"].getTraceback())


def builtStream(fdp: atheris.FuzzedDataProvider) -> bytes:
    """A pipeline of requests from fragments, mutated by the input's bytes."""
    parts = []
    for _ in range(fdp.ConsumeIntInRange(1, 8)):
        line = fdp.PickValueInList(METHODS) + b" " + fdp.PickValueInList(TARGETS)
        version = fdp.PickValueInList(VERSIONS)
        if version:
            line += b" " + version
        headers = [
            fdp.PickValueInList(HEADERS) for _ in range(fdp.ConsumeIntInRange(0, 5))
        ]
        head = b"\r\n".join([line, *headers]) + b"\r\n\r\n"
        if fdp.ConsumeBool():
            head += fdp.PickValueInList(BODIES)
        if fdp.ConsumeIntInRange(0, 3) == 0:
            # A mutation: some of the input's own bytes spliced in.
            at = fdp.ConsumeIntInRange(0, len(head))
            head = (
                head[:at] + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16)) + head[at:]
            )
        parts.append(head)
    return b"".join(parts)


def checkBounded(protocol: HTTPProtocol) -> None:
    """Nothing the protocol holds between reads grows past its limit."""
    assert not protocol._out, protocol._out
    request = protocol._request
    if request is None or protocol._closing:
        # A request refused for a limit may be past it; nothing more is fed.
        return
    assert len(request.url) <= MAX_HEADER_SIZE, len(request.url)
    assert sum(map(len, request.headerLines)) <= MAX_HEADER_SIZE
    assert request.headSize <= MAX_HEADER_SIZE
    assert request.bodySize <= MAX_BODY, request.bodySize
    assert request.bodyFed <= 2 * MAX_BODY + 65536 + MAX_READ
    assert request.chunkHeaderFed <= MAX_HEADER_SIZE + MAX_READ


class CountingSink:
    """An access log that checks each line is one whole line, and counts them."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, line: bytes) -> None:
        assert line.endswith(b"\n") and line.count(b"\n") == 1, line
        self.lines += 1


def testOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    clock = Clock()
    factory = HTTPFactory(
        clock,
        maxBody=MAX_BODY,
        maxHeaderSize=MAX_HEADER_SIZE,
        headerTimeout=HEADER_TIMEOUT,
        bodyTimeout=BODY_TIMEOUT,
        idleTimeout=IDLE_TIMEOUT,
        accessLog=CountingSink() if fdp.ConsumeBool() else None,
    )
    transport = (FuzzTransport if fdp.ConsumeBool() else PlainTransport)(
        peerAddress=peerAddress()
    )
    protocol = factory.buildProtocol(peerAddress())
    assert isinstance(protocol, HTTPProtocol)
    transport.protocol = protocol
    protocol.makeConnection(transport)

    stream = builtStream(fdp) if fdp.ConsumeBool() else b""
    stream += fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
    fed = 0
    for _ in range(MAX_READS):
        if fed >= len(stream):
            break
        piece = stream[fed : fed + fdp.ConsumeIntInRange(1, MAX_READ)]
        fed += len(piece)
        closingBefore = protocol._closing
        before = len(transport.value())
        protocol.dataReceived(piece)
        if closingBefore:
            assert len(transport.value()) == before, "answered after the close"
        checkBounded(protocol)
        assert len(transport.value()) <= OUTPUT_RATIO * fed + OUTPUT_SLACK
        step = fdp.ConsumeIntInRange(0, 3)
        if step == 1:
            clock.advance(fdp.ConsumeIntInRange(0, 4000) / 1000)
        elif step == 2 and transport.producer is not None:
            # The client stops, or starts again, reading its responses.
            if transport.producer is protocol and protocol._paused:
                protocol.resumeProducing()
            else:
                protocol.pauseProducing()
        elif step == 3 and fdp.ConsumeIntInRange(0, 7) == 0:
            factory.connections.drain()
    output = transport.value()
    assert not output or output.startswith(b"HTTP/1.1 "), output[:40]

    # Every deadline passes: the connection must end, leaving nothing behind.
    for _ in range(4):
        clock.advance(max(IDLE_TIMEOUT, BODY_TIMEOUT, HEADER_TIMEOUT) + CLOSE_GRACE)
    assert not transport.connected, "still open after every deadline"
    assert len(factory.connections) == 0
    assert not clock.getDelayedCalls(), clock.getDelayedCalls()


def main() -> None:
    globalLogPublisher.addObserver(failures)
    atheris.Setup(sys.argv, testOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
