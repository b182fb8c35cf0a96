"""
The chat in a browser: one page (C{index.html}) and a WebSocket into the
same rooms as the TCP clients, served on C{twistd chat --web ENDPOINT}.
"""
