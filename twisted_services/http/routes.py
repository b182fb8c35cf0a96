"""
The paths the http service answers, and the L{Kind} of response each gets.
"""

from __future__ import annotations

from httptools import HttpParserError, parse_url

from twisted_services.http.responses import Kind

ROUTES = {b"/": Kind.HELLO, b"/health": Kind.HEALTH, b"/request": Kind.REQUEST_ECHO}
"""Each path the service answers, and the kind of response it gets."""


def routeOf(url: bytes) -> Kind:
    """
    The kind of response a request target gets from its path: its route's,
    or L{Kind.NOT_FOUND}. The query string does not count; an absolute URL
    (C{http://host/path}) is routed by its path.
    """
    if url[:1] == b"/":
        path = url.split(b"?", 1)[0].split(b"#", 1)[0]
    else:
        try:
            parsed = parse_url(url)
        except HttpParserError:
            return Kind.NOT_FOUND
        if not parsed.schema or not parsed.host:
            return Kind.NOT_FOUND
        path = parsed.path or b"/"
    return ROUTES.get(path, Kind.NOT_FOUND)
