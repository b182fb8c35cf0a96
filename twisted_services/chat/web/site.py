"""
The web listener's factory: C{GET /} is the chat page, C{/ws} the
WebSocket into the chat, anything else 404.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from twisted_services.chat.protocol import ChatFactory
from twisted_services.chat.web.guard import GuardedSiteFactory
from twisted_services.chat.web.page import ChatPage, loadPage
from twisted_services.chat.web.websocket import ChatSocketResource

REQUEST_TIMEOUT = 60.0
"""Seconds an HTTP connection may sit idle (a WebSocket is then the chat's)."""


class _Root(Resource):
    """The page and the socket; anything else is a plain 404."""

    def getChild(self, path: bytes, request: Request) -> IResource:
        return notFound()


def webChatFactory(
    factory: ChatFactory,
    origins: frozenset[str],
    clock: IReactorTime,
    maxConnections: int,
) -> GuardedSiteFactory:
    """
    The factory to listen with for the browser chat into C{factory}'s chat,
    accepting WebSockets from the page's own origin and C{origins}, holding
    at most C{maxConnections} connections.
    """
    root = _Root()
    root.putChild(b"", ChatPage(loadPage()))
    root.putChild(b"ws", ChatSocketResource(factory, origins))
    site = Site(root, timeout=REQUEST_TIMEOUT, reactor=clock)
    site.noisy = False
    return GuardedSiteFactory(site, maxConnections, clock)
