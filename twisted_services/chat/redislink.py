"""
The chat's two connections to Redis, on C{txredisapi}'s protocols: one for
commands (scripts, C{PUBLISH}) and one subscribed to channels, since a
subscribed Redis connection takes no other commands.

Twisted's L{ClientService} connects each, and reconnects it with backoff
whenever it is lost. The link is up while both are ready; losing either
drops the other too, so that coming back up always starts afresh (the
subscriptions made again, the server's part of the chat written again) and
the L{ILinkReceiver} hears of each change once.
"""

from __future__ import annotations

from typing import Any

import txredisapi
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface

RETRY_FIRST = 0.5
"""Seconds before the first reconnection attempt."""
RETRY_MAX = 5.0
"""Seconds between reconnection attempts at most (the backoff's ceiling)."""


class LinkDown(Exception):
    """Redis cannot be asked now: the link is not up."""


class ILinkReceiver(Interface):
    """What a L{RedisLink} tells: the link's changes and what was published."""

    def linkReady() -> None:
        """Both connections are ready (again): nothing is subscribed yet."""

    def linkLost(reason: Failure) -> None:
        """The link was up and is lost; it is being re-established."""

    def messageReceived(channel: bytes, payload: bytes) -> None:
        """A message on a subscribed channel."""


class _Commands(txredisapi.RedisProtocol):
    """The command connection: replies come back as bytes."""

    factory: _LinkFactory

    def connectionLost(self, why: Failure) -> None:
        super().connectionLost(why)
        self.factory.link._lost(self, why)


class _Subscriber(txredisapi.SubscriberProtocol):
    """The subscribed connection: messages go to the link's receiver."""

    factory: _LinkFactory

    def messageReceived(self, pattern: object, channel: bytes, message: bytes) -> None:
        self.factory.link._message(channel, message)

    def connectionLost(self, why: Failure) -> None:
        super().connectionLost(why)
        self.factory.link._lost(self, why)


class _LinkFactory(Factory):
    """
    Builds one kind of txredisapi protocol for a L{RedisLink}: raw bytes
    (no decoding, no numbers guessed from strings), AUTH and SELECT done by
    the protocol, its reply timeout timed by the link's clock.
    """

    # txredisapi's protocol reads this after a failed AUTH or SELECT.
    isLazy = False
    noisy = False

    def __init__(
        self,
        protocol: type[txredisapi.BaseRedisProtocol],
        link: RedisLink,
        password: str | None,
        username: str | None,
        db: int,
        timeout: float | None,
    ) -> None:
        self.protocol = protocol
        self.link = link
        self.password = password
        self.username = username
        self.db = db
        self.timeout = timeout

    def buildProtocol(self, addr: object) -> txredisapi.BaseRedisProtocol:
        protocol = self.protocol(
            charset=None,
            convertNumbers=False,
            replyTimeout=self.timeout,
            password=self.password,
            dbid=self.db or None,
            username=self.username,
        )
        protocol.factory = self
        protocol.callLater = self.link.clock.callLater
        # Fires with the protocol once AUTH and SELECT are done.
        protocol.whenConnected().addCallback(self.link._ready)
        return protocol

    def stopTrying(self) -> None:
        """
        txredisapi calls this when AUTH or SELECT fails; the L{ClientService}
        keeps trying with backoff all the same, since a password or an ACL
        fixed on the server should not need a restart here.
        """

    def connectionError(self, why: str) -> None:
        self.link._log.error("chat: {why} ({address})", why=why, address=self.link.name)


class RedisLink:
    """
    Commands and subscriptions to one Redis server, for one L{ILinkReceiver}.

    @param endpoint: where Redis is.
    @param name: how the address is logged (no credentials).
    @param timeout: seconds a command may wait for its reply; past that its
        connection is dropped (and the link with it) and made again.
    """

    _log = Logger()

    def __init__(
        self,
        endpoint: IStreamClientEndpoint,
        name: str,
        clock: IReactorTime,
        timeout: float,
        password: str | None = None,
        username: str | None = None,
        db: int = 0,
    ) -> None:
        self.name = name
        self.clock = clock
        self._receiver: ILinkReceiver | None = None
        self._commands: _Commands | None = None
        self._subscriber: _Subscriber | None = None
        self._up = False
        self._stopping = False
        self._backoff = backoffPolicy(RETRY_FIRST, RETRY_MAX, 2.0)
        # Connections closed before they were ready (a wrong password, say):
        # ClientService counts them as successes, which would reset its
        # backoff and retry at once, for ever.
        self._rejected = 0
        self._services = [
            ClientService(
                endpoint,
                _LinkFactory(kind, self, password, username, db, timeout),
                retryPolicy=self._retryDelay,
                clock=clock,
            )
            for kind in (_Commands, _Subscriber)
        ]

    @property
    def up(self) -> bool:
        """Whether both connections are ready."""
        return self._up

    def start(self, receiver: ILinkReceiver) -> None:
        """Connect, and keep connecting, telling C{receiver} what happens."""
        self._receiver = receiver
        self._stopping = False
        for service in self._services:
            service.startService()

    def stop(self) -> Deferred[Any]:
        """Close both connections and stop reconnecting; nothing more is told."""
        self._stopping = True
        self._up = False
        stopped = [service.stopService() for service in self._services]
        return stopped[0].addBoth(lambda _: stopped[1])

    def reset(self) -> None:
        """Drop both connections (Redis stopped answering); they are made again."""
        for protocol in (self._commands, self._subscriber):
            if protocol is not None and protocol.transport is not None:
                protocol.transport.abortConnection()

    def _retryDelay(self, attempt: int) -> float:
        return self._backoff(max(attempt, self._rejected))

    def _ready(self, protocol: txredisapi.BaseRedisProtocol) -> None:
        """C{protocol} is connected, AUTH and SELECT done: it can be used."""
        self._rejected = 0
        if isinstance(protocol, _Subscriber):
            self._subscriber = protocol
        else:
            self._commands = protocol  # type: ignore[assignment]
        if self._commands is not None and self._subscriber is not None:
            self._up = True
            if self._receiver is not None:
                self._receiver.linkReady()

    def _lost(self, protocol: txredisapi.BaseRedisProtocol, reason: Failure) -> None:
        if protocol is self._commands:
            self._commands = None
        elif protocol is self._subscriber:
            self._subscriber = None
        else:
            # Lost before it was ready: nothing depended on it.
            self._rejected += 1
            return
        if not self._up:
            return
        self._up = False
        self.reset()
        if not self._stopping and self._receiver is not None:
            self._receiver.linkLost(reason)

    def _message(self, channel: bytes, payload: bytes) -> None:
        if self._receiver is not None:
            self._receiver.messageReceived(channel, payload)

    def _call(
        self, protocol: txredisapi.BaseRedisProtocol | None, name: str, *args: object
    ) -> Deferred[Any]:
        if protocol is None or not self._up:
            return fail(LinkDown(self.name))
        return maybeDeferred(getattr(protocol, name), *args)

    def eval(self, script: bytes, args: list[object]) -> Deferred[Any]:
        """Run a Lua C{script} with C{args} (no declared keys)."""
        return self._call(self._commands, "eval", script, [], args)

    def execute(self, *command: object) -> Deferred[Any]:
        """Run one Redis command."""
        return self._call(self._commands, "execute_command", *command)

    def publish(self, channel: bytes, payload: bytes) -> Deferred[int]:
        """Publish C{payload} on C{channel}; fires with how many received it."""
        return self._call(self._commands, "publish", channel, payload)

    def subscribe(self, channel: bytes) -> Deferred[Any]:
        """Subscribe to C{channel}; fires once Redis has confirmed it."""
        return self._call(self._subscriber, "subscribe", [channel])

    def unsubscribe(self, channel: bytes) -> Deferred[Any]:
        """Unsubscribe from C{channel}."""
        return self._call(self._subscriber, "unsubscribe", [channel])
