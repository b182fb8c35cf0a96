"""
Tests that no datagram spoofed between two converters, or between a converter
and a UDP echo, starts a loop: in memory, with the protocols wired to each
other, and on loopback, with real C{twistd} processes, a spoofed datagram
sent from a raw socket and every datagram between them counted by a packet
socket on C{lo} (both need root; those tests skip without it).

Every wait has a deadline and every loop a bound; nothing sleeps.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import struct
import time
from collections import deque

from hypothesis import given, settings, strategies
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.twistd import startTwistd
from twisted_services.echo.protocol import DatagramEcho
from twisted_services.server.udpguard import ReflectionGuard
from twisted_services.temperature.protocol import TemperatureProtocol
from twisted_services.testing import FakeDatagramTransport, attachDatagram

Address = tuple[str, int]
# The converters; any two ports will do in memory.
CONVERTER_A = ("127.0.0.1", 11314)
CONVERTER_B = ("127.0.0.1", 11315)
ECHO = ("127.0.0.1", 11316)
MOST_EXCHANGED = 3
"""Datagrams the services may send each other after one spoofed datagram."""


class Network:
    """
    Delivers each datagram one attached protocol writes to the protocol at
    its destination, in order, and records every delivery.
    """

    def __init__(self) -> None:
        self._hosts: dict[Address, DatagramProtocol] = {}
        self._queue: deque[tuple[bytes, Address, Address]] = deque()
        self.delivered: list[tuple[bytes, Address, Address]] = []

    def attach(self, protocol: DatagramProtocol, address: Address) -> None:
        network = self

        class Wire(FakeDatagramTransport):
            def write(self, data: bytes, addr: tuple[str, int]) -> None:
                network._queue.append((data, address, addr))

        attachDatagram(protocol, Wire(*address))
        self._hosts[address] = protocol

    def spoof(self, data: bytes, source: Address, destination: Address) -> None:
        """Deliver C{data} to C{destination} as if C{source} had sent it."""
        self._queue.append((data, source, destination))
        self.run()

    def run(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self._queue:
                return
            data, source, destination = self._queue.popleft()
            self.delivered.append((data, source, destination))
            self._hosts[destination].datagramReceived(data, source)
        raise AssertionError(f"still trading datagrams after {limit}")


def generousGuard(clock: Clock) -> ReflectionGuard:
    """A guard whose rate limit stops nothing here: the content rules must."""
    return ReflectionGuard("test", clock, 1e6, 1_000_000)


def converterAndPeer(peer: type[DatagramProtocol]) -> Network:
    clock = Clock()
    network = Network()
    network.attach(TemperatureProtocol(generousGuard(clock)), CONVERTER_A)
    address = CONVERTER_B if peer is TemperatureProtocol else ECHO
    network.attach(peer(generousGuard(clock)), address)
    return network


# Spoofed payloads: requests, replies, errors and anything else.
PAYLOADS = strategies.sampled_from(
    [b"100", b"98.6F", b"0 K", b"hot", b"", b"100 C = 212 F\n", b"ERROR empty\n"]
) | strategies.binary(max_size=64)


class InMemoryLoopTests(SynchronousTestCase):
    """Protocols wired to each other in memory, with no rate limit to help."""

    def test_twoConverters(self) -> None:
        """
        C{100} spoofed from converter B to A: A answers B once, and B, given
        a reply, answers nothing.
        """
        network = converterAndPeer(TemperatureProtocol)
        network.spoof(b"100", CONVERTER_B, CONVERTER_A)
        self.assertEqual(
            network.delivered,
            [
                (b"100", CONVERTER_B, CONVERTER_A),
                (b"100 C = 212 F\n", CONVERTER_A, CONVERTER_B),
            ],
        )

    def test_converterAndEcho(self) -> None:
        """
        C{100} spoofed from the echo to the converter, or from the converter
        to the echo: the converter never answers the reply the echo bounces.
        """
        network = converterAndPeer(DatagramEcho)
        network.spoof(b"100", ECHO, CONVERTER_A)
        network.spoof(b"100", CONVERTER_A, ECHO)
        self.assertEqual(
            [(data, source) for data, source, _ in network.delivered],
            [
                (b"100", ECHO),  # spoofed
                (b"100 C = 212 F\n", CONVERTER_A),
                (b"100 C = 212 F\n", ECHO),  # dropped
                (b"100", CONVERTER_A),  # spoofed
                (b"100", ECHO),
                (b"100 C = 212 F\n", CONVERTER_A),
                (b"100 C = 212 F\n", ECHO),  # dropped
            ],
        )

    @settings(max_examples=200, deadline=None)
    @given(PAYLOADS, strategies.booleans(), strategies.booleans())
    def test_anySpoofedDatagram(
        self, payload: bytes, withEcho: bool, toPeer: bool
    ) -> None:
        """
        Whatever one spoofed datagram holds, and whichever way it is sent,
        the two services send each other at most three datagrams.
        """
        network = converterAndPeer(DatagramEcho if withEcho else TemperatureProtocol)
        peer = ECHO if withEcho else CONVERTER_B
        source, destination = (CONVERTER_A, peer) if toPeer else (peer, CONVERTER_A)
        network.spoof(payload, source, destination)
        self.assertLessEqual(len(network.delivered) - 1, MOST_EXCHANGED)


# On loopback.

QUIET = 1.0
"""Seconds with no datagram between the services after which they are done."""
WATCH_LIMIT = 6.0
"""Seconds to count for at most: today's loop would go on for ever."""


def requireRoot() -> None:
    if os.geteuid() != 0:
        raise SkipTest(
            "spoofing a source address (raw socket) and counting datagrams "
            "(packet socket on lo) need root"
        )


def spoof(payload: bytes, source: Address, destination: Address) -> None:
    """Send one UDP datagram over IPv4 with a source address of our choosing."""
    udp = struct.pack("!HHHH", source[1], destination[1], 8 + len(payload), 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,  # IPv4, a 20-byte header
        0,
        20 + len(udp) + len(payload),
        0,
        0,
        64,
        socket.IPPROTO_UDP,
        0,  # the kernel fills in the checksum (and a zero UDP one is "none")
        socket.inet_aton(source[0]),
        socket.inet_aton(destination[0]),
    )
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
        raw.sendto(ip + udp + payload, (destination[0], 0))


SO_ATTACH_FILTER = 26


def portsFilter(first: int, second: int) -> bytes:
    """
    A classic BPF program for a packet socket on C{lo}: keep IPv4 UDP
    datagrams from either port to the other, drop everything else in the
    kernel, so that other loopback traffic cannot fill our receive buffer.
    """
    program = [
        (0x30, 0, 0, 14 + 9),  # A = IP protocol
        (0x15, 0, 9, socket.IPPROTO_UDP),  # not UDP: drop
        (0xB1, 0, 0, 14),  # X = IP header length
        (0x48, 0, 0, 14),  # A = source port
        (0x15, 0, 2, first),
        (0x48, 0, 0, 16),  # A = destination port
        (0x15, 3, 4, second),  # first -> second: keep, else drop
        (0x15, 0, 3, second),
        (0x48, 0, 0, 16),
        (0x15, 0, 1, first),  # second -> first: keep, else drop
        (0x06, 0, 0, 0xFFFF),  # keep
        (0x06, 0, 0, 0),  # drop
    ]
    return b"".join(struct.pack("HBBI", *instruction) for instruction in program)


class LoopbackCounter:
    """Sees every IPv4 UDP datagram on C{lo} between two given ports."""

    def __init__(self, ports: set[int]) -> None:
        self._ports = ports
        self._socket = socket.socket(
            socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800)
        )
        first, second = sorted(ports)
        code = ctypes.create_string_buffer(portsFilter(first, second))
        self._program = struct.pack("HL", len(code.raw) // 8, ctypes.addressof(code))
        self._code = code  # the kernel copies it, but keep it alive until then
        self._socket.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, self._program)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._socket.bind(("lo", 0))
        self.seen: list[tuple[int, int, bytes]] = []

    def close(self) -> None:
        self._socket.close()

    def _parse(self, frame: bytes) -> tuple[int, int, bytes] | None:
        ip = frame[14:]  # lo's frames carry an all-zero Ethernet header
        if len(ip) < 28 or ip[9] != socket.IPPROTO_UDP:
            return None
        udp = ip[(ip[0] & 0x0F) * 4 :]
        source, destination, length = struct.unpack("!HHH", udp[:6])
        if {source, destination} != self._ports:
            return None
        return source, destination, udp[8:length]

    def watch(self, quiet: float = QUIET, limit: float = WATCH_LIMIT) -> None:
        """Record datagrams until none came for C{quiet} s, or C{limit} s passed."""
        deadline = time.monotonic() + limit
        lastSeen = time.monotonic()
        for _ in range(1_000_000):
            now = time.monotonic()
            wait = min(deadline - now, lastSeen + quiet - now)
            if wait <= 0:
                return
            readable, _, _ = select.select([self._socket], [], [], wait)
            if readable:
                frame, _ = self._socket.recvfrom(65535)
                datagram = self._parse(frame)
                if datagram is not None:
                    self.seen.append(datagram)
                    lastSeen = time.monotonic()


class LoopbackLoopTests(SynchronousTestCase):
    """Real C{twistd} processes on 127.0.0.1, default limits, one spoof each."""

    def setUp(self) -> None:
        requireRoot()

    def converter(self) -> Address:
        twistd = startTwistd(
            self, "temperature", ["--port", "0", "--interface", "127.0.0.1"]
        )
        return twistd.listener("udp").loopbackAddress

    def echo(self) -> Address:
        twistd = startTwistd(
            self,
            "echo",
            ["--port", "0", "--interface", "127.0.0.1", "--udp-port", "0"],
            listeners=2,
        )
        return twistd.listener("udp").loopbackAddress

    def exchanged(self, source: Address, destination: Address) -> list[bytes]:
        """Spoof C{100} from C{source} to C{destination}; what followed."""
        counter = LoopbackCounter({source[1], destination[1]})
        self.addCleanup(counter.close)
        spoof(b"100", source, destination)
        counter.watch()
        [first, *rest] = counter.seen
        self.assertEqual(first, (source[1], destination[1], b"100"))
        return [payload for _, _, payload in rest]

    def test_twoConverters(self) -> None:
        """
        Two converters: one datagram spoofed from B to A makes A answer B,
        and that is all (today's 81-datagram ping-pong is gone).
        """
        a, b = self.converter(), self.converter()
        self.assertEqual(self.exchanged(b, a), [b"100 C = 212 F\n"])

    def test_converterAndEcho(self) -> None:
        """
        A converter and a UDP echo, spoofed either way: at most three
        datagrams between them.
        """
        converter, echo = self.converter(), self.echo()
        self.assertEqual(self.exchanged(echo, converter), [b"100 C = 212 F\n"] * 2)
        self.assertEqual(
            self.exchanged(converter, echo),
            [b"100", b"100 C = 212 F\n", b"100 C = 212 F\n"],
        )
