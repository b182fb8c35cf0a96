"""
What every server shares: listening options, listeners (stream, datagram,
adopted), TLS contexts, connection tracking and the UDP reflection guard.
"""
