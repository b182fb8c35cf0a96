"""
A minimal, fast HTTP/1.1 responder: L{HTTPFactory}.
"""

from twisted_services.http.protocol import HTTPFactory, HTTPProtocol

__all__ = ["HTTPFactory", "HTTPProtocol"]
