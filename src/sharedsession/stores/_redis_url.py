"""Redis URLs for every topology redis-py supports, blocking or asyncio.

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) and
  ``unix://[[user]:password@]/path/to/redis.sock[?db=N]``: a standalone server,
  as ``redis.from_url`` reads them.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``:
  the master of ``service``, found through the listed Sentinels
  (``rediss+sentinel://`` for TLS to the servers). The password is the
  server's; Sentinels are asked without one unless
  ``?sentinel_password=...`` is given.
- ``redis+cluster://[[user]:password@]host:port[,host:port...]``: a Redis
  Cluster, discovered from any of the listed nodes (``rediss+cluster://`` for TLS).
"""

from __future__ import annotations

import functools
import inspect
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ..errors import ConfigurationError

#: Seconds a store call may wait on Redis before it fails with ``StoreUnavailable``.
DEFAULT_TIMEOUT = 2.0
#: Connections per store and process (redis-py's own pool default).
DEFAULT_MAX_CONNECTIONS = 100

STANDALONE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


@dataclass(frozen=True)
class _Parsed:
    hosts: list[tuple[str, int]]
    username: str | None
    password: str | None
    path: list[str]
    query: dict[str, str]
    tls: bool


def _parse_hosts(url: str, scheme: str, default_port: int) -> _Parsed:
    rest = url[len(scheme) + 3 :]
    netloc, _, tail = rest.partition("/")
    path_part, _, query_part = tail.partition("?")
    if "?" in netloc:
        netloc, _, query_part = netloc.partition("?")
    username = password = None
    if "@" in netloc:
        credentials, _, netloc = netloc.rpartition("@")
        user, sep, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
    hosts = []
    for item in netloc.split(","):
        if not item:
            continue
        host, sep, port = item.rpartition(":") if not item.endswith("]") else (item, "", "")
        if not sep:
            host, port = item, str(default_port)
        try:
            hosts.append((host.strip("[]"), int(port)))
        except ValueError:
            raise ValueError(f"{item!r} is not host:port") from None
    if not hosts:
        raise ValueError("no host:port given")
    query = {k: v[-1] for k, v in parse_qs(query_part).items()}
    return _Parsed(
        hosts, username, password, [p for p in path_part.split("/") if p], query, "rediss" in scheme
    )


def _retry(asyncio: bool) -> Any:
    # Connection errors are retried once, quickly (a failover, a dropped idle
    # connection); timeouts are not, so a call never waits longer than the timeout.
    if asyncio:
        from redis.asyncio.retry import Retry as AsyncRetry

        return AsyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 1, (RedisConnectionError,))
    from redis.retry import Retry

    return Retry(ExponentialBackoff(cap=0.2, base=0.02), 1, (RedisConnectionError,))


#: The connection pools this module made (a store's own, never the app's).
_OWN_POOLS: weakref.WeakSet[Any] = weakref.WeakSet()


def _own(client: Any) -> Any:
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        _OWN_POOLS.add(pool)
    return client


#: The Sentinel managers this module made from a URL (their clients are the store's).
_OWN_SENTINELS: weakref.WeakSet[Any] = weakref.WeakSet()


def own_sentinels(client: Any) -> list[Any]:
    """The clients asking Sentinels for ``client``'s master when this module
    made them for a store alone (closed with it); ``[]`` otherwise."""
    manager: Any = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    return list(manager.sentinels) if manager in _OWN_SENTINELS else []


def owns_pool(client: Any) -> bool:
    """Whether ``client``'s pool was made here for a store alone: a store may keep
    such connections between commands; the app's own pool gets each one back."""
    return getattr(client, "connection_pool", None) in _OWN_POOLS


#: How to make again an asyncio client made here (by :func:`connect` or
#: :func:`bounded_client`), for another event loop.
_REMAKES: weakref.WeakKeyDictionary[Any, Callable[[], Any]] = weakref.WeakKeyDictionary()


def _remade_by(client: Any, remake: Callable[[], Any]) -> Any:
    _REMAKES[client] = remake
    return client


def made_here(client: Any) -> bool:
    """Whether the asyncio ``client`` was made here to be made again (a Cluster
    from a URL has no pool :func:`owns_pool` knows)."""
    return client in _REMAKES


def another(client: Any) -> Any | None:
    """A new asyncio client like ``client``, for another event loop: the same
    servers and settings, none of its connections (an asyncio connection, and
    the pool's lock, work only on the loop that made them).

    A client made here from a URL or from the app's client is made again; the
    app's own standalone client gets a pool of its own with its settings.
    ``None`` for any other client of the app's: a Sentinel or Cluster client
    (its Sentinel connections or nodes cannot be copied from outside), a
    single connection, or a pool of a kind not known here.
    """
    remake = _REMAKES.get(client)
    if remake is not None:
        return remake()
    from redis.asyncio import BlockingConnectionPool
    from redis.asyncio import ConnectionPool

    pool: Any = getattr(client, "connection_pool", None)
    if type(pool) not in (ConnectionPool, BlockingConnectionPool):
        return None  # (a Sentinel's, or another kind with settings of its own)
    if getattr(client, "connection", None) is not None:
        return None  # a single connection
    return _copy(client, pool, _settings(pool), pool.max_connections)


def connect(
    url: str,
    *,
    asyncio: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    **options: Any,
) -> Any:
    """Make a redis-py client for ``url``.

    :param url: One of the forms in this module's docstring.
    :param asyncio: Make a ``redis.asyncio`` client.
    :param timeout: Socket and connect timeout in seconds.
    :param max_connections: The pool's size (per node on a Cluster).
    :param options: Further client options; they override the defaults.
    :raises ValueError: The URL is not one of the supported forms.
    """
    scheme = urlsplit(url).scheme.lower()
    settings = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": _retry(asyncio),
        "max_connections": max_connections,
        **options,
    }
    made = _connect(url, scheme, asyncio, settings)
    if asyncio:  # another event loop gets its own (see another())
        again = functools.partial(
            connect, url, asyncio=True, timeout=timeout, max_connections=max_connections, **options
        )
        _remade_by(made, again)
    return made


def _connect(url: str, scheme: str, asyncio: bool, options: dict[str, Any]) -> Any:
    if scheme in STANDALONE_SCHEMES:
        if asyncio:
            import redis.asyncio

            return _own(redis.asyncio.from_url(url, **options))
        import redis

        return _own(redis.from_url(url, **options))
    if scheme in SENTINEL_SCHEMES:
        return _own(_sentinel(_parse_hosts(url, scheme, 26379), asyncio, options))
    if scheme in CLUSTER_SCHEMES:
        return _cluster(_parse_hosts(url, scheme, 6379), asyncio, options)
    raise ValueError(
        f"unsupported scheme {scheme!r}; use redis://, rediss://, unix://,"
        " redis+sentinel:// or redis+cluster://"
    )


def _sentinel(parsed: _Parsed, asyncio: bool, options: dict[str, Any]) -> Any:
    if not parsed.path:
        raise ValueError("a Sentinel URL names the service: redis+sentinel://host:port/service")
    service = parsed.path[0]
    db = int(parsed.path[1]) if len(parsed.path) > 1 else 0
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
    }
    if "sentinel_password" in parsed.query:
        sentinel_kwargs["password"] = parsed.query["sentinel_password"]
    server = {**options, "db": db, "username": parsed.username, "password": parsed.password}
    if parsed.tls:
        server["ssl"] = True
    if asyncio:
        from redis.asyncio.sentinel import Sentinel as AsyncSentinel

        found: Any = AsyncSentinel(  # type: ignore[no-untyped-call]
            parsed.hosts, sentinel_kwargs=sentinel_kwargs
        )
    else:
        from redis.sentinel import Sentinel

        found = Sentinel(parsed.hosts, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    _OWN_SENTINELS.add(found)
    return found.master_for(service, **server)


def _cluster(parsed: _Parsed, asyncio: bool, options: dict[str, Any]) -> Any:
    if parsed.path:
        raise ValueError("Redis Cluster has only database 0; drop the /db from the URL")
    kwargs = {**options, "username": parsed.username, "password": parsed.password}
    if parsed.tls:
        kwargs["ssl"] = True
    if asyncio:
        from redis.asyncio.cluster import ClusterNode as AsyncNode
        from redis.asyncio.cluster import RedisCluster as AsyncCluster

        return AsyncCluster(startup_nodes=[AsyncNode(h, p) for h, p in parsed.hosts], **kwargs)
    from redis.cluster import ClusterNode
    from redis.cluster import RedisCluster

    nodes = [ClusterNode(h, p) for h, p in parsed.hosts]  # type: ignore[no-untyped-call]
    return RedisCluster(startup_nodes=nodes, **kwargs)


# Pool settings redis-py derives itself; a copied pool must derive them anew.
_DERIVED = ("connection_pool", "maint_notifications_pool_handler", "orig_")


def is_sentinel(client: Any) -> bool:
    """Whether ``client`` finds its master through Sentinel (``Sentinel.master_for``)."""
    from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
    from redis.sentinel import SentinelConnectionPool

    pool = getattr(client, "connection_pool", None)
    return isinstance(pool, (SentinelConnectionPool, AsyncSentinelPool))


def is_cluster(client: Any) -> bool:
    """Whether ``client`` is a redis-py Cluster client (blocking or asyncio)."""
    return hasattr(client, "get_nodes") and not hasattr(client, "connection_pool")


def client_from_setting(
    value: Any, timeout: float, max_connections: int, *, asyncio: bool = False
) -> Any:
    """The client for ``SESSION_REDIS``: a URL, or a redis-py client of the right kind.

    :raises ConfigurationError: Neither, or a client for the other kind of app;
        the message says what to pass (and never holds the URL's password).
    """
    if isinstance(value, str):
        try:
            return connect(value, asyncio=asyncio, timeout=timeout, max_connections=max_connections)
        except ValueError as exc:
            raise ConfigurationError(
                f"SESSION_REDIS = {redact(value)!r} is not a usable Redis URL"
                f" ({redact(str(exc))}); use a form such as redis://host:6379/0,"
                " rediss://host:6380/0, unix:///path/redis.sock,"
                " redis+sentinel://host:26379/mymaster/0 or redis+cluster://host:7000."
            ) from None
    kind = "an asyncio" if asyncio else "a blocking"
    execute = getattr(value, "execute_command", None)
    if execute is None or not hasattr(value, "register_script"):
        raise ConfigurationError(
            f"SESSION_REDIS must be a Redis URL or {kind} redis-py client, got"
            f" {type(value).__name__}."
        )
    if inspect.iscoroutinefunction(execute) != asyncio:
        raise ConfigurationError(
            f"SESSION_REDIS must be {kind} redis-py client here"
            + (
                " (redis.asyncio.Redis, or a URL): the app is async."
                if asyncio
                else " (redis.Redis, Sentinel(...).master_for(...), redis.cluster.RedisCluster,"
                " or a URL): Flask calls sessions synchronously."
            )
        )
    return bounded_client(value, timeout, asyncio=asyncio, max_connections=max_connections)


def bounded_client(
    client: Any, timeout: float, *, asyncio: bool = False, max_connections: int | None = None
) -> Any:
    """A client for the same server(s) as ``client``, with every call bounded by ``timeout``.

    A client made without options (Flask-Session's classic
    ``redis.Redis(host=...)``) waits on a frozen server for redis-py's default
    socket timeout, and retries timeouts several times: about a minute in all.
    A session store must answer 503 within ``SESSION_REDIS_TIMEOUT``, so the
    store gets its own pool with the same connection settings, a socket
    timeout no longer than ``timeout`` and the store's retry policy (one quick
    retry of a refused connection, none of a timeout). The app's own client is
    left as it is. Cluster clients keep their nodes; only their timeouts are
    capped, in place.
    """
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        _cap_cluster_timeouts(client, timeout)
        return client
    kwargs = _settings(pool)
    for name in ("socket_timeout", "socket_connect_timeout"):
        current = kwargs.get(name)
        kwargs[name] = timeout if current is None else min(current, timeout)
    kwargs["retry"] = _retry(asyncio)
    made = _copy(client, pool, kwargs, max_connections or pool.max_connections)
    if asyncio and not hasattr(pool, "sentinel_manager"):
        # (A Sentinel pool's copy would share the app's Sentinel connections.)
        again = functools.partial(
            bounded_client, client, timeout, asyncio=True, max_connections=max_connections
        )
        _remade_by(made, again)
    return made


def _settings(pool: Any) -> dict[str, Any]:
    """The connection settings of ``pool`` that a copy of it is made with."""
    return {
        name: value
        for name, value in pool.connection_kwargs.items()
        if not name.startswith(_DERIVED)
    }


def _copy(client: Any, pool: Any, kwargs: dict[str, Any], max_connections: int) -> Any:
    """A client like ``client`` on a pool of its own (the store's: closed with it)."""
    shape: dict[str, Any] = {
        "connection_class": pool.connection_class,
        "max_connections": max_connections,
    }
    if isinstance(pool, _blocking_pools()):
        shape["timeout"] = pool.timeout  # how long a call waits for a free connection
    if hasattr(pool, "sentinel_manager"):
        made = type(pool)(
            pool.service_name,
            pool.sentinel_manager,
            is_master=pool.is_master,
            check_connection=pool.check_connection,
            **shape,
            **kwargs,
        )
    else:
        made = type(pool)(**shape, **kwargs)
    private = type(client)(connection_pool=made)
    # The pool is the store's own: closing the store closes it.
    private.auto_close_connection_pool = True
    return _own(private)


def _blocking_pools() -> tuple[type[Any], ...]:
    from redis import BlockingConnectionPool
    from redis.asyncio import BlockingConnectionPool as AsyncBlockingConnectionPool

    return (BlockingConnectionPool, AsyncBlockingConnectionPool)


def _cap_cluster_timeouts(client: Any, timeout: float) -> None:
    kwargs_sets = []
    nodes_manager = getattr(client, "nodes_manager", None)
    if nodes_manager is not None:  # blocking RedisCluster
        kwargs_sets.append(nodes_manager.connection_kwargs)
        for node in client.get_nodes():
            if node.redis_connection is not None:
                kwargs_sets.append(node.redis_connection.connection_pool.connection_kwargs)
    elif hasattr(client, "get_nodes"):  # asyncio RedisCluster
        kwargs_sets.append(client.connection_kwargs)
        kwargs_sets.extend(node.connection_kwargs for node in client.get_nodes())
    for kwargs in kwargs_sets:
        for name in ("socket_timeout", "socket_connect_timeout"):
            current = kwargs.get(name)
            kwargs[name] = timeout if current is None else min(current, timeout)


def redact(url: str) -> str:
    """``url`` with any password (and ``sentinel_password``) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        credentials, _, hosts = netloc.rpartition("@")
        user, colon, _secret = credentials.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{hosts}"
    tail = re.sub(r"(sentinel_password=)[^&]*", r"\1***", tail)
    return f"{scheme}://{netloc}{slash}{tail}"
