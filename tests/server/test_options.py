"""
Tests for L{twisted_services.server.options}: option coercion and the
listening options every stream service shares.
"""

from __future__ import annotations

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.listeners import defaultListen
from tests.support.tap import parseOptions
from twisted_services.server.options import (
    DEFAULT_BACKLOG,
    ListenOptions,
    nonNegativeFloat,
    nonNegativeInt,
    portNumber,
    positiveFloat,
    positiveInt,
    tcpDescription,
)


class DemoOptions(ListenOptions):
    """Listening options for a service whose default port is 1234."""

    defaultPort = 1234


def parse(*arguments: str) -> DemoOptions:
    """L{DemoOptions} parsed from C{arguments}."""
    return parseOptions(DemoOptions(), *arguments)


class CoercionTests(SynchronousTestCase):
    """The option coercers accept what they document and refuse the rest."""

    def test_portNumber(self) -> None:
        """Port numbers run from 0 to 65535."""
        self.assertEqual([portNumber("0"), portNumber("65535")], [0, 65535])
        for bad in ("-1", "65536", "http", "", "1.5"):
            self.assertRaises(ValueError, portNumber, bad)

    def test_positiveInt(self) -> None:
        """Positive integers start at 1."""
        self.assertEqual(positiveInt("1"), 1)
        for bad in ("0", "-3", "two", "1.0"):
            self.assertRaises(ValueError, positiveInt, bad)

    def test_nonNegativeInt(self) -> None:
        """Non-negative integers start at 0 (chat's and http's "0: off" options)."""
        self.assertEqual([nonNegativeInt("0"), nonNegativeInt("7")], [0, 7])
        for bad in ("-1", "two", "1.0"):
            self.assertRaises(ValueError, nonNegativeInt, bad)

    def test_nonNegativeFloat(self) -> None:
        """Non-negative numbers include 0 but not infinity or NaN."""
        self.assertEqual([nonNegativeFloat("0"), nonNegativeFloat("2.5")], [0, 2.5])
        for bad in ("-0.1", "inf", "nan", "soon"):
            self.assertRaises(ValueError, nonNegativeFloat, bad)

    def test_positiveFloat(self) -> None:
        """Positive numbers exclude 0, infinity and NaN."""
        self.assertEqual(positiveFloat("0.5"), 0.5)
        for bad in ("0", "-1", "inf", "nan", "lots"):
            self.assertRaises(ValueError, positiveFloat, bad)

    def test_messagesSayWhatIsWanted(self) -> None:
        """A value that is not a number at all gets the same plain message."""
        for coercer, wanted in [
            (portNumber, "is not a port number (0-65535)"),
            (positiveInt, "is not a whole number of at least 1"),
            (nonNegativeFloat, "is not a finite number, 0 or more"),
            (positiveFloat, "is not a finite number above 0"),
        ]:
            error = self.assertRaises(ValueError, coercer, "abc")
            self.assertEqual(str(error), f"'abc' {wanted}")

    def test_coerceDocs(self) -> None:
        """Each coercer documents its range for C{--help}."""
        for coercer in (portNumber, positiveInt, nonNegativeFloat, positiveFloat):
            self.assertTrue(coercer.coerceDoc)


class TCPDescriptionTests(SynchronousTestCase):
    """L{tcpDescription} turns C{--port}/C{--interface} into an endpoint string."""

    def test_dualStack(self) -> None:
        """
        Without an interface, on a host with IPv6, the description listens
        on C{::}, which serves IPv4 clients too.
        """
        self.assertEqual(
            tcpDescription(8888, None, ipv6=True), "tcp6:8888:interface=\\:\\:"
        )
        self.assertEqual(
            tcpDescription(8888, "", ipv6=True), "tcp6:8888:interface=\\:\\:"
        )

    def test_withoutIPv6(self) -> None:
        """On a host without IPv6 the default is plain C{tcp:PORT}."""
        self.assertEqual(tcpDescription(8888, None, ipv6=False), "tcp:8888")

    def test_ipv4Only(self) -> None:
        """C{0.0.0.0} keeps to IPv4, on any host."""
        self.assertEqual(
            tcpDescription(8888, "0.0.0.0", ipv6=True), "tcp:8888:interface=0.0.0.0"
        )

    def test_ipv4Interface(self) -> None:
        """An IPv4 interface becomes the C{interface} argument of C{tcp:}."""
        self.assertEqual(tcpDescription(0, "127.0.0.1"), "tcp:0:interface=127.0.0.1")

    def test_ipv6Interface(self) -> None:
        """An IPv6 interface selects C{tcp6:} with its colons escaped."""
        self.assertEqual(tcpDescription(8888, "::1"), "tcp6:8888:interface=\\:\\:1")


class ListenOptionsTests(SynchronousTestCase):
    """L{ListenOptions} collects every endpoint description to listen on."""

    def test_defaultPort(self) -> None:
        """With no options the service listens on its default TCP port."""
        self.assertEqual(parse()["listen"], defaultListen(1234))

    def test_port(self) -> None:
        """C{--port} replaces the default port."""
        self.assertEqual(parse("--port", "0")["listen"], defaultListen(0))
        self.assertEqual(parse("-p", "80")["listen"], defaultListen(80))

    def test_interface(self) -> None:
        """C{--interface} applies to the default port too."""
        self.assertEqual(
            parse("--interface", "127.0.0.1")["listen"],
            ["tcp:1234:interface=127.0.0.1"],
        )

    def test_ipv6Interface(self) -> None:
        """An IPv6 C{--interface} listens with C{tcp6:}."""
        self.assertEqual(
            parse("--port", "80", "-i", "::")["listen"], ["tcp6:80:interface=\\:\\:"]
        )

    def test_repeatedListen(self) -> None:
        """Every C{--listen} is used, in order, instead of the default port."""
        options = parse("--listen", "tcp:1", "--listen", "unix:/tmp/s")
        self.assertEqual(options["listen"], ["tcp:1", "unix:/tmp/s"])

    def test_portAndListen(self) -> None:
        """C{--port} and C{--listen} together listen on both."""
        options = parse("--listen", "unix:/tmp/s", "--port", "9", "-i", "::1")
        self.assertEqual(options["listen"], ["tcp6:9:interface=\\:\\:1", "unix:/tmp/s"])

    def test_interfaceWithOnlyListen(self) -> None:
        """C{--interface} without C{--port} next to C{--listen} is an error."""
        self.assertRaises(UsageError, parse, "--listen", "tcp:1", "--interface", "::1")

    def test_badPort(self) -> None:
        """A port outside 0-65535 is a usage error."""
        self.assertRaises(UsageError, parse, "--port", "65536")
        self.assertRaises(UsageError, parse, "--port", "eighty")

    def test_instancesIndependent(self) -> None:
        """Two option objects do not share their list of listeners."""
        parse("--listen", "tcp:1")
        self.assertEqual(parse()["listen"], defaultListen(1234))

    def test_badPortSaysWhy(self) -> None:
        """
        C{--port abc} names the option and what it takes, not C{int()}'s
        C{invalid literal}.
        """
        error = self.assertRaises(UsageError, parse, "--port", "abc")
        self.assertEqual(str(error), "--port: 'abc' is not a port number (0-65535)")

    def test_backlog(self) -> None:
        """C{--backlog} defaults to 1024, and takes a positive number."""
        self.assertEqual(DEFAULT_BACKLOG, 1024)
        self.assertEqual(parse()["backlog"], DEFAULT_BACKLOG)
        self.assertEqual(parse("--backlog", "4096")["backlog"], 4096)
        error = self.assertRaises(UsageError, parse, "--backlog", "0")
        self.assertEqual(
            str(error), "--backlog: '0' is not a whole number of at least 1"
        )
