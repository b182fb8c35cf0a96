"""
What RFC 9112 requires a server to refuse that C{httptools} lets through:
the checks of a complete request head on its version and its C{Host}.
"""

from __future__ import annotations

import re
from functools import lru_cache

from twisted_services.http.responses import Kind

# RFC 9110 section 7.2: Host = uri-host [ ":" port ], with uri-host from RFC
# 3986 section 3.2.2: an IP literal in brackets (IPv6, or IPvFuture), or a
# reg-name (which covers an IPv4 address): unreserved, percent-encoded and
# sub-delims characters. An empty value is valid (RFC 9112 section 3.2).
_HOST = re.compile(
    rb"(?:\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[-A-Za-z0-9._~!$&'()*+,;=:]+)\]"
    rb"|(?:[-A-Za-z0-9._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)"
    rb"(?::[0-9]*)?"
)


# Cached: a client sends the same Host on every request, and a lookup costs
# a tenth of the match. Bounded, so that hostile values cannot grow it.
@lru_cache(maxsize=256)
def validHost(value: bytes) -> bool:
    """Whether C{value} is a valid C{Host} field value (RFC 9110 section 7.2)."""
    return _HOST.fullmatch(value) is not None


def headProblem(version: str, hosts: int, hostValid: bool) -> Kind | None:
    """
    The error a complete request head gets for its HTTP C{version} (as
    C{httptools} reports it, C{"1.1"}) and its C{Host} header lines, or
    L{None} if it may be answered.

    An HTTP/1.x version above 1.1 is served as 1.1 (RFC 9110 section 2.5);
    a major version other than 1 gets 505, except 0: C{httptools} reports
    the HTTP/0.9 form (C{GET /}, no version) as 0.9, and such a request gets
    400, as does an explicit C{HTTP/0.9}, which no client sends. An
    HTTP/1.1 request must have exactly one valid C{Host}; no request may
    have two, or an invalid one (RFC 9112 section 3.2).

    @param hosts: how many C{Host} header lines the head has.
    @param hostValid: whether every one of them is valid (L{validHost}).
    """
    major, _, minor = version.partition(".")
    if major != "1":
        return Kind.BAD_REQUEST if major == "0" else Kind.VERSION_NOT_SUPPORTED
    if hosts > 1 or not hostValid or (hosts == 0 and minor != "0"):
        return Kind.BAD_REQUEST
    return None
