"""
C{twistd services}: echo, chat, http and temperature in one process.

Nothing here knows how a service is configured or built: each one's own
C{Options} parses its part of the command line (the listeners given here,
then its C{--X-args}), and its own C{makeService} builds it, so the combined
plugin serves exactly what the single plugins would.
"""

from __future__ import annotations

import getopt
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.python import usage

from twisted_services.chat import tap as chat
from twisted_services.core.twistedprivate import getoptSpecification, optionSynonyms
from twisted_services.echo import tap as echo
from twisted_services.http import tap as http
from twisted_services.server.listeners import serviceWith
from twisted_services.server.options import metricsParameter, portNumber, tcpDescription
from twisted_services.server.workers.options import WorkerOptions, supervising
from twisted_services.temperature import tap as temperature


@dataclass(frozen=True)
class _Part:
    """One service of the combined plugin, and where its pieces live."""

    name: str
    tap: ModuleType
    # The arguments the combined options inject before the service's --X-args.
    listenArguments: Callable[[Options], list[str]]
    # The service's own options that replace its default listener, as the
    # combined options given above do: both at once would serve on both.
    ownListeners: tuple[str, ...] = ("port",)
    # More arguments injected the same way that place no listener of the
    # service's own (chat's web page).
    extraArguments: Callable[[Options], list[str]] = lambda options: []


def _streamListeners(name: str) -> Callable[[Options], list[str]]:
    """C{--listen D} for every C{--NAME D}; nothing, so the default port applies."""

    def arguments(options: Options) -> list[str]:
        return [word for d in options[name] for word in ("--listen", d)]

    return arguments


def _temperatureListener(options: Options) -> list[str]:
    """C{--systemd-socket} or C{--port} for temperature; nothing for port 1314."""
    if options["temperature-socket"] is not None:
        return ["--systemd-socket", options["temperature-socket"]]
    if options["temperature"] is not None:
        return ["--port", str(options["temperature"])]
    return []


CHAT_WEB_PORT = 8081
"""Where the combined plugin serves the chat page unless told otherwise."""


def _chatWeb(options: Options) -> list[str]:
    """
    C{--web D} for chat: every C{--chat-web D}; else TCP 8081, unless chat
    was placed with C{--chat} (under systemd, say, where an extra port of
    its own is not wanted: add C{--chat-web} then) or C{--no-chat-web}.
    """
    web = options["chat-web"]
    if not web and not options["chat"] and not options["no-chat-web"]:
        web = [tcpDescription(CHAT_WEB_PORT, None)]
    return [word for d in web for word in ("--web", d)]


PARTS = (
    _Part("echo", echo, _streamListeners("echo")),
    _Part("chat", chat, _streamListeners("chat"), extraArguments=_chatWeb),
    _Part("http", http, _streamListeners("http")),
    _Part("temperature", temperature, _temperatureListener, ("port", "systemd-socket")),
)


class Options(WorkerOptions):
    """Options for C{twistd services}."""

    synopsis = (
        "[--echo DESCRIPTION ...] [--chat DESCRIPTION ...] "
        "[--http DESCRIPTION ...] [--temperature PORT] [--no-SERVICE] "
        "[--SERVICE-args ARGUMENTS]"
    )
    longdesc = (
        "Runs echo (TCP 8888), chat (TCP 12345), http (TCP 8080) and "
        "temperature (UDP 1314) in one process. Each service takes the options "
        "of its own plugin through --SERVICE-args, e.g. "
        "--chat-args '--max-line 8192 --rate 10'; "
        "see twistd SERVICE --help for them."
    )

    optFlags = [
        *([f"no-{part.name}", None, f"Do not run {part.name}."] for part in PARTS),
        ["no-chat-web", None, "Do not serve the chat page (TCP 8081 by default)."],
    ]

    optParameters = [
        [
            "temperature",
            None,
            None,
            "Serve temperature on this UDP port (default 1314; 0: any free "
            "port); --temperature-args '--interface ADDR' picks the address",
            portNumber,
        ],
        [
            "temperature-socket",
            None,
            None,
            "Serve temperature on the UDP socket systemd passed by this "
            "FileDescriptorName= (or index), as twistd temperature "
            "--systemd-socket does",
        ],
        metricsParameter(),
        *(
            [
                f"{part.name}-args",
                None,
                "",
                f"Options for {part.name}, as for twistd {part.name} "
                "(one string, split as a shell would)",
            ]
            for part in PARTS
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        for name in ("echo", "chat", "http", "chat-web"):
            self[name] = []
        # Each enabled service's name and its own parsed options, in order.
        self["services"] = {}

    def _listenOn(self, name: str, description: str) -> None:
        self[name].append(description)

    # One line each: usage.Options prints an opt_ docstring's breaks verbatim.
    def opt_echo(self, description: str) -> None:
        self._listenOn("echo", description)

    opt_echo.__doc__ = (
        "Serve echo on this server endpoint description (e.g. tcp:8888, "
        "systemd:domain=INET6:name=echo); repeatable, replaces the default port."
    )

    def opt_chat(self, description: str) -> None:
        self._listenOn("chat", description)

    opt_chat.__doc__ = (
        "Serve chat on this server endpoint description (e.g. tcp:12345); "
        "repeatable, replaces the default port."
    )

    def opt_chat_web(self, description: str) -> None:
        self._listenOn("chat-web", description)

    opt_chat_web.__doc__ = (
        "Serve the chat page and its WebSocket on this server endpoint "
        "description; repeatable, replaces the default (tcp:8081, unless "
        "--chat is given)."
    )

    def opt_http(self, description: str) -> None:
        self._listenOn("http", description)

    opt_http.__doc__ = (
        "Serve http on this server endpoint description (e.g. tcp:8080); "
        "repeatable, replaces the default port."
    )

    def postOptions(self) -> None:
        if self["temperature"] is not None and self["temperature-socket"]:
            raise usage.UsageError(
                "--temperature and --temperature-socket are alternatives"
            )
        for part in PARTS:
            given = self._given(part)
            if self[f"no-{part.name}"]:
                if given:
                    raise usage.UsageError(
                        f"--no-{part.name} conflicts with {', '.join(given)}"
                    )
                continue
            self["services"][part.name] = self._parse(part)
        if not self["services"]:
            raise usage.UsageError("every service is turned off: nothing to run")
        if self["chat-web"] and (self["no-chat"] or self["no-chat-web"]):
            off = "--no-chat" if self["no-chat"] else "--no-chat-web"
            raise usage.UsageError(f"{off} conflicts with --chat-web")
        self._checkWorkers()

    def _checkWorkers(self) -> None:
        """
        C{--workers} is the whole process's: not a service's own, and above
        1 only if every service enabled can run in several processes.
        """
        for name, parsed in self["services"].items():
            if parsed.get("workers", 1) != 1:
                raise usage.UsageError(
                    f"--{name}-args: --workers applies to the whole process: "
                    "give it to twistd services itself"
                )
        if self["workers"] > 1:
            for name, parsed in self["services"].items():
                refusal = parsed.workersRefusal()
                if refusal is not None:
                    raise usage.UsageError(
                        f"--workers {self['workers']}: {refusal}; leave {name} "
                        f"out (--no-{name}) or run it on its own"
                    )

    def _given(self, part: _Part) -> list[str]:
        """The options that configure C{part}, as they were spelt."""
        given = []
        if part.listenArguments(self):
            socket = part.name == "temperature" and self["temperature-socket"]
            given.append("--temperature-socket" if socket else f"--{part.name}")
        if self[f"{part.name}-args"]:
            given.append(f"--{part.name}-args")
        return given

    def _parse(self, part: _Part) -> usage.Options:
        """C{part}'s own options, from its listeners here and its C{--X-args}."""
        option = f"--{part.name}-args"
        try:
            extra = shlex.split(self[f"{part.name}-args"])
        except ValueError as error:
            raise usage.UsageError(f"{option}: {error}") from None
        options = part.tap.Options()
        injected = part.listenArguments(self)
        try:
            options.parseOptions([*injected, *part.extraArguments(self), *extra])
        except usage.UsageError as error:
            raise usage.UsageError(f"{option}: {error}") from None
        if options["metrics"] is not None:
            raise usage.UsageError(
                f"{option}: --metrics is an option of services itself, which "
                "serves every service's metrics on one endpoint"
            )
        clashing = sorted(_givenOptions(options, extra) & set(part.ownListeners))
        if injected and clashing:
            raise usage.UsageError(
                f"{self._given(part)[0]} and --{clashing[0]} in {option} both replace "
                f"{part.name}'s default listener: give one of them"
            )
        return options


def _givenOptions(options: usage.Options, words: list[str]) -> set[str]:
    """
    The long names of the options in C{words}, read as C{options} read them
    (by C{getopt}, so C{-p 1} and C{--po=1} are C{port} too).
    """
    longOptions, shortOptions = getoptSpecification(options)
    found, _ = getopt.getopt(words, shortOptions, longOptions)
    synonyms = optionSynonyms(options)
    return {synonyms[name.lstrip("-")] for name, _ in found}


def makeService(options: Options, reactor: Any = None) -> MultiService:
    """
    Every enabled service, each built by its own plugin's C{makeService} and
    named after it, in one L{MultiService}.

    @param reactor: what every single plugin needs (TCP, UDP and socket
        adoption); the global reactor by default.

    @raise SystemExit: with a one-line message naming the service, as the
        single plugin would, for a listener that cannot be built.
    """
    if reactor is None:
        from twisted.internet import reactor
    if supervising(options):
        # Imported only for workers: it costs any other start ~50 ms.
        from twisted_services.server.workers.supervisor import supervisorService

        return supervisorService(options, reactor)
    children: list[IService] = []
    for part in PARTS:
        if part.name not in options["services"]:
            continue
        # One notifier for the process, last, so that READY=1 waits for
        # every service's listeners and is sent once.
        child = part.tap.makeService(
            options["services"][part.name], reactor, notify=False
        )
        child.setName(part.name)
        children.append(child)
    if options["metrics"] is not None:
        from twisted_services.server.metrics.exposition import MetricsExporter

        # It collects from every service in the tree it is part of.
        children.append(MetricsExporter([options["metrics"]], reactor))
    connections = sum(
        parsed.get("max-connections", 0) for parsed in options["services"].values()
    )
    return serviceWith(children, connections=connections)
