"""
Multi-user line chat with rooms: L{ChatFactory}; the client is
C{python -m twisted_services.chat}.
"""

from twisted_services.chat.protocol import ChatFactory, ChatProtocol

__all__ = ["ChatFactory", "ChatProtocol"]
