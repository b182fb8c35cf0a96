"""
Deprecated location of the journald observer, kept for one release so that
unit files naming C{--logger=twisted_services.journal.observer} still start:
use L{twisted_services.systemd.journal.observer}.
"""

from twisted_services.systemd.journal import observer

__all__ = ["observer"]
