"""
C{twistd chat}: options and service for L{twisted_services.chat.protocol}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTCP
from twisted.python.usage import UsageError

from twisted_services.chat.metrics import ChatCollector
from twisted_services.chat.protocol import ChatFactory
from twisted_services.chat.redisurl import (
    PASSWORD_VARIABLE,
    RedisAddress,
    RedisURLError,
    parseRedisURL,
    readPassword,
)
from twisted_services.chat.text import isTextEncoding
from twisted_services.chat.web.origin import originOption
from twisted_services.server.connections import ShutdownService
from twisted_services.server.listeners import serviceWith, streamListeners
from twisted_services.server.metrics.plugin import metricsServices
from twisted_services.server.options import (
    ListenOptions,
    idleTimeoutParameter,
    maxConnectionsParameter,
    nonNegativeInt,
    positiveFloat,
    positiveInt,
)
from twisted_services.server.workers.options import WorkerOptions, supervising

if TYPE_CHECKING:
    from twisted_services.chat.redisbroker import RedisBroker


def textEncoding(value: str) -> str:
    """Coerce an option to the name of a codec that decodes bytes to text."""
    if not isTextEncoding(value):
        raise ValueError(f"{value} is not a text encoding Python knows")
    return value


textEncoding.coerceDoc = "A Python text encoding name."  # type: ignore[attr-defined]


class Options(WorkerOptions, ListenOptions):
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
        [
            "redis",
            None,
            None,
            "Share the chat with every server using this Redis: "
            "redis://HOST[:PORT][/DB], rediss://... (TLS) or unix:/PATH[?db=N]. "
            "Without it the chat is this process's alone.",
        ],
        [
            "redis-password-file",
            None,
            None,
            "Read the Redis password from the first line of this file (else "
            f"from ${PASSWORD_VARIABLE}, if set).",
        ],
        [
            "redis-presence-ttl",
            None,
            15.0,
            "Seconds a server's nicks and members outlive its last heartbeat "
            "to Redis (sent every third of this): the nicks of a server that "
            "dies are free again within this.",
            positiveFloat,
        ],
        [
            "redis-timeout",
            None,
            5.0,
            "Seconds an answer from Redis is waited for before the link is "
            "dropped and made again.",
            positiveFloat,
        ],
        [
            "redis-max-pending",
            None,
            4 * 1024 * 1024,
            "Bytes of published lines that may await Redis's answer; more "
            "reach this server only, and are counted as dropped.",
            positiveInt,
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["web"] = []
        self["web-origin"] = []

    def opt_web(self, description: str) -> None:
        self["web"].append(description)

    # One line: usage.Options prints an opt_ docstring's line breaks verbatim.
    opt_web.__doc__ = (
        "Also serve the chat page and its WebSocket (browser users join the "
        "same rooms) on this server endpoint description, e.g. tcp:8081 or "
        "ssl:8443:privateKey=key.pem:certKey=cert.pem for https; repeatable. "
        "Off by default."
    )

    def opt_web_origin(self, origin: str) -> None:
        try:
            self["web-origin"].append(originOption(origin))
        except ValueError as error:
            raise UsageError(f"--web-origin: {error}") from None

    opt_web_origin.__doc__ = (
        "Also accept the chat's WebSocket from pages of this origin, e.g. "
        "https://chat.example.com behind a reverse proxy (the page's own "
        "origin is always accepted, others never); repeatable."
    )

    def workersRefusal(self) -> str | None:
        """
        Without C{--redis}, chat's rooms live in one process's memory, and
        workers would each hold rooms of their own. With it, every worker is
        one more server sharing the chat through Redis.
        """
        if self["redis"] is not None:
            return None
        return (
            "chat keeps its rooms in one process's memory, so it runs in one "
            "process (--workers 1) unless they are shared through --redis"
        )

    def postOptions(self) -> None:
        super().postOptions()
        if self["web-origin"] and not self["web"]:
            raise UsageError("--web-origin needs --web")
        if self["max-queue"] < self["max-buffer"]:
            raise UsageError("--max-queue must be at least --max-buffer")
        self["redis-address"] = None
        self["redis-password"] = None
        if self["redis"] is None:
            if self["redis-password-file"] is not None:
                raise UsageError("--redis-password-file needs --redis")
            return
        try:
            self["redis-address"] = parseRedisURL(self["redis"])
            self["redis-password"] = readPassword(self["redis-password-file"])
        except RedisURLError as error:
            raise UsageError(f"--redis: {error}") from None


def makeService(
    options: Options, reactor: IReactorTCP | None = None, notify: bool = True
) -> MultiService:
    """
    The chat service on every listener C{options} names. Stopping it stops
    the listeners, then tells every client the server is shutting down.
    """
    if reactor is None:
        from twisted.internet import reactor
    if supervising(options):
        # Imported only for workers: it costs any other start ~50 ms.
        from twisted_services.server.workers.supervisor import supervisorService

        return supervisorService(options, reactor)
    broker = None if options["redis-address"] is None else redisBroker(options, reactor)
    factory = ChatFactory(
        reactor,
        broker=broker,
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
    if options["web"]:
        # Imported only for --web: twisted.web and wsproto cost any other
        # start ~60 ms.
        from twisted_services.chat.web.site import webChatFactory

        site = webChatFactory(
            factory,
            frozenset(options["web-origin"]),
            reactor,
            options["max-connections"],
        )
        listeners += streamListeners(
            "webchat", options["web"], site, reactor, options["backlog"]
        )
    # First, so that MultiService, which stops its children last to first,
    # says goodbye once no listener can accept anyone new.
    # The broker starts first, connecting to Redis, and, stopping with the
    # rest, gives up this server's part of the chat.
    shared = [] if broker is None else [broker]
    metrics = metricsServices(
        ChatCollector(factory.counters, factory.connections, factory.state, broker),
        options["metrics"],
        reactor,
    )
    return serviceWith(
        [*shared, ShutdownService(factory.connections), *listeners, *metrics],
        notify=notify,
        connections=options["max-connections"],
    )


def redisBroker(options: Options, reactor: IReactorTCP) -> RedisBroker:
    """The broker sharing the chat through the Redis that C{options} names."""
    # Imported here: txredisapi installs the default reactor when imported,
    # and a chat without --redis does not need it.
    from twisted_services.chat.redisbroker import RedisBroker
    from twisted_services.chat.redislink import RedisLink

    address: RedisAddress = options["redis-address"]
    timeout = options["redis-timeout"]
    link = RedisLink(
        address.endpoint(reactor, timeout),
        address.describe(),
        reactor,  # type: ignore[arg-type]
        timeout,
        password=options["redis-password"],
        username=address.username,
        db=address.db,
    )
    return RedisBroker(
        link,
        reactor,  # type: ignore[arg-type]
        presenceTTL=options["redis-presence-ttl"],
        timeout=timeout,
        maxPending=options["redis-max-pending"],
    )
