"""
Echo (RFC 862) over TCP and UDP: L{EchoFactory} and L{DatagramEcho}; the
client is C{python -m twisted_services.echo}.
"""

from twisted_services.echo.protocol import DatagramEcho, Echo, EchoFactory

__all__ = ["DatagramEcho", "Echo", "EchoFactory"]
