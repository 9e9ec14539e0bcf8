"""RedisStore and AsyncRedisStore over redis-py (standalone, Sentinel, Cluster, Valkey).

A session is one hash ``{prefix}{<digest>}``: one field per session key whose
value is the tagged JSON of that key (readable with ``redis-cli HGETALL``),
plus metadata fields that start with ``:`` (a user key that starts with
``:`` is stored with one more ``:`` in front). The braces make the digest the
hash tag, so everything about one session lives in one Cluster slot. The
hash's TTL is the session's remaining life.

Loading with a refresh and applying a change set are one Lua script each, so
every request costs one round trip to read and one to write, and a write is
conditional on the session still existing, atomically on the server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING
from typing import Any

from redis import exceptions as redis_errors

from ..errors import StoreError
from ..errors import StoreUnavailable
from ._redis_url import DEFAULT_TIMEOUT
from ._redis_url import connect
from .base import ApplyResult
from .base import ChangeSet
from .base import Record
from .base import Refresh

if TYPE_CHECKING:
    import redis
    import redis.asyncio

#: The key prefix Flask-Session uses too; its string keys never clash with our hashes.
DEFAULT_PREFIX = "session:"


_CREATED = ":created"
_ABSOLUTE = ":absolute"

# KEYS[1] the hash; ARGV[1] now, ARGV[2] idle ttl (seconds).
_LOAD_REFRESH = """
local data = redis.call('HGETALL', KEYS[1])
if #data == 0 then return data end
local now = tonumber(ARGV[1])
local deadline = now + tonumber(ARGV[2])
for i = 1, #data, 2 do
  if data[i] == ':absolute' then
    local absolute = tonumber(data[i + 1])
    if absolute < deadline then deadline = absolute end
  end
end
local ms = math.floor((deadline - now) * 1000)
if ms <= 0 then
  redis.call('DEL', KEYS[1])
  return {}
end
redis.call('PEXPIRE', KEYS[1], ms)
return data
"""

# KEYS[1] the hash; ARGV: mode ('create' | 'update'), ttl ms, clear ('1' | '0'),
# number of fields to delete, those fields, then field/value pairs to set.
_APPLY = """
local key = KEYS[1]
local exists = redis.call('EXISTS', key)
if ARGV[1] == 'create' then
  if exists == 1 then return 'exists' end
elseif exists == 0 then
  return 'gone'
end
if ARGV[3] == '1' then
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 1) ~= ':' or string.sub(field, 1, 2) == '::' then
      redis.call('HDEL', key, field)
    end
  end
end
local ndel = tonumber(ARGV[4])
if ndel > 0 then redis.call('HDEL', key, unpack(ARGV, 5, 4 + ndel)) end
if 5 + ndel <= #ARGV then redis.call('HSET', key, unpack(ARGV, 5 + ndel, #ARGV)) end
local meta = redis.call('HEXISTS', key, ':created') + redis.call('HEXISTS', key, ':absolute')
local ms = tonumber(ARGV[2])
if ms <= 0 or redis.call('HLEN', key) <= meta then
  redis.call('DEL', key)
else
  redis.call('PEXPIRE', key, ms)
end
return 'applied'
"""


def redis_key(prefix: str, key: str) -> str:
    """The Redis key of the session whose store key is ``key``."""
    return f"{prefix}{{{key}}}"


def _field(name: str) -> str:
    return ":" + name if name.startswith(":") else name


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _record(flat: Sequence[bytes | str]) -> Record | None:
    if not flat:
        return None
    data: dict[str, str] = {}
    meta: dict[str, str] = {}
    for i in range(0, len(flat), 2):
        name, value = _text(flat[i]), _text(flat[i + 1])
        if name.startswith("::") or not name.startswith(":"):
            data[name[1:] if name.startswith(":") else name] = value
        else:
            meta[name] = value
    absolute = meta.get(_ABSOLUTE)
    return Record(
        data, float(meta.get(_CREATED, 0.0)), None if absolute is None else float(absolute)
    )


def _record_from_hash(mapping: dict[Any, Any]) -> Record | None:
    return _record([item for pair in mapping.items() for item in pair])


def _load_args(refresh: Refresh) -> list[str]:
    return [repr(refresh.now), repr(refresh.ttl)]


def _apply_args(changes: ChangeSet) -> list[str | float]:
    ttl_ms = int((changes.expires - changes.now) * 1000)
    args: list[str | float] = [
        "create" if changes.created is not None else "update",
        ttl_ms,
        "1" if changes.clear else "0",
        len(changes.delete),
    ]
    args.extend(_field(name) for name in changes.delete)
    for name, value in changes.set.items():
        args += [_field(name), value]
    if changes.created is not None:
        args += [_CREATED, repr(changes.created)]
        if changes.absolute is not None:
            args += [_ABSOLUTE, repr(changes.absolute)]
    return args


def _apply_result(reply: bytes | str) -> ApplyResult:
    return ApplyResult(_text(reply))


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
        raise StoreUnavailable(f"Redis session store unavailable: {exc}", exc) from exc
    except redis_errors.RedisError as exc:
        raise StoreError(f"Redis session store failed: {exc}", exc) from exc


class RedisStore:
    """Sessions in Redis through a blocking redis-py client.

    :param client: A ``redis.Redis`` (standalone, or ``Sentinel.master_for``)
        or ``redis.cluster.RedisCluster``.
    :param prefix: Prepended to every key.
    """

    def __init__(self, client: redis.Redis | Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._load_refresh = client.register_script(_LOAD_REFRESH)
        self._apply = client.register_script(_APPLY)

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

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        name = redis_key(self.prefix, key)
        with _mapped_errors():
            if refresh is None:
                return _record_from_hash(self.client.hgetall(name))
            return _record(self._load_refresh(keys=[name], args=_load_args(refresh)))

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        with _mapped_errors():
            reply = self._apply(keys=[redis_key(self.prefix, key)], args=_apply_args(changes))
        return _apply_result(reply)

    def delete(self, key: str) -> None:
        with _mapped_errors():
            self.client.delete(redis_key(self.prefix, key))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncRedisStore:
    """Sessions in Redis through a ``redis.asyncio`` client; the twin of :class:`RedisStore`.

    :param client: A ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``.
    :param prefix: Prepended to every key.
    """

    def __init__(self, client: redis.asyncio.Redis | Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._load_refresh = client.register_script(_LOAD_REFRESH)
        self._apply = client.register_script(_APPLY)

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

    async def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        name = redis_key(self.prefix, key)
        with _mapped_errors():
            if refresh is None:
                return _record_from_hash(await self.client.hgetall(name))
            return _record(await self._load_refresh(keys=[name], args=_load_args(refresh)))

    async def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        name = redis_key(self.prefix, key)
        with _mapped_errors():
            reply = await self._apply(keys=[name], args=_apply_args(changes))
        return _apply_result(reply)

    async def delete(self, key: str) -> None:
        with _mapped_errors():
            await self.client.delete(redis_key(self.prefix, key))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> AsyncRedisStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
