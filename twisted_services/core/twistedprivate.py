"""
Every Twisted private name this package relies on, each behind one function
here, so that a Twisted upgrade that renames one breaks this module's tests
and nothing else goes looking.
"""

from __future__ import annotations

from twisted.internet import endpoints
from twisted.internet.interfaces import IOpenSSLContextFactory
from twisted.logger import globalLogPublisher
from twisted.python import usage
from twisted.python.logfile import BaseLogFile
from twisted.python.systemd import ListenFDs


def sslContextFactoryOf(
    endpoint: endpoints.SSL4ServerEndpoint,
) -> IOpenSSLContextFactory:
    """
    The context factory an C{ssl:} server endpoint will listen with.

    Needed to build the OpenSSL context at start-up (so a bad key fails
    there, not at every handshake) and to install an ALPN selector on the
    very context every connection uses.
    """
    return endpoint._sslContextFactory


def systemdListenFDs() -> ListenFDs:
    """
    The sockets systemd passed, as the C{systemd:} endpoint parser read them.

    The environment can be read only once (the first reader deletes
    C{LISTEN_PID} and C{LISTEN_FDS}), and importing
    C{twisted.internet.endpoints} is that reading: sharing the parser's copy
    makes a socket adopted by name here the one C{systemd:name=...} means.
    """
    return endpoints._SystemdParser._sddaemon


def getoptSpecification(options: usage.Options) -> tuple[list[str], str]:
    """
    The long options (C{"name="} for those taking a value) and the short
    option letters (C{"x:"} likewise) an L{usage.Options} hands to
    C{getopt}: what a parser needs to know which options take a value.
    """
    return options.longOpt, options.shortOpt


def optionSynonyms(options: usage.Options) -> dict[str, str]:
    """
    Every name an L{usage.Options} accepts for an option (long, short, and
    the flags' C{no-} forms), each mapped to the option's long name.
    """
    return options.synonyms


def unixPathOf(endpoint: endpoints.UNIXServerEndpoint) -> str:
    """
    The path a C{unix:} server endpoint will bind, to check its directory
    before Twisted's lock file fails there with a confusing errno.
    """
    return endpoint._address


def splitDescription(description: str) -> tuple[list[str], dict[str, str]]:
    """
    The positional arguments (the endpoint type first) and the C{key=value}
    arguments of an endpoint description, split as C{serverFromString}
    splits them, escapes and all.
    """
    args, kwargs = endpoints._parse(description)
    return args, kwargs


def openLogFiles() -> list[BaseLogFile]:
    """
    The log files the global log publisher's observers write to: twistd's
    C{--logfile}, which twistd opens as a L{BaseLogFile} and hands to a
    C{FileLogObserver} it keeps to itself, so that SIGHUP can reopen it.
    """
    files = []
    for observer in globalLogPublisher._observers:
        outFile = getattr(observer, "_outFile", None)
        if isinstance(outFile, BaseLogFile):
            files.append(outFile)
    return files
