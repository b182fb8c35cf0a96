"""
A fake UDP port whose sends fail, for the guarded datagram protocols' tests:
the C{OSError} a real port raises for a spoofed broadcast source (C{EACCES})
or a full send buffer (C{EAGAIN}).
"""

from __future__ import annotations

import errno
import os

from twisted_services.testing import FakeDatagramTransport

__all__ = ["RefusingDatagramTransport"]


class RefusingDatagramTransport(FakeDatagramTransport):
    """A L{FakeDatagramTransport} whose every C{write} raises C{OSError(error)}."""

    def __init__(self, error: int = errno.EACCES) -> None:
        super().__init__()
        self.error = error

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        raise OSError(self.error, os.strerror(self.error))
