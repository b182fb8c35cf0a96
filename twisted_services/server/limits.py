"""
The descriptor limit (C{ulimit -n}) against C{--max-connections}: every
connection is a descriptor, and a process at its limit fails to accept
(EMFILE) however many connections it allows.
"""

from __future__ import annotations

import resource
from collections.abc import Callable

from twisted.logger import Logger

# Descriptors the process needs besides its connections: listeners, log
# files, the reactor's epoll and waker, the systemd notify socket, TLS keys.
HEADROOM = 64

_log = Logger()

Limits = tuple[int, int]


def reserveDescriptors(
    connections: int,
    getrlimit: Callable[[int], Limits] = resource.getrlimit,
    setrlimit: Callable[[int, Limits], None] = resource.setrlimit,
) -> int:
    """
    Raise the soft descriptor limit toward the hard one, as far as
    C{connections} plus L{HEADROOM} need, and warn (once: call this once per
    process) if it still cannot hold them.

    @return: the soft limit now in force.
    """
    needed = connections + HEADROOM
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as error:
            _log.warn(
                "cannot raise the descriptor limit from {soft} to {target}: {error}",
                soft=soft,
                target=target,
                error=error,
            )
    if soft != resource.RLIM_INFINITY and soft < needed:
        _log.warn(
            "the descriptor limit (ulimit -n) is {soft}, its hard limit {hard}: "
            "too few for {connections} connections (--max-connections) and "
            "{headroom} more; connections past about {usable} will fail. Raise "
            "LimitNOFILE= (systemd) or ulimit -Hn, or lower --max-connections",
            soft=soft,
            hard=hard,
            connections=connections,
            headroom=HEADROOM,
            usable=max(soft - HEADROOM, 0),
        )
    return soft
