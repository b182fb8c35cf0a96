"""
Short, parseable text for Twisted address objects, used in every log line that
names a listener or a peer.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress


def describeAddress(address: object) -> str:
    """
    Describe an address as C{tcp:127.0.0.1:8888}, C{udp:[::1]:1314} or
    C{unix:/run/echo.sock}; anything else as its C{str}.
    """
    if isinstance(address, IPv4Address):
        return f"{address.type.lower()}:{address.host}:{address.port}"
    if isinstance(address, IPv6Address):
        return f"{address.type.lower()}:[{address.host}]:{address.port}"
    if isinstance(address, UNIXAddress):
        name = address.name
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return f"unix:{name or '(unnamed)'}"
    return str(address)
