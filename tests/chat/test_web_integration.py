"""
Integration tests of the browser chat without a browser: the real C{twistd
chat --web} in a subprocess, a WebSocket client framed by C{wsproto} and a
raw TCP client on loopback. Every read has a deadline; nothing sleeps.
"""

from __future__ import annotations

import socket

from twisted.trial.unittest import SkipTest, SynchronousTestCase
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    RejectConnection,
    Request,
    TextMessage,
)

from tests.chat.sockets import LineClient
from tests.support.redis import REDIS_SERVER, SKIP_REASON, RedisServer
from tests.support.twistd import Twistd, startTwistd
from tests.support.waiting import polling

TIMEOUT = 5.0
WEB = "tcp:0:interface=127.0.0.1"


class SocketClient:
    """A blocking WebSocket client: one text message a line."""

    def __init__(self, address: tuple[str, int], origin: str | None = None) -> None:
        self.socket = socket.create_connection(address, timeout=TIMEOUT)
        self.connection = WSConnection(ConnectionType.CLIENT)
        self.closeCode: int | None = None
        self._texts: list[str] = []
        self._text = ""
        self._pending: list[Event] = []
        host = f"{address[0]}:{address[1]}"
        headers = [] if origin is None else [(b"Origin", origin.encode())]
        self._send(Request(host=host, target="/ws", extra_headers=headers))
        self.answer = self._next((AcceptConnection, RejectConnection))

    def _send(self, event: Event) -> None:
        self.socket.sendall(self.connection.send(event))

    def _events(self, timeout: float) -> list[Event]:
        """What arrived (and was not taken yet), waiting up to C{timeout}."""
        if not self._pending:
            self.socket.settimeout(timeout)
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                return []
            self.connection.receive_data(data or None)
            self._pending = list(self.connection.events())
        events, self._pending = self._pending, []
        return events

    def _next(self, kinds: tuple[type[Event], ...]) -> Event:
        for remaining in polling(TIMEOUT, f"a {kinds} from the server"):
            events = self._events(remaining)
            for index, event in enumerate(events):
                if isinstance(event, kinds):
                    self._pending = events[index + 1 :]
                    return event
        raise AssertionError("unreachable")

    def send(self, text: str, finished: bool = True) -> None:
        self._send(TextMessage(text, message_finished=finished))

    def readLine(self) -> str:
        """The next text message, whole."""
        for remaining in polling(TIMEOUT, "a text message"):
            if self._texts:
                return self._texts.pop(0)
            for event in self._events(remaining):
                if isinstance(event, TextMessage):
                    self._text += event.data
                    if event.message_finished:
                        self._texts.append(self._text)
                        self._text = ""
                elif isinstance(event, CloseConnection):
                    self.closeCode = event.code
                    raise AssertionError(f"closed ({event.code}): {self._texts}")
        raise AssertionError("unreachable")

    def readUntilClosed(self) -> list[str]:
        """The messages up to the server's close, whose code is kept."""
        lines: list[str] = []
        for _ in range(100):
            try:
                lines.append(self.readLine())
            except AssertionError:
                if self.closeCode is None:
                    raise
                return lines + self._texts
        raise AssertionError(f"not closed after {lines}")

    def close(self) -> None:
        self.socket.close()


class WebIntegrationTests(SynchronousTestCase):
    """C{twistd chat --web}: browsers' socket and TCP clients in one chat."""

    def setUp(self) -> None:
        self.twistd: Twistd = startTwistd(
            self,
            "chat",
            [
                "--port",
                "0",
                "--interface",
                "127.0.0.1",
                "--web",
                WEB,
                "--max-line",
                "100",
            ],
            listeners=2,
        )

    def address(self, service: str) -> tuple[str, int]:
        [bound] = [b for b in self.twistd.bound if b.service == service]
        return bound.loopbackAddress

    def web(self, origin: str | None = None) -> SocketClient:
        client = SocketClient(self.address("webchat"), origin)
        self.addCleanup(client.close)
        return client

    def test_sameRoom(self) -> None:
        """A line each way between a WebSocket and a TCP client."""
        tcp = LineClient.connect(self.address("chat"))
        self.addCleanup(tcp.close)
        tcp.readLine()
        web = self.web()
        self.assertIsInstance(web.answer, AcceptConnection)
        self.assertEqual(
            web.readLine(),
            "*** welcome, you are guest2 in lobby; type /help for commands",
        )
        tcp.expect("*** guest2 has joined")
        web.send("/nick alice")
        self.assertEqual(web.readLine(), "*** you are now known as alice")
        tcp.expect("*** guest2 is now known as alice")
        web.send("hello")
        tcp.expect("<alice> hello")
        tcp.send("hi")
        self.assertEqual(web.readLine(), "<guest1> hi")

    def test_otherOrigin(self) -> None:
        """A page of another origin gets 403, and the refusal is logged."""
        web = self.web("http://evil.example")
        self.assertIsInstance(web.answer, RejectConnection)
        assert isinstance(web.answer, RejectConnection)
        self.assertEqual(web.answer.status_code, 403)
        self.twistd.waitForLog("refused a WebSocket .* for a page of http://evil")

    def test_unfinishedMessageOverLimit(self) -> None:
        """
        Over real TCP reads too, an unfinished message within the limit is
        held, and one past it gets C{! line too long} and a 1009 close.
        """
        web = self.web()
        web.readLine()
        web.send("x" * 2000, finished=False)
        web.send("x" * 2000, finished=False)
        web.send("/who")  # the end of the message: 4000 x and "/who", too long
        self.assertEqual(web.readLine(), "! line too long")
        web.send("x" * 4000, finished=False)
        web.send("x" * 1000, finished=False)
        self.assertEqual(web.readUntilClosed(), ["! line too long"])
        self.assertEqual(web.closeCode, 1009)


class WebAcrossServersTests(SynchronousTestCase):
    """With C{--redis}, a browser on one server chats with TCP users of another."""

    def setUp(self) -> None:
        if REDIS_SERVER is None:
            raise SkipTest(SKIP_REASON)
        redis = RedisServer()
        self.addCleanup(redis.close)
        redis.start()
        common = ["--port", "0", "--interface", "127.0.0.1", "--redis", redis.url]
        self.withWeb = startTwistd(self, "chat", [*common, "--web", WEB], listeners=2)
        self.other = startTwistd(self, "chat", common)
        for server in (self.withWeb, self.other):
            server.waitForLog("sharing the chat through Redis")

    def test_browserSpansServers(self) -> None:
        """A nick change and a line each way cross from one server to the other."""
        tcp = LineClient.connect(self.other.listener().loopbackAddress)
        self.addCleanup(tcp.close)
        tcp.readLine()
        tcp.send("/nick tess")
        tcp.expect("*** you are now known as tess")
        [bound] = [b for b in self.withWeb.bound if b.service == "webchat"]
        web = SocketClient(bound.loopbackAddress)
        self.addCleanup(web.close)
        guest = web.readLine().split()[4]  # *** welcome, you are GUEST in ...
        tcp.waitFor(f"*** {guest} has joined")
        web.send("/nick wendy")
        self.assertEqual(web.readLine(), "*** you are now known as wendy")
        tcp.waitFor(f"*** {guest} is now known as wendy")
        web.send("hello across")
        tcp.expect("<wendy> hello across")
        tcp.send("hi back")
        self.assertEqual(web.readLine(), "<tess> hi back")
