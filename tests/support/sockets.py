"""
Blocking loopback sockets for integration tests: exact reads, reads to EOF,
UDP clients, each with a deadline (see L{tests.support.waiting}).
"""

from __future__ import annotations

import socket

from twisted.trial.unittest import SynchronousTestCase

from tests.support.waiting import polling

MiB = 1024 * 1024
READ_TIMEOUT = 5.0


def canBind(family: int, host: str) -> bool:
    """Whether this machine has (loopback) address C{host} to bind."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def recvExactly(
    client: socket.socket, size: int, timeout: float = READ_TIMEOUT
) -> bytes:
    """Read exactly C{size} bytes from a blocking socket, or fail."""
    if size == 0:
        return b""
    chunks: list[bytes] = []
    got = 0
    for remaining in polling(timeout, f"reading {size} bytes"):
        client.settimeout(remaining)
        try:
            chunk = client.recv(min(size - got, 65536))
        except TimeoutError:
            continue  # polling() fails now that the time is up
        if not chunk:
            raise AssertionError(f"EOF after {got} of {size} bytes")
        chunks.append(chunk)
        got += len(chunk)
        if got == size:
            return b"".join(chunks)
    raise AssertionError("unreachable")  # polling() raises first


def recvUntilEOF(
    client: socket.socket, limit: int = MiB, timeout: float = READ_TIMEOUT
) -> bytes:
    """Read from a blocking socket until the peer closes, or fail."""
    chunks: list[bytes] = []
    got = 0
    for remaining in polling(timeout, "waiting for EOF"):
        client.settimeout(remaining)
        try:
            chunk = client.recv(65536)
        except TimeoutError:
            continue  # polling() fails now that the time is up
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        got += len(chunk)
        if got > limit:
            raise AssertionError(f"more than {limit} bytes before EOF")
    raise AssertionError("unreachable")  # polling() raises first


def closedByPeer(client: socket.socket, timeout: float = READ_TIMEOUT) -> bool:
    """Whether the peer closes (or resets) C{client} within C{timeout}."""
    client.settimeout(timeout)
    try:
        return client.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def udpClient(
    testCase: SynchronousTestCase,
    family: int = socket.AF_INET,
    host: str | None = None,
    timeout: float = READ_TIMEOUT,
) -> socket.socket:
    """
    A blocking UDP socket bound to a free port on C{host} (by default the
    loopback address of C{family}), closed when the test ends.
    """
    client = socket.socket(family, socket.SOCK_DGRAM)
    testCase.addCleanup(client.close)
    if host is None:
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    client.bind((host, 0))
    client.settimeout(timeout)
    return client


def receiveFrom(
    client: socket.socket, server: tuple[str, int], timeout: float = READ_TIMEOUT
) -> bytes:
    """The next datagram on C{client}, which must come from C{server}."""
    for remaining in polling(timeout, f"a reply from {server}"):
        client.settimeout(remaining)
        try:
            data, source = client.recvfrom(65536)
        except TimeoutError:
            continue  # polling() fails now that the time is up
        if source[:2] != server:
            raise AssertionError(f"{data!r} from {source}, expected {server}")
        return data
    raise AssertionError("unreachable")  # polling() raises first


def assertNothingWaiting(client: socket.socket) -> None:
    """No datagram is queued on C{client} (its timeout is kept)."""
    timeout = client.gettimeout()
    client.setblocking(False)
    try:
        data, source = client.recvfrom(65536)
    except BlockingIOError:
        return
    finally:
        client.settimeout(timeout)
    raise AssertionError(f"unexpected {data!r} from {source}")
