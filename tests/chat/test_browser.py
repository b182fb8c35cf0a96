"""
Browser tests of the chat page: the real C{twistd chat --web} in a
subprocess, pages in a real headless Chromium (Debian's
C{chromium-headless-shell} under Playwright), and a raw TCP client, all on
loopback. Skipped, saying why, without the browser or Playwright.

Every wait is Playwright's, or a socket read's, with a deadline; nothing
sleeps.
"""

from __future__ import annotations

import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.chat.sockets import LineClient
from tests.support.browser import Shared, artifactPath, browserFor
from tests.support.twistd import STARTUP_TIMEOUT, Twistd, pluginCommand

FAST = ["--rate", "1000", "--burst", "1000"]

# A message or nick the page must show as typed, never run.
XSS = [
    "<img src=x onerror=window.pwned=1>",
    "<script>window.pwned=2</script>",
    '"><svg onload=window.pwned=3>',
]

# The text of every line in the page's log.
LOG_LINES = "() => [...document.querySelectorAll('#log li')].map(li => li.textContent)"


def startChat(*web: str) -> Twistd:
    """C{twistd chat} on a free loopback port, its page on C{web} or another."""
    listen = web[0] if web else "tcp:0:interface=127.0.0.1"
    twistd = Twistd.spawn(
        pluginCommand(
            "chat",
            [
                *("--port", "0", "--interface", "127.0.0.1"),
                *("--web", listen),
                *FAST,
            ],
        )
    )
    try:
        twistd.waitFor(lambda: len(twistd.bound) >= 2, STARTUP_TIMEOUT)
    except BaseException:
        twistd.kill()
        raise
    return twistd


def listener(twistd: Twistd, service: str) -> tuple[str, int]:
    [address] = [b.loopbackAddress for b in twistd.bound if b.service == service]
    return address


def pageURL(twistd: Twistd) -> str:
    host, port = listener(twistd, "webchat")
    return f"http://{host}:{port}/"


def typeLine(page: Any, text: str) -> None:
    """Type C{text} in the input line and press Enter, as a person would."""
    page.locator("#line").fill(text)
    page.locator("#line").press("Enter")


def waitForLine(page: Any, text: str) -> None:
    """Wait until the page's log shows a line whose text is exactly C{text}."""
    page.wait_for_function(f"t => ({LOG_LINES})().includes(t)", arg=text)


def waitForText(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([s, t]) => document.querySelector(s).textContent === t", arg=[selector, text]
    )


def waitForMembers(page: Any, *nicks: str) -> None:
    """Wait until the page's members list is C{nicks}, in that order."""
    page.wait_for_function(
        """nicks => JSON.stringify([...document.querySelectorAll('#members li')]
            .map(item => item.textContent)) === JSON.stringify(nicks)""",
        arg=list(nicks),
    )


class _OtherPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another site</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def otherSite(testCase: SynchronousTestCase) -> str:
    """
    The URL of a page of another origin than the chat's: a plain page (no
    policy of the chat's to stop its script) on another loopback port,
    served by a thread until the test ends.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtherPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    testCase.addCleanup(thread.join, 10)
    testCase.addCleanup(server.server_close)
    testCase.addCleanup(server.shutdown)
    return f"http://127.0.0.1:{server.server_address[1]}/"


class BrowserChatTests(SynchronousTestCase):
    """Pages and a TCP client in one chat, one server for the class."""

    servers: Shared[Twistd] = Shared(startChat, Twistd.kill)

    def setUp(self) -> None:
        self.browser = browserFor()
        self.twistd = self.servers.get(self)

    def openPage(self, nick: str, room: str) -> Any:
        """A page of the chat, renamed to C{nick} and moved to C{room}."""
        page = self.browser.newPage(self, viewport={"width": 720, "height": 480})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: message.type == "error" and errors.append(message.text),
        )
        self.addCleanup(lambda: self.assertEqual(errors, []))
        page.goto(pageURL(self.twistd))
        page.wait_for_function(
            "() => document.querySelector('#nick').textContent.startsWith('guest')"
        )
        typeLine(page, f"/nick {nick}")
        waitForText(page, "#nick", nick)
        typeLine(page, f"/join {room}")
        waitForText(page, "#room", room)
        return page

    def tcpClient(self, nick: str, room: str) -> LineClient:
        client = LineClient.connect(listener(self.twistd, "chat"))
        self.addCleanup(client.close)
        client.readLine()  # the welcome
        client.send(f"/nick {nick}")
        # The lobby is the class's: a page of an earlier test may be heard
        # leaving it first.
        client.waitFor(f"*** you are now known as {nick}")
        client.send(f"/join {room}")
        client.expect(f"*** you joined {room}")
        return client

    def test_twoPagesAndTCP(self) -> None:
        """
        Two pages and a TCP client chat in one room: what each says reaches
        the others, a nick change and a C{/join} show on every side, and the
        members list follows.
        """
        tcp = self.tcpClient("tess", "den")
        alice = self.openPage("alice", "den")
        tcp.expect("*** alice has joined")
        bob = self.openPage("bob", "den")
        tcp.expect("*** bob has joined")
        waitForLine(alice, "bob has joined")
        waitForMembers(alice, "alice", "bob", "tess")
        typeLine(alice, "/who")
        waitForLine(alice, "in den: alice, bob, tess")

        typeLine(alice, "hello from alice")
        waitForLine(alice, "<alice> hello from alice")
        waitForLine(bob, "<alice> hello from alice")
        tcp.expect("<alice> hello from alice")
        tcp.send("hello from tess")
        waitForLine(alice, "<tess> hello from tess")
        waitForLine(bob, "<tess> hello from tess")

        typeLine(bob, "/nick robert")
        waitForText(bob, "#nick", "robert")
        waitForLine(alice, "bob is now known as robert")
        tcp.expect("*** bob is now known as robert")
        waitForMembers(alice, "alice", "robert", "tess")

        typeLine(alice, "/join attic")
        waitForText(alice, "#room", "attic")
        waitForLine(bob, "alice has left (joined attic)")
        tcp.expect("*** alice has left (joined attic)")
        waitForMembers(bob, "robert", "tess")
        waitForMembers(alice, "alice")

        bob.screenshot(path=str(artifactPath("webchat-browser.png")))

    def test_xssShownAsText(self) -> None:
        """
        Markup sent by a TCP client or typed in a page shows as typed on
        every page, and none of it runs or becomes an element.
        """
        tcp = self.tcpClient("mallory", "xss")
        carol = self.openPage("carol", "xss")
        tcp.expect("*** carol has joined")
        dave = self.openPage("dave", "xss")
        tcp.expect("*** dave has joined")
        for text in XSS:
            tcp.send(text)
            waitForLine(carol, f"<mallory> {text}")
            typeLine(carol, text)
            waitForLine(dave, f"<carol> {text}")
            tcp.expect(f"<carol> {text}")
        for page in (carol, dave):
            self.assertIsNone(page.evaluate("() => window.pwned"))
            self.assertEqual(page.locator("#log img, #log script, #log svg").count(), 0)

    def test_phoneAndKeyboard(self) -> None:
        """
        On a phone-sized screen the page needs no sideways scrolling, and
        with the keyboard alone one can type a command and send it.
        """
        page = self.browser.newPage(
            self, viewport={"width": 360, "height": 640}, is_mobile=True
        )
        page.goto(pageURL(self.twistd))
        waitForText(page, "#status", "connected")
        self.assertTrue(
            page.evaluate(
                "() => document.documentElement.scrollWidth <= window.innerWidth"
            )
        )
        self.assertEqual(page.evaluate("() => document.activeElement.id"), "line")
        page.keyboard.type("/nick kay")
        page.keyboard.press("Enter")
        waitForText(page, "#nick", "kay")

    def test_otherOriginRefused(self) -> None:
        """
        A page of another origin cannot open the chat's WebSocket (the
        server answers 403); the chat's own page can.
        """
        url = pageURL(self.twistd).replace("http:", "ws:") + "ws"
        opening = """url => new Promise(done => {
            const socket = new WebSocket(url);
            socket.onopen = () => { socket.close(); done("open"); };
            socket.onclose = () => done("closed");
            setTimeout(() => done("no answer"), 10000);
        })"""
        own = self.browser.newPage(self)
        own.goto(pageURL(self.twistd))
        self.assertEqual(own.evaluate(opening, url), "open")

        other = self.browser.newPage(self)
        other.goto(otherSite(self))
        self.assertEqual(other.evaluate(opening, url), "closed")
        self.twistd.waitForLog(
            r"refused a WebSocket .* for a page of http://127\.0\.0\.1:\d+$"
        )


class ReconnectTests(SynchronousTestCase):
    """The page comes back by itself after the server restarts."""

    def setUp(self) -> None:
        self.browser = browserFor()

    def test_reconnectsAfterRestart(self) -> None:
        """
        Told the server is shutting down, the page reconnects once it is
        back on the same port, and takes its nick again.
        """
        first = startChat()
        self.addCleanup(first.kill)
        host, port = listener(first, "webchat")
        page = self.browser.newPage(self)
        page.goto(pageURL(first))
        page.wait_for_function(
            "() => document.querySelector('#nick').textContent.startsWith('guest')"
        )
        typeLine(page, "/nick erin")
        waitForText(page, "#nick", "erin")

        self.assertIn(first.stop(signal.SIGTERM), (0, -signal.SIGTERM))
        waitForLine(page, "server shutting down")
        page.wait_for_function(
            "() => document.querySelector('#status').textContent"
            ".startsWith('disconnected')"
        )

        second = startChat(f"tcp:{port}:interface={host}")
        self.addCleanup(second.kill)
        waitForText(page, "#status", "connected")
        waitForText(page, "#nick", "erin")
        second.waitForLog("connected as guest1")
