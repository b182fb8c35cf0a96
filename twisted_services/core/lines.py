"""
Line framing that survives an over-long line: the line is dropped, the
connection and the lines after it are kept.
"""

from __future__ import annotations

from twisted.protocols.basic import LineReceiver


class BoundedLineReceiver(LineReceiver):
    """
    A L{LineReceiver} that drops an over-long line, and only that line, then
    goes on with the next: C{lineLengthExceeded} hands over the rest of the
    buffer, which may hold the tail of the long line and further whole lines.
    """

    delimiter = b"\n"
    _discarding = False
    _carry = b""

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        # Lines that followed an over-long one in the same buffer.
        while self._carry and not (self.transport and self.transport.disconnecting):
            carry, self._carry = self._carry, b""
            super().dataReceived(carry)

    def lineLengthExceeded(self, line: bytes) -> None:
        _, found, rest = line.partition(self.delimiter)
        if not self._discarding:
            self.longLineDropped()
        self._discarding = not found
        self._carry = rest + self._carry

    def lineReceived(self, line: bytes) -> None:
        if self._discarding:
            # The tail of an over-long line, whose start is already dropped.
            self._discarding = False
            return
        self.completeLineReceived(line)

    def completeLineReceived(self, line: bytes) -> None:
        """A line of at most C{MAX_LENGTH} bytes, without its delimiter."""
        raise NotImplementedError()

    def longLineDropped(self) -> None:
        """A line longer than C{MAX_LENGTH} was dropped (called once per line)."""
