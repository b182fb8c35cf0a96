"""
Tests for L{twisted_services.core.addresses.describeAddress}.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.core.addresses import describeAddress


class DescribeAddressTests(SynchronousTestCase):
    """L{describeAddress} gives short, parseable text for addresses."""

    def test_ipv4(self) -> None:
        """IPv4 is C{type:host:port}, the type in lower case."""
        self.assertEqual(
            describeAddress(IPv4Address("TCP", "127.0.0.1", 8888)), "tcp:127.0.0.1:8888"
        )
        self.assertEqual(
            describeAddress(IPv4Address("UDP", "0.0.0.0", 7)), "udp:0.0.0.0:7"
        )

    def test_ipv6(self) -> None:
        """IPv6 hosts are bracketed so the port stays unambiguous."""
        self.assertEqual(
            describeAddress(IPv6Address("UDP", "::1", 1314)), "udp:[::1]:1314"
        )

    def test_unix(self) -> None:
        """UNIX addresses give their path, as text even when it is bytes."""
        self.assertEqual(
            describeAddress(UNIXAddress("/run/echo.sock")), "unix:/run/echo.sock"
        )
        self.assertEqual(
            describeAddress(UNIXAddress(b"/run/\xffecho.sock")),
            "unix:/run/\ufffdecho.sock",
        )

    def test_unnamedUnix(self) -> None:
        """An unnamed UNIX socket (a connected client) is described as such."""
        self.assertEqual(describeAddress(UNIXAddress(None)), "unix:(unnamed)")

    def test_other(self) -> None:
        """Anything else is described by its C{str}."""
        self.assertEqual(describeAddress(("127.1.0.1", 53)), "('127.1.0.1', 53)")
