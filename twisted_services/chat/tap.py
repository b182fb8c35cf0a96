"""
C{twistd chat}: options and service for L{twisted_services.chat.protocol}.
"""

from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTCP
from twisted.python.usage import UsageError

from twisted_services.chat.protocol import ChatFactory
from twisted_services.chat.text import isTextEncoding
from twisted_services.server.connections import ShutdownService
from twisted_services.server.listeners import serviceWith, streamListeners
from twisted_services.server.options import (
    ListenOptions,
    idleTimeoutParameter,
    maxConnectionsParameter,
    nonNegativeInt,
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
        "text, /help lists the commands. Default: TCP port 12345 on :: (IPv6 "
        "and IPv4)."
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
            "Disconnect a client that is not reading once more than this many "
            "bytes of output have waited for it for --send-timeout seconds.",
            positiveInt,
        ],
        [
            "send-timeout",
            None,
            10.0,
            "Seconds a client may leave more than --max-buffer bytes unread "
            "before it is disconnected.",
            positiveFloat,
        ],
        [
            "max-queue",
            None,
            16 * 1024 * 1024,
            "Disconnect a client at once when this many bytes of output wait "
            "for it, whatever --send-timeout says.",
            positiveInt,
        ],
        [
            "max-per-address",
            None,
            20,
            "Connections one IP address may hold at once (0: no limit); more "
            "are told so and closed.",
            nonNegativeInt,
        ],
        [
            "connect-rate",
            None,
            2.0,
            "New connections per second one IP address may open on average.",
            positiveFloat,
        ],
        [
            "connect-burst",
            None,
            20,
            "New connections one IP address may open at once before "
            "--connect-rate applies.",
            positiveInt,
        ],
        [
            "notice-rate",
            None,
            1.0,
            "Arrival and departure notices per second a room is sent on "
            "average; past it they are summed up in one line every 10 seconds.",
            positiveFloat,
        ],
        [
            "notice-burst",
            None,
            10,
            "Arrival and departure notices a room is sent at once before "
            "--notice-rate applies.",
            positiveInt,
        ],
        idleTimeoutParameter(3600.0),
        maxConnectionsParameter("more are told the server is full and closed"),
    ]

    def postOptions(self) -> None:
        super().postOptions()
        if self["max-queue"] < self["max-buffer"]:
            raise UsageError("--max-queue must be at least --max-buffer")


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
        sendTimeout=options["send-timeout"],
        maxQueue=options["max-queue"],
        maxPerAddress=options["max-per-address"],
        connectRate=options["connect-rate"],
        connectBurst=options["connect-burst"],
        noticeRate=options["notice-rate"],
        noticeBurst=options["notice-burst"],
        idleTimeout=options["idle-timeout"],
        maxConnections=options["max-connections"],
    )
    listeners = streamListeners(
        "chat", options["listen"], factory, reactor, options["backlog"]
    )
    # First, so that MultiService, which stops its children last to first,
    # says goodbye once no listener can accept anyone new.
    return serviceWith(
        [ShutdownService(factory.connections), *listeners],
        notify=notify,
        connections=options["max-connections"],
    )
