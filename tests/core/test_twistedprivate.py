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
from twisted.logger import globalLogPublisher, textFileLogObserver
from twisted.python import usage
from twisted.python.logfile import LogFile
from twisted.python.systemd import ListenFDs
from twisted.trial.unittest import SynchronousTestCase

from tests.support.tls import makeCA, writePEM
from twisted_services.core.twistedprivate import (
    getoptSpecification,
    openLogFiles,
    optionSynonyms,
    splitDescription,
    sslContextFactoryOf,
    systemdListenFDs,
    unixPathOf,
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


class UnixPathTests(SynchronousTestCase):
    """L{unixPathOf} reaches the path a C{unix:} endpoint binds."""

    def test_path(self) -> None:
        """The path of a parsed description, as given."""
        endpoint = serverFromString(MemoryReactor(), "unix:/run/demo/echo.sock")
        self.assertEqual(unixPathOf(endpoint), "/run/demo/echo.sock")


class SplitDescriptionTests(SynchronousTestCase):
    """L{splitDescription} splits as C{serverFromString} does."""

    def test_escapes(self) -> None:
        """Positional and keyword arguments, escaped colons undone."""
        self.assertEqual(
            splitDescription("tcp6:8888:interface=\\:\\::backlog=5"),
            (["tcp6", "8888"], {"interface": "::", "backlog": "5"}),
        )


class OpenLogFilesTests(SynchronousTestCase):
    """L{openLogFiles} finds the log files twistd's observers write to."""

    def test_twistdLogFile(self) -> None:
        """A text observer on a L{LogFile}, as twistd --logfile makes, is found."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        logFile = LogFile.fromFullPath(f"{directory}/twistd.log")
        self.addCleanup(logFile.close)
        observer = textFileLogObserver(logFile)
        self.assertNotIn(logFile, openLogFiles())
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.assertIn(logFile, openLogFiles())

    def test_synonyms(self) -> None:
        """Short and long names both map to the option's long name."""

        class Options(usage.Options):
            optParameters = [["server", "s", None, "Where."]]

        synonyms = optionSynonyms(Options())
        self.assertEqual(synonyms["s"], "server")
        self.assertEqual(synonyms["server"], "server")
