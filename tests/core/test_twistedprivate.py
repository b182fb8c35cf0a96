"""
Tests for L{twisted_services.core.twistedprivate}: each Twisted private name
we use still exists and still means what we rely on. A failure here after a
Twisted upgrade names the one function to rewrite.
"""

from __future__ import annotations

import shutil
import tempfile

from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.testing import MemoryReactor
from twisted.python import usage
from twisted.python.systemd import ListenFDs
from twisted.trial.unittest import SynchronousTestCase

from tests.support.tls import makeCA, writePEM
from twisted_services.core.twistedprivate import (
    getoptSpecification,
    sslContextFactoryOf,
    systemdListenFDs,
)


class SSLContextFactoryTests(SynchronousTestCase):
    """L{sslContextFactoryOf} reaches the context an C{ssl:} endpoint uses."""

    def test_contextOfParsedEndpoint(self) -> None:
        """An endpoint parsed from C{ssl:...} yields a factory with a context."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        certPEM, keyPEM = makeCA().issue("localhost")
        cert = writePEM(directory, "cert.pem", certPEM)
        key = writePEM(directory, "key.pem", keyPEM)
        endpoint = serverFromString(
            MemoryReactor(), f"ssl:0:privateKey={key}:certKey={cert}"
        )
        self.assertIsInstance(endpoint, SSL4ServerEndpoint)
        context = sslContextFactoryOf(endpoint).getContext()
        # The same (cached) context every connection will use.
        self.assertIs(sslContextFactoryOf(endpoint).getContext(), context)


class SystemdListenFDsTests(SynchronousTestCase):
    """L{systemdListenFDs} is the C{systemd:} endpoint parser's own reading."""

    def test_listenFDs(self) -> None:
        """It is a L{ListenFDs}, shared by every call."""
        self.assertIsInstance(systemdListenFDs(), ListenFDs)
        self.assertIs(systemdListenFDs(), systemdListenFDs())


class GetoptSpecificationTests(SynchronousTestCase):
    """L{getoptSpecification} says which options take a value."""

    def test_valuesMarked(self) -> None:
        """Parameters end in C{=} (long) or C{:} (short); flags do not."""

        class Options(usage.Options):
            optFlags = [["verbose", "v", "Say more."]]
            optParameters = [["server", "s", None, "Where."]]

        longOptions, shortOptions = getoptSpecification(Options())
        self.assertIn("server=", longOptions)
        self.assertIn("verbose", longOptions)
        self.assertIn("s:", shortOptions)
        self.assertIn("v", shortOptions.replace("s:", ""))
