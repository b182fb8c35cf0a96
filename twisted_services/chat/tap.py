"""
C{twistd chat}: options and service for L{twisted_services.chat.protocol}.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTCP

from twisted_services.chat.protocol import ChatFactory
from twisted_services.chat.text import isTextEncoding
from twisted_services.server.connections import ShutdownService
from twisted_services.server.listeners import serviceWith, streamListeners
from twisted_services.server.options import (
    ListenOptions,
    idleTimeoutParameter,
    maxConnectionsParameter,
    positiveFloat,
    positiveInt,
)


def textEncoding(value: str) -> str:
    """Coerce an option to the name of a codec that decodes bytes to text."""
    if not isTextEncoding(value):
        raise ValueError(f"{value} is not a text encoding Python knows")
    return value


textEncoding.coerceDoc = "A Python text encoding name."  # type: ignore[attr-defined]


class Options(ListenOptions):
    """Options for C{twistd chat}."""

    synopsis = "[--port N | --listen DESCRIPTION ...] [options]"
    longdesc = (
        "Multi-user chat server with rooms, for nc or telnet: lines of UTF-8 "
        "text, /help lists the commands. Default: TCP port 12345 on all IPv4 "
        "interfaces."
    )
    defaultPort = 12345

    optParameters = [
        [
            "max-line",
            None,
            4096,
            "Longest line a client may send, in bytes without the line ending; "
            "a longer line is discarded with a notice.",
            positiveInt,
        ],
        [
            "fallback-encoding",
            None,
            None,
            "Decode lines that are not valid UTF-8 with this encoding (e.g. gbk, "
            "as old Windows telnet clients in Chinese locales send); without it "
            "invalid bytes become U+FFFD",
            textEncoding,
        ],
        [
            "rate",
            None,
            5.0,
            "Lines per second one client may send on average, commands "
            "included; excess lines are dropped with a notice.",
            positiveFloat,
        ],
        [
            "burst",
            None,
            20,
            "Lines one client may send at once before --rate applies.",
            positiveInt,
        ],
        [
            "max-buffer",
            None,
            1024 * 1024,
            "Disconnect a client that is not reading once this many bytes of "
            "output wait for it.",
            positiveInt,
        ],
        idleTimeoutParameter(3600.0),
        maxConnectionsParameter("more are told the server is full and closed"),
    ]


def makeService(
    options: Options, reactor: IReactorTCP | None = None, notify: bool = True
) -> MultiService:
    """
    The chat service on every listener C{options} names. Stopping it stops
    the listeners, then tells every client the server is shutting down.
    """
    if reactor is None:
        from twisted.internet import reactor
    factory = ChatFactory(
        reactor,
        maxLine=options["max-line"],
        fallbackEncoding=options["fallback-encoding"],
        rate=options["rate"],
        burst=options["burst"],
        maxBuffer=options["max-buffer"],
        idleTimeout=options["idle-timeout"],
        maxConnections=options["max-connections"],
    )
    listeners = streamListeners("chat", options["listen"], factory, reactor)
    # First, so that MultiService, which stops its children last to first,
    # says goodbye once no listener can accept anyone new.
    return serviceWith(
        [ShutdownService(factory.connections), *listeners], notify=notify
    )
