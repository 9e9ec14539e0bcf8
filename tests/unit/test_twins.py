"""Sync/async twin pairs expose the same public methods with the same parameters."""

from __future__ import annotations

import inspect

import pytest

from sharedsession.admin import AsyncSessionAdmin
from sharedsession.admin import SessionAdmin
from sharedsession.flask import Session as FlaskSession
from sharedsession.metrics import AsyncInstrumentedStore
from sharedsession.metrics import InstrumentedStore
from sharedsession.quart import Session as QuartSession
from sharedsession.stores._redis_direct import AsyncDirect
from sharedsession.stores._redis_direct import Direct
from sharedsession.stores.memcached import AsyncMemcachedStore
from sharedsession.stores.memcached import MemcachedStore
from sharedsession.stores.memory import AsyncMemoryStore
from sharedsession.stores.memory import MemoryStore
from sharedsession.stores.redis import AsyncRedisStore
from sharedsession.stores.redis import RedisStore
from sharedsession.stores.sqlalchemy import AsyncSQLAlchemyStore
from sharedsession.stores.sqlalchemy import SQLAlchemyStore
from sharedsession.stores.sqlite import AsyncSQLiteStore
from sharedsession.stores.sqlite import SQLiteStore

#: Methods that stay blocking on the async side: construction and set-up.
NOT_ASYNC = {"from_url", "init_app"}


def public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("sync_class", "async_class"),
    [
        (RedisStore, AsyncRedisStore),
        (Direct, AsyncDirect),
        (SQLiteStore, AsyncSQLiteStore),
        (SQLAlchemyStore, AsyncSQLAlchemyStore),
        (MemoryStore, AsyncMemoryStore),
        (MemcachedStore, AsyncMemcachedStore),
        (FlaskSession, QuartSession),
        (SessionAdmin, AsyncSessionAdmin),
        (InstrumentedStore, AsyncInstrumentedStore),
    ],
)
def test_twins_have_the_same_public_methods(sync_class: type, async_class: type) -> None:
    sync, async_ = public(sync_class), public(async_class)
    if "close" in sync:
        assert async_.pop("aclose") and sync.pop("close")
    assert sync.keys() == async_.keys()
    for name in sync:
        assert list(sync[name].parameters) == list(async_[name].parameters), name
        member = getattr(async_class, name)
        is_async = inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
        assert is_async or name in NOT_ASYNC, name
