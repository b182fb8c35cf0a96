"""
Tests for L{twisted_services.http.routes}: which response a request target
gets.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from twisted_services.http.responses import Kind
from twisted_services.http.routes import routeOf


class RouteOfTests(SynchronousTestCase):
    """L{routeOf} routes by path alone."""

    def test_routeOf(self) -> None:
        """L{routeOf} maps request targets to kinds of response."""
        for target, kind in [
            (b"/", Kind.HELLO),
            (b"/health", Kind.HEALTH),
            (b"/request?a", Kind.REQUEST_ECHO),
            (b"/?a=1#x", Kind.HELLO),
            (b"/health/", Kind.NOT_FOUND),
            (b"/Health", Kind.NOT_FOUND),
            (b"//", Kind.NOT_FOUND),
            (b"*", Kind.NOT_FOUND),
            (b"example.com:443", Kind.NOT_FOUND),
            (b"https://example.com/health", Kind.HEALTH),
            (b"http://example.com", Kind.HELLO),
            (b"", Kind.NOT_FOUND),
        ]:
            self.assertIs(routeOf(target), kind, target)
