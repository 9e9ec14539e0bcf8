"""RedisStore and AsyncRedisStore over redis-py (standalone, Sentinel, Cluster, Valkey).

Each store operation is a flow in :mod:`._redis_layout` (the key layout, the
Lua scripts and the logic, written once); these classes only drive the flows,
one with blocking calls and one with ``await``. Reading with a refresh and
writing a change set are one Lua script each, so a request costs one round
trip to read and one to write, and a write is conditional on the session
still existing, atomically on the server.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

from redis import exceptions as redis_errors

from ..errors import ConfigurationError
from ..errors import StoreError
from ..errors import StoreUnavailable
from . import _redis_layout as layout
from ._redis_url import DEFAULT_TIMEOUT
from ._redis_url import bounded_client
from ._redis_url import connect
from ._redis_url import redact
from .base import ApplyResult
from .base import AsyncClosing
from .base import ChangeSet
from .base import Closing
from .base import Record
from .base import Refresh
from .base import SessionInfo

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    from .._config import Settings

#: The key prefix Flask-Session uses too; its string keys never clash with our hashes.
DEFAULT_PREFIX = "session:"

T = TypeVar("T")


def _mapped(exc: redis_errors.RedisError) -> StoreError:
    """The store error for a redis-py error (raised ``from`` it by the caller)."""
    if isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        return StoreUnavailable(f"Redis session store unavailable: {exc}", exc)
    return StoreError(f"Redis session store failed: {exc}", exc)


class RedisStore(Closing):
    """Sessions in Redis through a blocking redis-py client.

    :param client: A ``redis.Redis`` (standalone, or ``Sentinel.master_for``)
        or ``redis.cluster.RedisCluster``.
    :param prefix: Prepended to every key.
    """

    def __init__(self, client: redis.Redis | Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._scripts = {name: client.register_script(lua) for name, lua in layout.SCRIPTS.items()}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> RedisStore:
        """Connect to a standalone server, a Sentinel-managed master or a Cluster.

        :param url: ``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``
            or ``redis+cluster://``; see the README for each form.
        :param prefix: Prepended to every key.
        :param timeout: Seconds a call may wait on Redis; timeouts are not retried.
        :param options: Further redis-py client options.
        """
        return cls(connect(url, timeout=timeout, **options), prefix=prefix)

    def _run(self, flow: layout.Flow[T]) -> T:
        reply: Any = None
        try:
            while True:
                reply = self._do(flow.send(reply))
        except StopIteration as stop:
            result: T = stop.value
            return result
        except redis_errors.RedisError as exc:
            raise _mapped(exc) from exc

    def _do(self, op: layout.Op) -> Any:
        if isinstance(op, layout.Script):
            return self._scripts[op.name](keys=op.keys, args=op.args)
        if isinstance(op, layout.Pipeline):
            pipe = self.client.pipeline(transaction=False)
            for call in op.calls:
                getattr(pipe, call.name)(*call.args)
            return pipe.execute()
        return getattr(self.client, op.name)(*op.args)

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        return self._run(layout.load(self.prefix, key, refresh))

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        return self._run(layout.apply(self.prefix, key, changes))

    def delete(self, key: str) -> None:
        self._run(layout.delete(self.prefix, key))

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return self._run(layout.sessions_for_user(self.prefix, user_id))

    def close(self) -> None:
        self.client.close()


class AsyncRedisStore(AsyncClosing):
    """Sessions in Redis through a ``redis.asyncio`` client; the twin of :class:`RedisStore`.

    :param client: A ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``.
    :param prefix: Prepended to every key.
    """

    def __init__(self, client: redis.asyncio.Redis | Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._scripts = {name: client.register_script(lua) for name, lua in layout.SCRIPTS.items()}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> AsyncRedisStore:
        """The async twin of :meth:`RedisStore.from_url`, over ``redis.asyncio``."""
        return cls(connect(url, asyncio=True, timeout=timeout, **options), prefix=prefix)

    async def _run(self, flow: layout.Flow[T]) -> T:
        reply: Any = None
        try:
            while True:
                reply = await self._do(flow.send(reply))
        except StopIteration as stop:
            result: T = stop.value
            return result
        except redis_errors.RedisError as exc:
            raise _mapped(exc) from exc

    async def _do(self, op: layout.Op) -> Any:
        if isinstance(op, layout.Script):
            return await self._scripts[op.name](keys=op.keys, args=op.args)
        if isinstance(op, layout.Pipeline):
            pipe = self.client.pipeline(transaction=False)
            for call in op.calls:
                getattr(pipe, call.name)(*call.args)
            return await pipe.execute()
        return await getattr(self.client, op.name)(*op.args)

    async def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        return await self._run(layout.load(self.prefix, key, refresh))

    async def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        return await self._run(layout.apply(self.prefix, key, changes))

    async def delete(self, key: str) -> None:
        await self._run(layout.delete(self.prefix, key))

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return await self._run(layout.sessions_for_user(self.prefix, user_id))

    async def aclose(self) -> None:
        await self.client.aclose()


def from_settings(settings: Settings, *, asyncio: bool) -> RedisStore | AsyncRedisStore:
    """The store for ``SESSION_TYPE = "redis"`` from ``SESSION_REDIS`` (a URL or a client)."""
    client = settings.redis
    prefix, timeout = settings.key_prefix, settings.redis_timeout
    store_class: type[RedisStore] | type[AsyncRedisStore] = (
        AsyncRedisStore if asyncio else RedisStore
    )
    if isinstance(client, str):
        try:
            return store_class.from_url(client, prefix=prefix, timeout=timeout)
        except ValueError as exc:
            raise ConfigurationError(
                f"SESSION_REDIS = {redact(client)!r} is not a usable Redis URL ({exc}); use a"
                " form such as redis://host:6379/0, rediss://host:6380/0,"
                " unix:///path/redis.sock, redis+sentinel://host:26379/mymaster/0 or"
                " redis+cluster://host:7000."
            ) from exc
    kind = "an asyncio" if asyncio else "a blocking"
    execute = getattr(client, "execute_command", None)
    if execute is None or not hasattr(client, "register_script"):
        raise ConfigurationError(
            f"SESSION_REDIS must be a Redis URL or {kind} redis-py client, got"
            f" {type(client).__name__}."
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
    return store_class(bounded_client(client, timeout, asyncio=asyncio), prefix=prefix)
