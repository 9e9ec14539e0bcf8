"""Checked by mypy only: the built-in stores satisfy the store protocols."""

from __future__ import annotations

from sharedsession.stores.base import AsyncSessionStore
from sharedsession.stores.base import SessionStore
from sharedsession.stores.memcached import AsyncMemcachedStore
from sharedsession.stores.memcached import MemcachedStore
from sharedsession.stores.memory import MemoryStore
from sharedsession.stores.redis import AsyncRedisStore
from sharedsession.stores.redis import RedisStore
from sharedsession.stores.sqlite import SQLiteStore


def blocking(
    memory: MemoryStore, sqlite: SQLiteStore, redis: RedisStore, memcached: MemcachedStore
) -> list[SessionStore]:
    return [memory, sqlite, redis, memcached]


def non_blocking(redis: AsyncRedisStore, memcached: AsyncMemcachedStore) -> list[AsyncSessionStore]:
    return [redis, memcached]
