"""
Log files that log rotation replaces: logrotate renames a file and sends
SIGHUP (or SIGUSR1), and every service holding such a file must open it
again by name, or it goes on writing to the renamed one.
"""

from __future__ import annotations

from zope.interface import Interface


class IReopenable(Interface):
    """
    A service in the application's service tree that holds log files open:
    on SIGHUP the process calls L{reopen} on every such service.
    """

    def reopen() -> None:
        """
        Flush and close the files held, and open them again by name. Must not
        raise: a file that cannot be reopened is logged and the service goes
        on (writing where it can).
        """
