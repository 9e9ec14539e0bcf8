from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.servers import ClusterSetup
from tests.servers import MemcachedServer
from tests.servers import PostgresServer
from tests.servers import RedisServer
from tests.servers import SentinelSetup


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server for the whole run."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on the private server, emptied after each test (it is ours alone)."""
    client = redis_server.client()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[MemcachedServer]:
    """One private memcached for the whole run."""
    server = MemcachedServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def memcached_flushed(memcached_server: MemcachedServer) -> Iterator[MemcachedServer]:
    """The private memcached, emptied after each test (it is ours alone)."""
    try:
        yield memcached_server
    finally:
        memcached_server.flush()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.sqlite3"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterSetup]:
    """A private three-master Redis Cluster for the whole run."""
    setup = ClusterSetup(tmp_path_factory.mktemp("cluster"))
    try:
        yield setup.start()
    finally:
        setup.stop()


@pytest.fixture
def cluster_url(cluster: ClusterSetup) -> Iterator[str]:
    try:
        yield cluster.url
    finally:
        cluster.flush()


@pytest.fixture(scope="session")
def shared_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """A private master, replica and three Sentinels for the whole run; never failed over."""
    setup = SentinelSetup(tmp_path_factory.mktemp("sentinel"))
    try:
        yield setup.start()
    finally:
        setup.stop()


@pytest.fixture
def sentinel(shared_sentinel: SentinelSetup) -> Iterator[SentinelSetup]:
    """The shared Sentinel setup, emptied after each test; use ``fresh_sentinel`` to fail over."""
    master = shared_sentinel.master_port()
    try:
        yield shared_sentinel
    finally:
        shared_sentinel.flush()
    if shared_sentinel.master_port() != master:
        pytest.fail("a test changed the shared Sentinel's master; use fresh_sentinel")


@pytest.fixture
def fresh_sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    """A Sentinel setup of the test's own, for a test that forces a failover."""
    setup = SentinelSetup(tmp_path / "sentinel")
    try:
        yield setup.start()
    finally:
        setup.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One private PostgreSQL for the whole run."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The private PostgreSQL's URL; every table in it is dropped after the test."""
    try:
        yield postgres_server.url
    finally:
        if postgres_server.process is None:
            postgres_server.start()  # a test stopped it
        empty_postgres(postgres_server.url)


def empty_postgres(url: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


KINDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.integration),
    pytest.param("sqlalchemy", marks=pytest.mark.integration),
    pytest.param("memcached", marks=pytest.mark.integration),
]
"""The store kinds of ``store_config``: most behaviour is checked on each."""

LISTING_KINDS = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)]
"""The kinds whose store can list every session (memcached cannot enumerate its keys)."""


def store_config(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Flask-style config for a store kind; Redis and memcached use the private servers."""
    if kind == "memory":
        return {"SESSION_TYPE": "memory"}
    if kind == "sqlite":
        return {"SESSION_TYPE": "sqlite", "SESSION_SQLITE_PATH": str(tmp_path / "sessions.db")}
    if kind == "sqlalchemy":
        url: str = request.getfixturevalue("postgres_url")  # emptied afterwards
        return {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": url}
    if kind == "memcached":
        memcached: MemcachedServer = request.getfixturevalue("memcached_flushed")
        return {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": memcached.address}
    server: RedisServer = request.getfixturevalue("redis_server")
    request.getfixturevalue("redis_client")  # empties it afterwards
    return {"SESSION_TYPE": "redis", "SESSION_REDIS": server.url}
