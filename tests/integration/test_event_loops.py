"""One async Redis or SQL store on several event loops, one after another or at once.

An asyncio connection (and a pool's lock) works only on the loop that opened
it. Starlette's and FastAPI's ``TestClient`` used without ``with`` runs each
request on a loop of its own, pytest-asyncio gives each test one, and so does
each ``asyncio.run``: the store must serve every one of them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import weakref
from typing import Any

import pytest
import redis
import redis.asyncio
import uvloop
from redis.asyncio.sentinel import Sentinel
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sharedsession.asgi import SessionMiddleware
from sharedsession.ids import store_key
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.redis import AsyncRedisStore
from sharedsession.stores.sqlalchemy import AsyncSQLAlchemyStore
from tests.servers import RedisServer
from tests.servers import SentinelSetup
from tests.servers import wait_until


@pytest.fixture(params=["standalone", "sentinel", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "standalone":
        server: RedisServer = request.getfixturevalue("redis_server")
        request.getfixturevalue("redis_client")  # emptied after the test
        return server.url
    if request.param == "sentinel":
        setup: SentinelSetup = request.getfixturevalue("sentinel")
        return setup.url
    found: str = request.getfixturevalue("cluster_url")
    return found


#: The name the stores under count give their connections (the server is shared).
NAME = "event-loops-test"


def connections(client: redis.Redis) -> int:
    """How many connections of the stores under count the server has."""
    return sum(1 for each in client.client_list() if each.get("name") == NAME)


def settles_at_most(client: redis.Redis, most: int) -> None:
    """Wait until the server has seen the closed connections go (their FIN)."""
    wait_until(lambda: connections(client) <= most, f"at most {most} connections")


def counter_app(store: AsyncRedisStore) -> Starlette:
    async def count(request: Request) -> PlainTextResponse:
        request.session["n"] = request.session.get("n", 0) + 1
        return PlainTextResponse(str(request.session["n"]))

    app = Starlette(routes=[Route("/", count)])
    app.add_middleware(SessionMiddleware, store=store, debug=True)
    return app


def stored_count(url: str, sid: str) -> Any:
    """What a store of its own, on a loop of its own, reads for ``sid``."""

    async def read() -> Any:
        store = AsyncRedisStore.from_url(url)
        try:
            record = await store.load(store_key(sid))
        finally:
            await store.aclose()
        return None if record is None else record.data.get("n")

    return asyncio.run(read())


def test_a_test_client_without_with_keeps_the_session(url: str) -> None:
    store = AsyncRedisStore.from_url(url)
    client = TestClient(counter_app(store))  # no `with`: each request, a new event loop
    assert [client.get("/").text for _ in range(4)] == ["1", "2", "3", "4"]
    sid = client.cookies["session"]
    assert stored_count(url, sid) == "4"


@pytest.mark.parametrize("blocking", [False, True])
def test_the_apps_own_client_serves_later_loops_and_stays_the_apps(
    redis_server: RedisServer, redis_client: redis.Redis, blocking: bool
) -> None:
    kind = redis.asyncio.BlockingConnectionPool if blocking else redis.asyncio.ConnectionPool
    pool = kind(host="127.0.0.1", port=redis_server.port, client_name=NAME)
    apps_client = redis.asyncio.Redis(connection_pool=pool)
    client = TestClient(counter_app(AsyncRedisStore(apps_client)))
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    assert stored_count(redis_server.url, client.cookies["session"]) == "3"
    settles_at_most(redis_client, 0)  # each loop closed what it opened
    # The app's client was not closed: it serves the app on a loop of its own.

    async def apps_own_use() -> Any:
        try:
            return await apps_client.get("no-such-key")
        finally:
            await pool.disconnect()  # the app's to close

    assert asyncio.run(apps_own_use()) is None


def test_loops_one_after_another(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    store = AsyncRedisStore.from_url(redis_server.url, max_connections=2)
    key = store_key("s" * 43)

    async def bump(expected: int) -> None:
        record = await store.load(key)
        count = 0 if record is None else int(record.data["n"])
        assert count == expected
        now = time.time()
        created = now if record is None else None
        changes = ChangeSet(now, now + 60, {"n": str(count + 1)}, created=created)
        assert (await store.apply(key, changes)).value == "applied"

    # asyncio's loop and uvloop's, more loops than the store has connections.
    for round_ in range(4):
        run = uvloop.run if round_ % 2 else asyncio.run
        run(bump(round_))
    assert redis_client.hget(f"session:{{{key}}}", "n") == b"4"


def test_two_loops_at_once(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    store = AsyncRedisStore.from_url(redis_server.url, max_connections=2)
    errors: list[BaseException] = []
    done = []

    async def writes(name: str) -> None:
        key = store_key(name * 43)
        now = time.time()
        await store.apply(key, ChangeSet(now, now + 60, {"n": "0"}, created=now))
        for n in range(1, 101):
            # Several at once on this loop, while the other thread's loop runs too.
            await asyncio.gather(*(store.load(key) for _ in range(3)))
            later = time.time()
            await store.apply(key, ChangeSet(later, later + 60, {"n": str(n)}))
        done.append(name)

    def thread(name: str) -> None:
        try:
            asyncio.run(writes(name))
        except BaseException as exc:  # reported below, with the thread's name
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(name,)) for name in "ab"]
    for each in threads:
        each.start()
    for each in threads:
        each.join(60)
    assert errors == []
    assert sorted(done) == ["a", "b"]
    for name in "ab":
        assert redis_client.hget(f"session:{{{store_key(name * 43)}}}", "n") == b"100"


def test_connections_close_with_their_loop_or_aclose(
    redis_server: RedisServer, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store = AsyncRedisStore.from_url(redis_server.url, client_name=NAME)
    key = store_key("c" * 43)

    async def use(close: bool) -> int:
        await asyncio.gather(*(store.load(key) for _ in range(5)))
        opened = connections(redis_client)
        if close:
            await store.aclose()
            assert await store.load(key) is None  # used again after aclose: it reconnects
        return opened

    assert asyncio.run(use(close=False)) >= 1
    settles_at_most(redis_client, 0)  # closed as the loop shut down
    assert uvloop.run(use(close=False)) >= 1
    settles_at_most(redis_client, 0)
    with caplog.at_level(logging.WARNING, logger="sharedsession"):
        assert asyncio.run(use(close=True)) >= 1
    settles_at_most(redis_client, 0)
    assert caplog.records == []


def test_a_loop_that_ended_is_not_kept(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    store = AsyncRedisStore.from_url(redis_server.url, client_name=NAME)
    key = store_key("k" * 43)
    ended = []
    for _ in range(20):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(store.load(key))
        loop.run_until_complete(loop.shutdown_asyncgens())  # as asyncio.run ends
        loop.close()
        ended.append(weakref.ref(loop))
        del loop
    gc.collect()
    alive = [i for i, each in enumerate(ended) if each() is not None]
    # The first loop's closed connections stay in the pool of the client the
    # store was given, and still name that loop: one loop, however many run.
    assert alive in ([], [0])
    settles_at_most(redis_client, 0)


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_loop_closed_without_finalizing_is_let_go_at_the_next(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    # loop.close() alone (no shutdown_asyncgens): nothing closes that loop's
    # connections; the store lets them go when the next loop starts, except
    # the first loop's, which stay in the pool of the client it was given.
    store = AsyncRedisStore.from_url(redis_server.url, client_name=NAME)
    key = store_key("k" * 43)

    async def three_loads(store: AsyncRedisStore) -> None:
        await asyncio.gather(*(store.load(key) for _ in range(3)))

    ended = []
    for _ in range(10):
        loop = asyncio.new_event_loop()
        loop.run_until_complete(three_loads(store))
        loop.close()
        ended.append(weakref.ref(loop))
        del loop
    gc.collect()
    alive = [i for i, each in enumerate(ended) if each() is not None]
    assert set(alive) <= {0, 9}  # the first and the last, until a next
    settles_at_most(redis_client, 6)  # at most those two loops' three each
    del store
    gc.collect()  # the sockets nobody closed go now, under this test's warning filters
    settles_at_most(redis_client, 0)


def test_the_apps_own_sentinel_client_on_a_later_loop_says_what_to_do(
    sentinel: SentinelSetup, caplog: pytest.LogCaptureFixture
) -> None:
    hosts = [("127.0.0.1", each.port) for each in sentinel.sentinels]
    manager = Sentinel(hosts)  # type: ignore[no-untyped-call]
    apps_client = manager.master_for(sentinel.service)
    store = AsyncRedisStore(apps_client)
    key = store_key("w" * 43)

    async def on_a_loop() -> Any:
        try:
            return await store.load(key)
        finally:  # the app closes its client as each loop ends (its lifespan)
            await apps_client.aclose()
            for each in manager.sentinels:
                await each.aclose()

    with caplog.at_level(logging.WARNING, logger="sharedsession"):
        assert [asyncio.run(on_a_loop()) for _ in range(3)] == [None, None, None]
    warned = [r for r in caplog.records if "give the store a URL" in r.getMessage()]
    assert len(warned) == 1  # once, on the second loop


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+asyncpg"])
def test_a_sql_store_on_loops_one_after_another(postgres_url: str, driver: str) -> None:
    # A pool of one: three calls at once make the later ones wait on the pool's
    # queue, which then belongs to that loop (asyncpg's connections always do).
    store = AsyncSQLAlchemyStore(postgres_url.replace("postgresql", driver, 1), pool_size=1)
    key = store_key("q" * 43)

    async def bump(expected: int) -> None:
        records = await asyncio.gather(*(store.load(key) for _ in range(3)))
        counts = {0 if record is None else int(record.data["n"]) for record in records}
        assert counts == {expected}
        now = time.time()
        created = now if expected == 0 else None
        changes = ChangeSet(now, now + 60, {"n": str(expected + 1)}, created=created)
        assert (await store.apply(key, changes)).value == "applied"

    for round_ in range(3):
        asyncio.run(bump(round_))

    async def last() -> Any:
        try:
            return await store.load(key)
        finally:
            await store.aclose()

    record = asyncio.run(last())
    assert record is not None and record.data["n"] == "3"


@pytest.mark.parametrize("pooled", [True, False])
def test_the_apps_own_engine_on_later_loops(
    postgres_url: str, caplog: pytest.LogCaptureFixture, pooled: bool
) -> None:
    options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    engine = create_async_engine(
        postgres_url.replace("postgresql", "postgresql+psycopg", 1), **options
    )
    store = AsyncSQLAlchemyStore(engine)
    key = store_key("e" * 43)
    with caplog.at_level(logging.WARNING, logger="sharedsession"):
        assert [asyncio.run(store.load(key)) for _ in range(3)] == [None, None, None]
    warned = [r for r in caplog.records if "poolclass=NullPool" in r.getMessage()]
    # Pooled: once, on the second loop. NullPool keeps no connection: no warning.
    assert len(warned) == (1 if pooled else 0)
    asyncio.run(engine.dispose())  # the app's engine: the app disposes of it


def test_an_in_memory_sqlite_store_is_one_database_on_every_loop() -> None:
    store = AsyncSQLAlchemyStore("sqlite+aiosqlite://")
    key = store_key("m" * 43)

    async def bump(expected: int) -> None:
        record = await store.load(key)
        assert (0 if record is None else int(record.data["n"])) == expected
        now = time.time()
        created = now if record is None else None
        changes = ChangeSet(now, now + 60, {"n": str(expected + 1)}, created=created)
        assert (await store.apply(key, changes)).value == "applied"

    async def last() -> None:
        try:
            await bump(2)
        finally:
            await store.aclose()

    for round_ in range(2):
        asyncio.run(bump(round_))
    asyncio.run(last())
