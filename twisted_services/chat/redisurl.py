"""
Where the chat's Redis is, from a URL in the forms Redis's own clients take
(C{redis://host:6379/0}, C{rediss://} for TLS, C{unix:/path?db=0}), and its
password, read from a file or the environment: never from the command line,
where every user of the host can read it in the process list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from twisted.internet.endpoints import (
    HostnameEndpoint,
    UNIXClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS

PASSWORD_VARIABLE = "TWISTED_SERVICES_REDIS_PASSWORD"
"""The environment variable a password is read from, if no file is named."""

DEFAULT_PORT = 6379


class RedisURLError(ValueError):
    """A Redis URL that cannot be used, or a password that cannot be read."""


@dataclass(frozen=True)
class RedisAddress:
    """
    One Redis server: C{kind} is C{tcp}, C{tls} or C{unix}; C{host} and
    C{port} for the first two, C{path} for the last; C{db} the database
    number and C{username} an ACL user (or L{None} for the default user).
    """

    kind: str
    host: str = ""
    port: int = DEFAULT_PORT
    path: str = ""
    db: int = 0
    username: str | None = None

    def describe(self) -> str:
        """The address as it is logged: the URL without any credentials."""
        if self.kind == "unix":
            return f"unix:{self.path}?db={self.db}"
        scheme = "rediss" if self.kind == "tls" else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.db}"

    def endpoint(self, reactor: object, timeout: float) -> IStreamClientEndpoint:
        """
        A client endpoint for this address, giving up on a connection attempt
        after C{timeout} seconds. TLS checks the server's certificate for
        C{host} against the system's trust store.
        """
        if self.kind == "unix":
            return UNIXClientEndpoint(reactor, self.path, timeout=timeout)
        tcp = HostnameEndpoint(reactor, self.host, self.port, timeout=timeout)
        if self.kind == "tcp":
            return tcp
        return wrapClientTLS(optionsForClientTLS(self.host), tcp)


def _database(text: str) -> int:
    if not text.isdigit():
        raise RedisURLError(f"database {text!r} is not a number")
    return int(text)


def parseRedisURL(url: str) -> RedisAddress:
    """
    Parse C{redis://[user@]host[:port][/db]}, C{rediss://...} or
    C{unix:/path[?db=N]} (also C{unix:///path}).

    @raise RedisURLError: for any other form, and for a URL holding a
        password (see L{readPassword}).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise RedisURLError(f"{url!r} is not a redis://, rediss:// or unix: URL")
    if parts.password is not None:
        raise RedisURLError(
            "the URL holds a password: give it in --redis-password-file or "
            f"${PASSWORD_VARIABLE} instead, out of the process list"
        )
    username = unquote(parts.username) if parts.username else None
    query = parse_qs(parts.query)
    if parts.scheme == "unix":
        if not parts.path.startswith("/"):
            raise RedisURLError(f"{url!r}: a unix: URL needs an absolute path")
        db = _database(query.get("db", ["0"])[0])
        return RedisAddress("unix", path=parts.path, db=db, username=username)
    if not parts.hostname:
        raise RedisURLError(f"{url!r} names no host")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise RedisURLError(f"{url!r} has an invalid port") from None
    path = parts.path.strip("/")
    db = _database(path) if path else 0
    kind = "tls" if parts.scheme == "rediss" else "tcp"
    return RedisAddress(kind, parts.hostname, port, db=db, username=username)


def readPassword(
    path: str | None, environ: dict[str, str] | os._Environ[str] = os.environ
) -> str | None:
    """
    The Redis password: the first line of the file at C{path} if one is
    named, else C{$TWISTED_SERVICES_REDIS_PASSWORD}, else L{None} (no AUTH).

    @raise RedisURLError: if the file cannot be read or its first line is
        empty.
    """
    if path is None:
        return environ.get(PASSWORD_VARIABLE) or None
    try:
        with open(path, encoding="utf-8") as file:
            password = file.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise RedisURLError(
            f"cannot read Redis password file {path}: {reason}"
        ) from None
    if not password:
        raise RedisURLError(f"Redis password file {path} has an empty first line")
    return password
