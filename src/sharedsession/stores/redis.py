"""RedisStore and AsyncRedisStore over redis-py (standalone, Sentinel, Cluster, Valkey).

Each store operation is a flow in :mod:`._redis_layout` (the key layout, the
Lua scripts and the logic, written once); these classes only drive the flows,
one with blocking calls and one with ``await``. Reading with a refresh and
writing a change set are one Lua script each, so a request costs one round
trip to read and one to write, and a write is conditional on the session
still existing, atomically on the server.

Two bounds apply to every operation: at most ``max_connections`` operations
run at once per store (a burst waits for a free connection, at most
``timeout`` seconds, instead of failing), and with ``min_replicas`` every
write is followed by ``WAIT`` in the same round trip, so a write the app saw
acknowledged is on that many replicas and survives a failover.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

from redis import exceptions as redis_errors

from ..errors import ConfigurationError
from ..errors import StoreError
from ..errors import StoreUnavailable
from ..ids import store_key
from . import _redis_layout as layout
from ._per_loop import PerLoop
from ._redis_direct import AsyncDirect
from ._redis_direct import Direct
from ._redis_direct import evalsha
from ._redis_url import DEFAULT_MAX_CONNECTIONS
from ._redis_url import DEFAULT_TIMEOUT
from ._redis_url import another
from ._redis_url import client_from_setting
from ._redis_url import connect
from ._redis_url import is_cluster
from ._redis_url import is_sentinel
from ._redis_url import made_here
from ._redis_url import own_sentinels
from ._redis_url import owns_pool
from ._slots import Slots
from .base import ApplyResult
from .base import AsyncClosing
from .base import ChangeSet
from .base import Closing
from .base import KeyWrites
from .base import Record
from .base import Refresh
from .base import SessionInfo
from .base import StoredSession
from .base import Written
from .base import reach_of

if TYPE_CHECKING:
    import redis
    import redis.asyncio

    from .._config import Settings

#: The key prefix Flask-Session uses too; its string keys never clash with our hashes.
DEFAULT_PREFIX = "session:"

T = TypeVar("T")

logger = logging.getLogger("sharedsession")


def _mapped(exc: Exception) -> StoreError:
    """The store error for a redis-py error (raised ``from`` it by the caller)."""
    if isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        return StoreUnavailable(f"Redis session store unavailable: {exc}", exc)
    if isinstance(exc, _REFUSED) or layout.refusal(str(exc)):
        return StoreUnavailable(f"Redis session store refused the write: {exc}", exc)
    return StoreError(f"Redis session store failed: {exc}", exc)


#: Commands sent on a kept connection directly (their raw replies are what
#: the layout reads, and their arguments are the command's own); every other
#: command goes through the client.
_DIRECT = {
    name: name.upper()
    for name in ("hgetall", "get", "exists", "pttl", "zrange", "zrem", "pexpire", "psetex")
} | {"delete": "DEL"}


def _direct_commands(
    calls: Sequence[layout.Call | layout.Script], scripts: dict[str, Any]
) -> tuple[list[tuple[Any, ...]], list[Any]] | None:
    """``calls`` as raw commands for :meth:`Direct.pipeline` with the scripts among
    them, or ``None`` if one is not direct."""
    commands: list[tuple[Any, ...]] = []
    used: list[Any] = []
    for call in calls:
        if isinstance(call, layout.Script):
            used.append(scripts[call.name])
            commands.append(evalsha(used[-1], call.keys, call.args))
        elif call.name in _DIRECT:
            commands.append((_DIRECT[call.name], *call.args))
        else:
            return None
    return commands, used


def _direct_path(client: Any) -> bool:
    """Whether the hot commands can skip redis-py's layers on ``client``: a
    pooled standalone or Sentinel client (not a Cluster, not a single connection)."""
    return not is_cluster(client) and getattr(client, "connection", None) is None


_REFUSED = (
    layout.NotReplicated,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
)


_BATCH = 200
#: Keys asked for per SCAN step when listing sessions.
_SCAN_COUNT = 500


def _queued(client: Any, calls: list[layout.Call]) -> Any:
    """A pipeline holding ``calls`` (no scripts), or ``None`` when there are none."""
    if not calls:
        return None
    pipe = client.pipeline(transaction=False)
    for call in calls:
        getattr(pipe, call.name)(*call.args)
    return pipe


def _merged(calls: Any, scripts: list[Any], others: list[Any]) -> list[Any]:
    """Replies in the order of ``calls``, from the scripts' and the others' replies."""
    script_replies, other_replies = iter(scripts), iter(others)
    return [
        next(script_replies) if isinstance(call, layout.Script) else next(other_replies)
        for call in calls
    ]


def _batches(names: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for name in names:
        batch.append(name)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _unreadable(exc: StoreError) -> Record | None:
    """``None`` for a load that found something other than a session hash; else re-raise."""
    if "WRONGTYPE" not in str(exc):
        raise exc
    logger.warning("a session key holds something other than a session; ignoring it")
    return None


def _demoted(exc: Exception) -> bool:
    # The connection may point at a master that lost its role: reconnect.
    return isinstance(exc, (layout.NotReplicated, redis_errors.ReadOnlyError)) or layout.refusal(
        str(exc)
    ) in (
        "READONLY",
        "MASTERDOWN",
        "NOREPLICAS",
    )


def _busy(limit: int, timeout: float) -> StoreUnavailable:
    return StoreUnavailable(
        f"all {limit} Redis connections of this process stayed busy for {timeout} s;"
        " raise SESSION_REDIS_MAX_CONNECTIONS or SESSION_REDIS_TIMEOUT if Redis is healthy"
    )


class _Options:
    """What both stores check once: the prefix, the timeout, the bounds."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        timeout: float,
        min_replicas: int,
        max_connections: int,
        max_per_user: int | None,
    ) -> None:
        if min_replicas and is_cluster(client):
            raise ConfigurationError(
                "SESSION_REDIS_MIN_REPLICAS needs standalone Redis or Sentinel: on a Cluster a"
                " write and its WAIT may not share a connection. Use min-replicas-to-write on"
                " the cluster's masters instead (refusals answer 503)."
            )
        if max_connections < 1:
            raise ConfigurationError(
                f"SESSION_REDIS_MAX_CONNECTIONS must be at least 1, got {max_connections!r}."
            )
        self.prefix = prefix
        self.timeout = timeout
        self.min_replicas = min_replicas
        self.max_connections = max_connections
        self.max_per_user = max_per_user
        self.cluster = is_cluster(client)
        #: Sentinel-managed: reads must not be served by a demoted master.
        self.sentinel = is_sentinel(client)
        #: Who shares these sessions: a standalone server on a loopback address
        #: or a Unix socket serves one machine; anything else, the network.
        kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
        self.reach = "network" if self.cluster or self.sentinel else reach_of(kwargs.get("host"))
        # WAIT gets half the timeout, so its reply arrives before the socket gives up.
        self.wait_ms = max(1, int(timeout * 500))

    def confirmed(self, op: layout.Call | layout.Script | layout.Pipeline) -> bool:
        """Whether ``op``'s round trip ends with ``WAIT``: every write, with ``min_replicas``."""
        return bool(self.min_replicas) and op.write

    def wait(self) -> tuple[Any, ...]:
        """The ``WAIT`` command that ends a confirmed round trip."""
        return ("WAIT", self.min_replicas, self.wait_ms)

    def sent(self, commands: list[Any], confirm: bool) -> list[Any]:
        """``commands``, ended with ``WAIT`` when ``confirm``."""
        return [*commands, self.wait()] if confirm else commands

    def received(self, replies: list[Any], confirm: bool) -> list[Any]:
        """The replies of :meth:`sent` commands; ``WAIT``'s is checked and dropped."""
        if not confirm:
            return replies
        *replies, acknowledged = replies
        layout.check_acknowledged(acknowledged, self.min_replicas)
        return replies


class RedisStore(Closing):
    """Sessions in Redis through a blocking redis-py client.

    :param client: A ``redis.Redis`` (standalone, or ``Sentinel.master_for``)
        or ``redis.cluster.RedisCluster``; its pool should hold at least
        ``max_connections`` connections. Each connection goes back to that
        pool after its command (it may be the app's own); a store made by
        :meth:`from_url` keeps the connections of its own pool between commands.
    :param prefix: Prepended to every key.
    :param timeout: Seconds an operation may wait for a free connection.
    :param min_replicas: Replicas that must acknowledge each write (``WAIT``)
        within half of ``timeout``, else the write fails with ``StoreUnavailable``.
    :param max_connections: Operations that may run at once; more wait.
    :param max_per_user: End a user's oldest sessions beyond this many, at login.
    """

    @property
    def reach(self) -> str:
        """Who shares these sessions: ``"network"``, or ``"machine"`` for a server
        on a loopback address or a Unix socket."""
        return self.options.reach

    def __init__(
        self,
        client: redis.Redis | Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        min_replicas: int = 0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_per_user: int | None = None,
    ) -> None:
        self.client = client
        self.options = _Options(
            client, prefix, timeout, min_replicas, max_connections, max_per_user
        )
        self.prefix = prefix
        #: How long a revoked handle is remembered (ms); longer while migrating,
        #: so that an old copy of the session is never adopted back.
        self.revoked_ms = layout.REVOKED_MS
        self._slots = Slots(max_connections)
        self._scripts = {name: client.register_script(lua) for name, lua in layout.SCRIPTS.items()}
        self._direct = Direct(client, keep=owns_pool(client)) if _direct_path(client) else None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        min_replicas: int = 0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_per_user: int | None = None,
        **options: Any,
    ) -> RedisStore:
        """Connect to a standalone server, a Sentinel-managed master or a Cluster.

        :param url: ``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``
            or ``redis+cluster://``; see the README for each form.
        :param prefix: Prepended to every key.
        :param timeout: Seconds a call may wait on Redis; timeouts are not retried.
        :param min_replicas: See the class.
        :param max_connections: See the class; also the size of the client's pool.
        :param options: Further redis-py client options.
        """
        client = connect(url, timeout=timeout, max_connections=max_connections, **options)
        return cls(
            client,
            prefix=prefix,
            timeout=timeout,
            min_replicas=min_replicas,
            max_connections=max_connections,
            max_per_user=max_per_user,
        )

    def _run(self, flow: layout.Flow[T]) -> T:
        if not self._slots.acquire(timeout=self.options.timeout):
            raise _busy(self.options.max_connections, self.options.timeout)
        reply: Any = None
        try:
            while True:
                reply = self._do(flow.send(reply))
        except StopIteration as stop:
            result: T = stop.value
            return result
        except (redis_errors.RedisError, layout.NotReplicated) as exc:
            if _demoted(exc) and hasattr(self.client, "connection_pool"):
                if self._direct is not None:
                    self._direct.drain(disconnect=True)
                self.client.connection_pool.disconnect(inuse_connections=False)
            raise _mapped(exc) from exc
        finally:
            self._slots.release()

    def _do(self, op: layout.Op) -> Any:
        if isinstance(op, layout.Pause):
            return time.sleep(op.seconds)
        confirm = self.options.confirmed(op)
        if not confirm and not isinstance(op, layout.Pipeline):
            direct = self._direct
            if isinstance(op, layout.Script):
                if direct is not None:
                    return direct.script(self._scripts[op.name], op.keys, op.args)
                return self._scripts[op.name](keys=op.keys, args=op.args)
            if direct is not None and op.name in _DIRECT:
                return direct.call(_DIRECT[op.name], *op.args)
            if direct is not None:
                direct.drain()  # the client takes a connection from the pool
            return getattr(self.client, op.name)(*op.args)
        calls = op.calls if isinstance(op, layout.Pipeline) else [op]
        direct = self._direct
        if direct is not None:
            raw = _direct_commands(calls, self._scripts)
            if raw is not None:
                sent = self.options.sent(raw[0], confirm)
                replies = self.options.received(direct.pipeline(sent, raw[1]), confirm)
                return replies if isinstance(op, layout.Pipeline) else replies[0]
            direct.drain()
        if self.options.cluster and layout.scripts_of(calls):
            # Cluster pipelines refuse EVALSHA: scripts one at a time, the rest
            # in one pipeline after them.
            done = [self._do(script) for script in layout.scripts_of(calls)]
            rest = _queued(self.client, layout.calls_of(calls))
            replies = _merged(calls, done, rest.execute() if rest else [])
            return replies if isinstance(op, layout.Pipeline) else replies[0]
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            if isinstance(call, layout.Script):
                self._scripts[call.name](keys=call.keys, args=call.args, client=pipe)
            else:
                getattr(pipe, call.name)(*call.args)
        if confirm:
            pipe.execute_command(*self.options.wait())
        replies = self.options.received(pipe.execute(), confirm)
        return replies if isinstance(op, layout.Pipeline) else replies[0]

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        try:
            return self._run(
                layout.load(self.prefix, key, refresh, master_only=self.options.sentinel)
            )
        except StoreError as exc:
            return _unreadable(exc)

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        return self._run(layout.apply(self.prefix, key, changes, self.options.max_per_user))

    def write_keys(self, key: str, writes: KeyWrites) -> Written | None:
        if self.options.min_replicas:
            return None  # the save loads (see docs/decisions.md)
        return self._run(layout.write_keys(self.prefix, key, writes))

    def delete(self, key: str) -> None:
        self._run(layout.delete(self.prefix, key))

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return self._run(layout.sessions_for_user(self.prefix, user_id))

    def sessions(self) -> Iterator[StoredSession]:
        for batch in _batches(self._scan()):
            for stored, _ in self._run(layout.describe(self.prefix, batch)):
                yield stored

    def _scan(self) -> Iterator[str]:
        if self._direct is not None:
            # Page by page within the store's bound (SCAN takes a pool connection).
            yield from self._pages(
                lambda cursor: layout.scan_sessions(self.prefix, cursor, _SCAN_COUNT)
            )
            return
        try:  # a Cluster: scan_iter visits every master
            for name in self.client.scan_iter(
                match=f"{self.prefix}{{*", count=_SCAN_COUNT, _type="hash"
            ):
                yield layout.text(name)
        except redis_errors.RedisError as exc:
            raise _mapped(exc) from exc

    def session(self, handle: str) -> tuple[StoredSession, Record] | None:
        return self._run(layout.session(self.prefix, handle))

    def revoke(self, handle: str) -> bool:
        return self._run(layout.revoke(self.prefix, handle, self.revoked_ms))

    def purge(self) -> int:
        return 0  # Redis expires sessions itself

    def read_flask_session(self, sid: str) -> tuple[bytes | None, int, bool, bool]:
        """Flask-Session's blob of ``sid``, its TTL in ms, whether this library has the
        session by now, and whether it was revoked (adoption; sees the raw ID)."""
        return self._run(layout.flask_session_read(self.prefix, sid, store_key(sid)))

    def touch_flask_session(self, sid: str, ttl_ms: int) -> None:
        """Keep Flask-Session's copy of ``sid`` alive ``ttl_ms`` more (rolling deploys)."""
        self._run(layout.flask_session_touch(self.prefix, sid, ttl_ms))

    def write_flask_session(self, sid: str, blob: bytes, ttl_ms: int) -> None:
        """Write Flask-Session's blob of ``sid`` (rolling deploys)."""
        self._run(layout.flask_session_write(self.prefix, sid, blob, ttl_ms))

    def delete_flask_session(self, sid: str) -> None:
        """Delete Flask-Session's copy of ``sid``."""
        self._run(layout.flask_session_delete(self.prefix, sid))

    def flask_session_ids(self, *, count: int = 500) -> Iterator[str]:
        """Every session ID Flask-Session has a key for (SCAN, never KEYS; standalone
        and Sentinel; on a Cluster, SCAN each master's client)."""
        return self._pages(lambda cursor: layout.flask_session_scan(self.prefix, cursor, count))

    def _pages(self, step: Callable[[int], layout.Flow[tuple[int, list[str]]]]) -> Iterator[str]:
        """What a SCAN walks, one ``step(cursor)`` round trip per page."""
        cursor = 0
        while True:
            cursor, names = self._run(step(cursor))
            yield from names
            if cursor == 0:
                return

    def close(self) -> None:
        if self._direct is not None:
            self._direct.drain(disconnect=True)
        self.client.close()
        for sentinel in own_sentinels(self.client):
            sentinel.close()


class AsyncRedisStore(AsyncClosing):
    """Sessions in Redis through a ``redis.asyncio`` client; the twin of :class:`RedisStore`.

    :param client: A ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``.
    :param prefix: Prepended to every key.
    :param timeout: See :class:`RedisStore`.
    :param min_replicas: See :class:`RedisStore`.
    :param max_connections: See :class:`RedisStore` (per event loop).
    """

    @property
    def reach(self) -> str:
        """Who shares these sessions: ``"network"``, or ``"machine"`` for a server
        on a loopback address or a Unix socket."""
        return self.options.reach

    def __init__(
        self,
        client: redis.asyncio.Redis | Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        min_replicas: int = 0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_per_user: int | None = None,
    ) -> None:
        self.client = client
        self.options = _Options(
            client, prefix, timeout, min_replicas, max_connections, max_per_user
        )
        self.prefix = prefix
        self.revoked_ms = layout.REVOKED_MS
        # What each event loop uses (test clients and asyncio.run start several).
        self._loops: PerLoop[_OnLoop] = PerLoop(self._on_loop, _OnLoop.at_loop_end)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        min_replicas: int = 0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_per_user: int | None = None,
        **options: Any,
    ) -> AsyncRedisStore:
        """The async twin of :meth:`RedisStore.from_url`, over ``redis.asyncio``."""
        client = connect(
            url, asyncio=True, timeout=timeout, max_connections=max_connections, **options
        )
        return cls(
            client,
            prefix=prefix,
            timeout=timeout,
            min_replicas=min_replicas,
            max_connections=max_connections,
            max_per_user=max_per_user,
        )

    def _on_loop(self, first: bool) -> _OnLoop:
        # The first loop uses the client given; each other one a client of its
        # own: the first one's connections (and its pool's lock) are bound to it.
        client = self.client if first else another(self.client)
        if client is None:
            self._loops.warn_once(
                "AsyncRedisStore runs on a second event loop with a client it cannot copy"
                " (the app's own Sentinel or Cluster client, or a single connection), whose"
                " connections belong to the first loop; give the store a URL (redis://,"
                " redis+sentinel://, redis+cluster://) so that each loop gets its own"
            )
            client = self.client
        owned = made_here(client) or owns_pool(client)
        return _OnLoop(client, self.options.max_connections, owned=owned)

    async def _run(self, flow: layout.Flow[T]) -> T:
        here = self._loops.get()
        if here is None:
            here = await self._loops.here()
        slots = here.slots
        if slots.locked():  # wait_for costs a task: only when it has to wait
            try:
                await asyncio.wait_for(slots.acquire(), self.options.timeout)
            except asyncio.TimeoutError:
                raise _busy(self.options.max_connections, self.options.timeout) from None
        else:
            await slots.acquire()  # returns at once
        reply: Any = None
        try:
            while True:
                reply = await self._do(here, flow.send(reply))
        except StopIteration as stop:
            result: T = stop.value
            return result
        except (redis_errors.RedisError, layout.NotReplicated) as exc:
            if _demoted(exc) and hasattr(here.client, "connection_pool"):
                if here.direct is not None:
                    await here.direct.drain(disconnect=True)
                await here.client.connection_pool.disconnect(inuse_connections=False)
            raise _mapped(exc) from exc
        finally:
            slots.release()

    async def _do(self, here: _OnLoop, op: layout.Op) -> Any:
        if isinstance(op, layout.Pause):
            return await asyncio.sleep(op.seconds)
        confirm = self.options.confirmed(op)
        scripts = here.scripts
        if not confirm and not isinstance(op, layout.Pipeline):
            direct = here.direct
            if isinstance(op, layout.Script):
                if direct is not None:
                    return await direct.script(scripts[op.name], op.keys, op.args)
                return await scripts[op.name](keys=op.keys, args=op.args)
            if direct is not None and op.name in _DIRECT:
                return await direct.call(_DIRECT[op.name], *op.args)
            if direct is not None:
                await direct.drain()
            return await getattr(here.client, op.name)(*op.args)
        calls = op.calls if isinstance(op, layout.Pipeline) else [op]
        direct = here.direct
        if direct is not None:
            raw = _direct_commands(calls, scripts)
            if raw is not None:
                sent = self.options.sent(raw[0], confirm)
                replies = self.options.received(await direct.pipeline(sent, raw[1]), confirm)
                return replies if isinstance(op, layout.Pipeline) else replies[0]
            await direct.drain()
        if self.options.cluster and layout.scripts_of(calls):
            done = [await self._do(here, script) for script in layout.scripts_of(calls)]
            rest = _queued(here.client, layout.calls_of(calls))
            replies = _merged(calls, done, await rest.execute() if rest else [])
            return replies if isinstance(op, layout.Pipeline) else replies[0]
        pipe = here.client.pipeline(transaction=False)
        for call in calls:
            if isinstance(call, layout.Script):
                await scripts[call.name](keys=call.keys, args=call.args, client=pipe)
            else:
                getattr(pipe, call.name)(*call.args)
        if confirm:
            pipe.execute_command(*self.options.wait())
        replies = self.options.received(await pipe.execute(), confirm)
        return replies if isinstance(op, layout.Pipeline) else replies[0]

    async def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        try:
            return await self._run(
                layout.load(self.prefix, key, refresh, master_only=self.options.sentinel)
            )
        except StoreError as exc:
            return _unreadable(exc)

    async def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        return await self._run(layout.apply(self.prefix, key, changes, self.options.max_per_user))

    async def write_keys(self, key: str, writes: KeyWrites) -> Written | None:
        if self.options.min_replicas:
            return None
        return await self._run(layout.write_keys(self.prefix, key, writes))

    async def delete(self, key: str) -> None:
        await self._run(layout.delete(self.prefix, key))

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return await self._run(layout.sessions_for_user(self.prefix, user_id))

    async def sessions(self) -> AsyncIterator[StoredSession]:
        batch: list[str] = []
        async for name in self._scan():
            batch.append(name)
            if len(batch) == _BATCH:
                for stored, _ in await self._run(layout.describe(self.prefix, batch)):
                    yield stored
                batch = []
        if batch:
            for stored, _ in await self._run(layout.describe(self.prefix, batch)):
                yield stored

    async def _scan(self) -> AsyncIterator[str]:
        here = await self._loops.here()
        if here.direct is not None:  # see RedisStore._scan
            pages = self._pages(
                lambda cursor: layout.scan_sessions(self.prefix, cursor, _SCAN_COUNT)
            )
            async for name in pages:
                yield name
            return
        try:
            async for name in here.client.scan_iter(
                match=f"{self.prefix}{{*", count=_SCAN_COUNT, _type="hash"
            ):
                yield layout.text(name)
        except redis_errors.RedisError as exc:
            raise _mapped(exc) from exc

    async def session(self, handle: str) -> tuple[StoredSession, Record] | None:
        return await self._run(layout.session(self.prefix, handle))

    async def revoke(self, handle: str) -> bool:
        return await self._run(layout.revoke(self.prefix, handle, self.revoked_ms))

    async def purge(self) -> int:
        return 0

    async def read_flask_session(self, sid: str) -> tuple[bytes | None, int, bool, bool]:
        return await self._run(layout.flask_session_read(self.prefix, sid, store_key(sid)))

    async def touch_flask_session(self, sid: str, ttl_ms: int) -> None:
        await self._run(layout.flask_session_touch(self.prefix, sid, ttl_ms))

    async def write_flask_session(self, sid: str, blob: bytes, ttl_ms: int) -> None:
        await self._run(layout.flask_session_write(self.prefix, sid, blob, ttl_ms))

    async def delete_flask_session(self, sid: str) -> None:
        await self._run(layout.flask_session_delete(self.prefix, sid))

    async def flask_session_ids(self, *, count: int = 500) -> AsyncIterator[str]:
        async for sid in self._pages(
            lambda cursor: layout.flask_session_scan(self.prefix, cursor, count)
        ):
            yield sid

    async def _pages(
        self, step: Callable[[int], layout.Flow[tuple[int, list[str]]]]
    ) -> AsyncIterator[str]:
        """See :meth:`RedisStore._pages`."""
        cursor = 0
        while True:
            cursor, names = await self._run(step(cursor))
            for name in names:
                yield name
            if cursor == 0:
                return

    async def aclose(self) -> None:
        """Close the running event loop's client, whole (the client given, on
        the first loop: as :meth:`RedisStore.close`). A loop that ends closes
        the connections it opened itself."""
        here = await self._loops.take()
        if here is not None:
            await here.close(whole=True)
        elif not self._loops.started:  # never used: no connection, but its pool is closed
            await _close(self.client)


async def _close(client: Any) -> None:
    await client.aclose()
    for sentinel in own_sentinels(client):
        await sentinel.aclose()


class _OnLoop:
    """What an :class:`AsyncRedisStore` uses on one event loop (see
    :mod:`._per_loop`): a client, its scripts, its direct path and the bound
    on operations at once.

    :param owned: The client is the store's alone (made from a URL, or a copy
        of the app's): closed whole at the loop's end. The app's own client
        keeps its pool; only its idle connections, which no other loop can
        use, are closed.
    """

    __slots__ = ("client", "direct", "owned", "scripts", "slots")

    def __init__(self, client: Any, max_connections: int, *, owned: bool) -> None:
        self.client = client
        self.owned = owned
        self.scripts = {name: client.register_script(lua) for name, lua in layout.SCRIPTS.items()}
        self.direct = AsyncDirect(client, keep=owns_pool(client)) if _direct_path(client) else None
        self.slots = asyncio.Semaphore(max_connections)

    async def at_loop_end(self) -> None:
        await self.close(whole=self.owned)

    async def close(self, *, whole: bool) -> None:
        """Close the kept connections and, ``whole``, the client; else only
        the idle connections of its pool."""
        try:
            if self.direct is not None:
                await self.direct.drain(disconnect=True)
        finally:
            if whole:
                await _close(self.client)
            elif hasattr(self.client, "connection_pool"):
                await self.client.connection_pool.disconnect(inuse_connections=False)


def from_settings(settings: Settings, *, asyncio: bool) -> RedisStore | AsyncRedisStore:
    """The store for ``SESSION_TYPE = "redis"`` from ``SESSION_REDIS`` (a URL or a client)."""
    options: dict[str, Any] = {
        "prefix": settings.key_prefix,
        "timeout": settings.redis_timeout,
        "min_replicas": settings.redis_min_replicas,
        "max_connections": settings.redis_max_connections,
        "max_per_user": settings.max_per_user,
    }
    client = client_from_setting(
        settings.redis, settings.redis_timeout, settings.redis_max_connections, asyncio=asyncio
    )
    if asyncio:
        return AsyncRedisStore(client, **options)
    return RedisStore(client, **options)
