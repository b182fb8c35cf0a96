"""
Walking the application's service tree, for what acts on every service of
one kind in the process (listeners to describe, log files to reopen).
"""

from __future__ import annotations

from collections.abc import Iterator

from twisted.application.service import IService, IServiceCollection


def rootOf(service: IService) -> IService:
    """The top of the tree C{service} belongs to."""
    while service.parent is not None:
        service = service.parent
    return service


def walk(service: IService) -> Iterator[IService]:
    """C{service} and every service below it, depth first, in order."""
    yield service
    collection = IServiceCollection(service, None)
    if collection is not None:
        for child in collection:
            yield from walk(child)
