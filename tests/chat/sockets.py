"""
A raw-socket chat client for integration tests: blocking loopback sockets,
a deadline on every read and a bound on every loop, no sleeps.

Every line it reads must be what the wire protocol promises: UTF-8, ending
in CRLF, with no control character left in it.
"""

from __future__ import annotations

import socket

from tests.support.waiting import polling

READ_TIMEOUT = 5.0
MAX_UNREAD = 4 * 1024 * 1024


class LineClient:
    """One chat connection, read and written a line at a time."""

    def __init__(self, connection: socket.socket) -> None:
        self.socket = connection
        self._buffer = b""

    @classmethod
    def connect(
        cls, address: tuple[str, int], receiveBuffer: int | None = None
    ) -> LineClient:
        """
        Connect to C{address}; C{receiveBuffer} sets C{SO_RCVBUF} first (it
        must be set before connecting to shrink the advertised window).
        """
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        connection = socket.socket(family, socket.SOCK_STREAM)
        try:
            if receiveBuffer is not None:
                connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer
                )
            connection.settimeout(READ_TIMEOUT)
            connection.connect(address)
        except BaseException:
            connection.close()
            raise
        return cls(connection)

    def send(self, line: str | bytes) -> None:
        """Send one line, adding the LF; C{str} is sent as UTF-8."""
        data = line.encode("utf-8") if isinstance(line, str) else line
        self.socket.sendall(data + b"\n")

    def sendRaw(self, data: bytes) -> None:
        """Send C{data} as it is."""
        self.socket.sendall(data)

    def readLine(self, timeout: float = READ_TIMEOUT) -> str:
        """The next line, without its CRLF; fail on EOF, timeout or bad text."""
        for remaining in polling(timeout, f"a line (unread: {self._buffer[:200]!r})"):
            if b"\r\n" in self._buffer:
                break
            self.socket.settimeout(remaining)
            try:
                chunk = self.socket.recv(65536)
            except TimeoutError:
                continue  # polling() fails now that the time is up
            if not chunk:
                raise AssertionError(f"EOF; unread: {self._buffer[:200]!r}")
            self._buffer += chunk
            if len(self._buffer) > MAX_UNREAD:
                raise AssertionError(f"no line end in {MAX_UNREAD} bytes")
        raw, self._buffer = self._buffer.split(b"\r\n", 1)
        line = raw.decode("utf-8")  # strict: the server sends only UTF-8
        if not line.isprintable():
            raise AssertionError(f"control characters in {line!r}")
        return line

    def expect(self, *lines: str) -> None:
        """The next lines are exactly C{lines}, in order."""
        got = [self.readLine() for _ in lines]
        if got != list(lines):
            raise AssertionError(f"expected {list(lines)!r}, got {got!r}")

    def waitFor(self, wanted: str, limit: int = 1000) -> list[str]:
        """Read up to and including C{wanted}; return the lines before it."""
        seen: list[str] = []
        for _ in range(limit):
            line = self.readLine()
            if line == wanted:
                return seen
            seen.append(line)
        raise AssertionError(f"{wanted!r} not within {limit} lines: {seen[-5:]!r}")

    def closedByPeer(
        self, timeout: float = READ_TIMEOUT, limit: int = 64 << 20
    ) -> bool:
        """
        Whether the server closes or resets the connection within C{timeout},
        reading and discarding at most C{limit} bytes of what is still queued.
        """
        got = 0
        for remaining in polling(timeout, "the server closing the connection"):
            self.socket.settimeout(remaining)
            try:
                chunk = self.socket.recv(1 << 20)
            except ConnectionResetError:
                return True
            except TimeoutError:
                continue
            if not chunk:
                return True
            got += len(chunk)
            if got > limit:
                return False
        return False  # polling() raises first

    def close(self) -> None:
        self.socket.close()
