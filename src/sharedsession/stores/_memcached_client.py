"""Connections to memcached: what ``SESSION_MEMCACHED`` names, bounded by a timeout.

A pymemcache ``Client`` holds one socket and is not safe to share between
threads, and clients made without a timeout wait forever on a frozen server.
So the store never uses a ``Client`` or ``PooledClient`` it is given: it opens
its own connections of the same class with the same server and settings,
their timeouts capped, one per operation in flight. ``HashClient`` and
``RetryingClient`` are refused: they hide failures (a server in a
``HashClient``'s retry window answers every command with a default value, so
a logout could be skipped in silence), and neither is safe to share between
threads in its common configurations.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

from pymemcache.client.base import Client
from pymemcache.client.base import PooledClient
from pymemcache.client.base import normalize_server_spec
from pymemcache.client.hash import HashClient
from pymemcache.client.retrying import RetryingClient

from ..errors import ConfigurationError

DEFAULT_SERVER = "127.0.0.1:11211"
DEFAULT_TIMEOUT = 2.0

#: Settings of a given client that the store's own connections keep.
_KEPT = ("no_delay", "socket_module", "socket_keepalive", "key_prefix", "tls_context", "encoding")


def _capped(value: float | None, limit: float) -> float:
    return limit if value is None else min(value, limit)


def _factory(setting: Any, timeout: float) -> tuple[Callable[[], Any], Any]:
    """How to open one connection for ``setting``, and the server it reaches."""
    if isinstance(setting, str):
        try:
            server = normalize_server_spec(setting.strip())
        except ValueError:
            server = None
        if not setting.strip() or server is None:
            raise ConfigurationError(
                f"SESSION_MEMCACHED = {setting!r} is not a memcached address: use"
                " 'host:port' (e.g. '127.0.0.1:11211'), 'host', '[::1]:11211' or"
                " 'unix:/path/to/memcached.sock', or pass a pymemcache client."
            )
        cls: Any = Client
        options: dict[str, Any] = {}
    elif isinstance(setting, (Client, PooledClient)):
        server = setting.server
        cls = setting.client_class if isinstance(setting, PooledClient) else type(setting)
        options = {name: getattr(setting, name) for name in _KEPT}
        timeout_of = (setting.connect_timeout, setting.timeout)
        options["connect_timeout"] = _capped(timeout_of[0], timeout)
        options["timeout"] = _capped(timeout_of[1], timeout)
    elif isinstance(setting, (HashClient, RetryingClient)):
        raise ConfigurationError(
            f"SESSION_MEMCACHED is a pymemcache {type(setting).__name__}, which this store"
            " does not use: it answers commands with default values while a server is"
            " marked dead, so a logout or a save could be skipped without an error. Pass"
            " one server's 'host:port' (or a Client or PooledClient); for sessions spread"
            " over several servers, use SESSION_TYPE = 'redis' (Sentinel or Cluster)."
        )
    else:
        raise ConfigurationError(
            "SESSION_MEMCACHED must be a 'host:port' string or a pymemcache Client or"
            " PooledClient, got"
            f" {type(setting).__module__}.{type(setting).__qualname__}. python-memcached"
            " and pylibmc clients are not supported: pass the server's address instead."
        )
    options.setdefault("connect_timeout", timeout)
    options.setdefault("timeout", timeout)
    # Every reply is read: an add, touch or delete without one says nothing.
    options["default_noreply"] = False

    def make() -> Any:
        return cls(server, **options)

    return make, server


class Connections:
    """Connections to memcached, one per operation in flight, reused afterwards.

    :param setting: ``SESSION_MEMCACHED``: an address or a pymemcache client.
    :param timeout: Seconds to connect and to wait for each reply.
    """

    def __init__(self, setting: Any, timeout: float) -> None:
        self._make, server = _factory(setting, timeout)
        #: The server's host (``None`` for a Unix socket).
        self.host: str | None = server[0] if isinstance(server, tuple) else None
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._pid = os.getpid()
        # A store dropped without close() closes its sockets when collected.
        weakref.finalize(self, _close_all, self._idle)

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """A client for one operation; a connection that failed is closed, not reused."""
        with self._lock:
            if os.getpid() != self._pid:
                # A forked worker must not share its parent's sockets (closing
                # this process's copies leaves the parent's connections open).
                _close_all(self._idle)
                self._pid = os.getpid()
            client = self._idle.pop() if self._idle else None
        if client is None:
            client = self._make()
        try:
            yield client
        except BaseException:
            client.close()
            raise
        with self._lock:
            self._idle.append(client)

    def drop_idle(self) -> None:
        """Close every idle connection (after one was found dead: a restart kills all)."""
        with self._lock:
            _close_all(self._idle)

    def close(self) -> None:
        self.drop_idle()


def _close_all(clients: list[Any]) -> None:
    idle = list(clients)
    clients.clear()
    for client in idle:
        client.close()
