"""
Coverage-guided fuzzing of the chat's line handling: decoding, sanitizing,
parsing and command dispatch, driven through L{ChatProtocol}s on fake
transports as a real client's bytes would reach them.

Each input is split into a script: which of three clients sends, how many
bytes, and how far the clock moves. Every client's output must stay what the
wire protocol promises (UTF-8 lines ending in CRLF, no control characters,
nothing a user sends dressed as a server notice), and every buffer and table
stays bounded.

    python fuzz/fuzz_chat.py -max_total_time=60 fuzz/corpus/fuzz_chat
    python fuzz/run.py --seconds 60 fuzz_chat
"""

from __future__ import annotations

import sys
import unicodedata

import atheris

# Coverage is traced in our own code, the code under test: instrumenting
# every module imported here (Twisted, typing_extensions, ...) took about
# 20 s of CPU at each start, four times the short run make test does.
with atheris.instrument_imports(include=["twisted_services"]):
    from twisted.internet.task import Clock

    from twisted_services.chat.protocol import ChatFactory, ChatProtocol
    from twisted_services.chat.text import decodeLine, parseLine, sanitize
    from twisted_services.testing import connect

CLIENTS = 3
MAX_LINE = 64
# What a client may be sent in one run is bounded by what the others send.
MAX_OUTPUT = 1 << 20
# What must never reach a terminal: controls, format characters, surrogates,
# line and paragraph separators; and the Hangul fillers, which show as nothing.
UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
FILLERS = set("\u115f\u1160\u3164\uffa0")


def checkOutput(data: bytes) -> None:
    """What a client was sent is whole, clean lines."""
    if not data:
        return
    assert data.endswith(b"\r\n"), data[-40:]
    for raw in data.split(b"\r\n")[:-1]:
        line = raw.decode("utf-8")  # strict: the server sends only UTF-8
        # A server notice, an error, or what a user said or did.
        assert line.startswith(("*** ", "! ", "<", "* ", "-> *")) or (
            line[:1] == "*"
            and line[1:2] != ""
            and (line[1].isalnum() or line[1] in "_-")
        ), line
        for character in line:
            assert unicodedata.category(character) not in UNSAFE_CATEGORIES, line
            assert character not in FILLERS, line


def testOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    # The pure pieces, on the whole input.
    text = sanitize(decodeLine(data, "gbk" if data[:1] == b"g" else None))
    assert not any(
        unicodedata.category(character) in UNSAFE_CATEGORIES or character in FILLERS
        for character in text
    ), text
    parseLine(text)

    clock = Clock()
    factory = ChatFactory(
        clock, maxLine=MAX_LINE, rate=50, burst=10, maxBuffer=4096, maxQueue=8192
    )
    connected = [connect(factory) for _ in range(CLIENTS)]
    for protocol, _ in connected:
        assert isinstance(protocol, ChatProtocol)
    for _ in range(64):
        if fdp.remaining_bytes() == 0:
            break
        who = fdp.ConsumeIntInRange(0, CLIENTS - 1)
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
        protocol, transport = connected[who]
        protocol.dataReceived(chunk)
        step = fdp.ConsumeIntInRange(0, 3)
        if step == 1:
            clock.advance(fdp.ConsumeIntInRange(0, 5000) / 1000)
        elif step == 2 and transport.producer is not None:
            # The client stops, or starts again, reading.
            if transport.producer.paused:
                transport.producer.resumeProducing()
            else:
                transport.producer.pauseProducing()
        for protocol, transport in connected:
            # Bounded: the line buffer holds less than a line and a read.
            assert len(protocol._buffer) <= MAX_LINE + 1 + 200, len(protocol._buffer)
            assert len(transport.value()) <= MAX_OUTPUT
    clock.advance(60)
    for _, transport in connected:
        checkOutput(transport.value())
        transport.loseConnection()
    clock.advance(60)
    assert len(factory.connections) == 0
    assert factory.admission._open == {}
    assert not clock.getDelayedCalls(), clock.getDelayedCalls()


def main() -> None:
    atheris.Setup(sys.argv, testOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
