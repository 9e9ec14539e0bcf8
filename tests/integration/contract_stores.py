"""The stores the contract suites run against, by kind, and their clocks.

A suite defines a ``kind`` fixture over the kinds it covers and imports
:func:`contract_clock` and :func:`contract_store`: the ``clock`` and
``store`` fixtures built from it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

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
from tests.conftest import FakeClock
from tests.helpers import BlockingFacade
from tests.servers import MemcachedServer
from tests.servers import RedisServer
from tests.servers import SentinelSetup


class RealClock:
    """Real time, for the Redis and memcached stores, whose TTLs the server keeps:
    advancing it sleeps."""

    def __call__(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        time.sleep(seconds)


Clock = FakeClock | RealClock


def clock_for(kind: str) -> Clock:
    """The store's clock: every ``now`` a test passes comes from it, and ``advance`` waits.

    The in-process stores decide expiry with it, so their waits cost nothing;
    a Redis or memcached server expires keys on its own clock, so there it is real time.
    """
    return RealClock() if kind.startswith(("redis", "memcached")) else FakeClock()


def make_store(kind: str, clock: Clock, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A store of ``kind`` (``"redis-async"``: the async twin behind a blocking facade)."""
    if kind == "memory":
        made: Any = MemoryStore(clock=clock)
    elif kind == "memory-async":
        made = BlockingFacade(AsyncMemoryStore(clock=clock))
    elif kind == "sqlite":
        made = SQLiteStore(tmp_path / "contract.sqlite3", clock=clock)
    elif kind == "sqlite-async":
        made = BlockingFacade(AsyncSQLiteStore(tmp_path / "contract.sqlite3", clock=clock))
    elif kind.startswith("sqlalchemy"):
        made = sqlalchemy_store(kind, clock, request, tmp_path)
    elif kind.startswith("memcached"):
        memcached: MemcachedServer = request.getfixturevalue("memcached_flushed")
        address = memcached.address
        made = (
            MemcachedStore(address)
            if kind == "memcached"
            else BlockingFacade(AsyncMemcachedStore(address))
        )
    elif kind == "redis-sentinel":
        sentinel: SentinelSetup = request.getfixturevalue("sentinel")  # emptied afterwards
        made = RedisStore.from_url(sentinel.url)
    elif kind.startswith("redis-cluster"):
        url: str = request.getfixturevalue("cluster_url")
        if kind == "redis-cluster":
            made = RedisStore.from_url(url)
        else:
            made = BlockingFacade(AsyncRedisStore.from_url(url))
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        request.getfixturevalue("redis_client")  # empties the server after the test
        if kind == "redis":
            made = RedisStore(server.client())
        else:
            made = BlockingFacade(AsyncRedisStore(redis.asyncio.Redis(port=server.port)))
    return made


def sqlalchemy_store(kind: str, clock: Clock, request: pytest.FixtureRequest, path: Path) -> Any:
    if kind == "sqlalchemy-sqlite":
        return SQLAlchemyStore(f"sqlite:///{path}/contract.sqlite3", clock=clock)
    url: str = request.getfixturevalue("postgres_url")
    if kind == "sqlalchemy":
        return SQLAlchemyStore(url, clock=clock)
    return BlockingFacade(AsyncSQLAlchemyStore(url, clock=clock))


@pytest.fixture(name="clock")
def contract_clock(kind: str) -> Clock:
    """The clock of the store of ``kind`` (see :func:`clock_for`)."""
    return clock_for(kind)


@pytest.fixture(name="store")
def contract_store(
    kind: str, clock: Clock, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Any]:
    """A store of ``kind``, closed after the test."""
    with make_store(kind, clock, request, tmp_path) as made:
        yield made
