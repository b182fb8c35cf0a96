"""
The chat page: one static HTML file with its script and styles inline,
served with a Content-Security-Policy that allows exactly those and a
WebSocket back to where the page came from, and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

from twisted.web.resource import Resource
from twisted.web.server import Request

_INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)


def loadPage() -> bytes:
    """The page as shipped in the package (C{index.html} beside this module)."""
    return files(__package__).joinpath("index.html").read_bytes()


def contentSecurityPolicy(html: bytes) -> str:
    """
    A policy for C{html} that allows its inline C{<script>} and C{<style>}
    blocks by their SHA-256 (so an injected one runs nowhere), connections
    to the page's own origin (the WebSocket), and nothing else: no other
    script, style, image, font, frame, form target or base URL, and no
    framing of the page by another site.
    """
    hashes: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for kind, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        hashes[kind].append(f"'sha256-{digest}'")
    script = " ".join(hashes[b"script"]) or "'none'"
    style = " ".join(hashes[b"style"]) or "'none'"
    return (
        f"default-src 'none'; script-src {script}; style-src {style}; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


class ChatPage(Resource):
    """C{GET /}: the page, with headers that keep it to itself."""

    isLeaf = True

    def __init__(self, html: bytes) -> None:
        super().__init__()
        self._html = html
        self._policy = contentSecurityPolicy(html).encode("ascii")

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", self._policy)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"referrer-policy", b"no-referrer")
        request.setHeader(b"cache-control", b"no-cache")
        return self._html
