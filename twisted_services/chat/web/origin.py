"""
Which web pages may open the chat's WebSocket: a browser sends the page's
origin with every WebSocket request, and cookies or not, a page on another
site must not chat in its visitor's name (cross-site WebSocket hijacking).
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalOrigin(origin: str) -> str | None:
    """
    C{origin} as C{scheme://host[:port]}, lowercased and without a default
    port, or L{None} if it is not an http or https origin (C{null}, a
    path, a user name, ...).
    """
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def originOption(value: str) -> str:
    """Coerce C{--web-origin} to a normal origin, or refuse it."""
    origin = normalOrigin(value)
    if origin is None:
        raise ValueError(
            f"{value!r} is not an origin: give scheme://host[:port], "
            "e.g. https://chat.example.com"
        )
    return origin


originOption.coerceDoc = "An origin, e.g. https://chat.example.com."  # type: ignore[attr-defined]


def pageOrigin(secure: bool, host: bytes | None) -> str | None:
    """
    The origin of the chat page as the browser asking saw it: the scheme the
    request came over and its C{Host} header. L{None} without a usable Host.
    """
    if not host:
        return None
    scheme = "https" if secure else "http"
    return normalOrigin(f"{scheme}://{host.decode('ascii', 'replace')}")


def originAllowed(
    origin: bytes | None, secure: bool, host: bytes | None, allowed: frozenset[str]
) -> bool:
    """
    Whether a WebSocket request with this C{Origin} header may proceed: it
    names the page's own origin (see L{pageOrigin}) or one of C{allowed}.
    A request without C{Origin} does not come from a browser page, which
    always sends one, so there is no visitor to hijack: it is allowed.
    """
    if origin is None:
        return True
    given = normalOrigin(origin.decode("ascii", "replace"))
    if given is None:
        return False
    return given == pageOrigin(secure, host) or given in allowed
