"""Redis-specific layout and behaviour."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
import redis.asyncio

from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.stores import _redis_direct
from sharedsession.stores.base import ApplyResult
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.base import KeyWrites
from sharedsession.stores.base import Refresh
from sharedsession.stores.redis import AsyncRedisStore
from sharedsession.stores.redis import RedisStore
from tests.flask_apps import make_app
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


def test_one_readable_hash_per_session(redis_server: RedisServer, redis_client: Any) -> None:
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=redis_server.url)
    client = app.test_client()
    client.get("/append/apple")
    client.get("/set/:meta-looking/x")
    found = client.get_cookie("session")
    assert found is not None
    keys = redis_client.keys("*")
    assert keys == [f"session:{{{store_key(found.value)}}}".encode()]
    assert found.value.encode() not in keys[0]  # keyed by digest, not the ID
    fields = redis_client.hgetall(keys[0])
    assert fields[b"cart"] == b'["apple"]'
    assert fields[b"::meta-looking"] == b'"x"'
    meta = {b":created", b":issued", b":seen", b":expires"}
    assert set(fields) == {b"cart", b"::meta-looking", *meta}


def test_ttl_is_the_remaining_life(redis_server: RedisServer, redis_client: Any) -> None:
    app, _ = make_app(
        SESSION_TYPE="redis", SESSION_REDIS=redis_server.url, PERMANENT_SESSION_LIFETIME=600
    )
    client = app.test_client()
    client.get("/set/a/1")
    (key,) = redis_client.keys("*")
    assert 595_000 < redis_client.pttl(key) <= 600_000


def test_absolute_deadline_caps_ttl(redis_server: RedisServer, redis_client: Any) -> None:
    app, _ = make_app(
        SESSION_TYPE="redis",
        SESSION_REDIS=redis_server.url,
        PERMANENT_SESSION_LIFETIME=600,
        SESSION_ABSOLUTE_LIFETIME=30,
    )
    client = app.test_client()
    client.get("/set/a/1")
    client.get("/get/a")
    (key,) = redis_client.keys("*")
    assert 25_000 < redis_client.pttl(key) <= 30_000


def test_key_prefix(redis_server: RedisServer, redis_client: Any) -> None:
    app, _ = make_app(
        SESSION_TYPE="redis", SESSION_REDIS=redis_server.url, SESSION_KEY_PREFIX="shop:"
    )
    app.test_client().get("/set/a/1")
    (key,) = redis_client.keys("*")
    assert key.startswith(b"shop:{")


def test_decode_responses_client_works(redis_server: RedisServer, redis_client: Any) -> None:
    store = RedisStore(redis_server.client(decode_responses=True))
    k = store_key(new_id())
    now = time.time()
    store.apply(k, ChangeSet(now, now + 60, {"a": "1"}, created=now))
    record = store.load(k, refresh=Refresh(now, 60))
    assert record is not None and dict(record.data) == {"a": "1"}


def test_async_concurrent_saves_of_different_keys(
    redis_server: RedisServer, redis_client: Any
) -> None:
    async def main() -> dict[str, str]:
        async with AsyncRedisStore(redis.asyncio.Redis(port=redis_server.port)) as store:
            k = store_key(new_id())
            now = time.time()
            await store.apply(k, ChangeSet(now, now + 60, {"seed": "0"}, created=now))

            async def save(i: int) -> ApplyResult:
                await store.load(k)
                return await store.apply(k, ChangeSet(time.time(), now + 60, {f"k{i}": str(i)}))

            results = await asyncio.gather(*(save(i) for i in range(50)))
            assert set(results) == {ApplyResult.APPLIED}
            record = await store.load(k)
            assert record is not None
            return dict(record.data)

    data = asyncio.run(main())
    assert data == {"seed": "0", **{f"k{i}": str(i) for i in range(50)}}


def _writer(url: str, key: str, worker: int, count: int) -> None:
    store = RedisStore.from_url(url)
    for i in range(count):
        assert store.load(key) is not None
        now = time.time()
        store.apply(key, ChangeSet(now, now + 60, {f"w{worker}-{i}": str(i)}))
    store.close()


def test_many_processes_share_one_session(redis_server: RedisServer, redis_client: Any) -> None:
    import multiprocessing

    key = store_key(new_id())
    store = RedisStore.from_url(redis_server.url)
    now = time.time()
    store.apply(key, ChangeSet(now, now + 60, {"seed": "0"}, created=now))
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_writer, args=(redis_server.url, key, w, 25)) for w in range(4)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    record = store.load(key)
    assert record is not None and len(record.data) == 1 + 4 * 25
    store.close()


def test_revocation_while_the_session_gets_a_new_id(
    redis_server: RedisServer, redis_client: Any
) -> None:
    """revoke() between the two steps of a regeneration ends the new session too."""
    from sharedsession.stores import _redis_layout as layout
    from sharedsession.stores.base import ChangeSet

    store = RedisStore(redis_server.client())
    old, new = store_key(new_id()), store_key(new_id())
    now = time.time()
    store.apply(old, ChangeSet(now, now + 60, {"a": "1"}, created=now, bind=True, user_id="u"))
    flow = layout.apply(store.prefix, new, ChangeSet(now, now + 60, replaces=old, handle=old))
    reply = None
    op = flow.send(reply)
    reply = store._do(op)  # the old hash is taken ...
    store.revoke(old)  # ... an operator revokes the handle now (nothing is there to end) ...
    try:
        while True:
            reply = store._do(flow.send(reply))
    except StopIteration as stop:
        result = stop.value
    assert result.value == "gone"  # ... and the new session ends instead of living on
    assert store.load(new) is None and store.sessions_for_user("u") == []


def test_user_index_expires_and_a_login_is_bounded(
    redis_server: RedisServer, redis_client: Any
) -> None:
    app, ext = make_app(
        SESSION_TYPE="redis", SESSION_REDIS=redis_server.url, PERMANENT_SESSION_LIFETIME=600
    )
    client = app.test_client()
    client.get("/login/zed")
    ttl = redis_client.pttl("session:user:zed")
    assert 0 < ttl <= 600_000  # the index lives as long as its longest session
    # 10,000 more entries in the index: a login does not walk them.
    redis_client.zadd("session:user:zed", {f"h{i}": i for i in range(10_000)})
    app.test_client().get("/login/zed")  # (its round trips: test_round_trips.py)
    with app.app_context():
        assert len(ext.sessions_for_user("zed")) == 2  # listing prunes the dead entries
    assert redis_client.zcard("session:user:zed") == 2


def test_connections_the_server_dropped_are_replaced_on_the_hot_path(
    redis_server: RedisServer, redis_client: Any
) -> None:
    """Reads and writes skip redis-py's command layers, not its pool's check that a
    pooled connection is still open (as after a Redis restart or an idle timeout)."""
    store = RedisStore.from_url(redis_server.url)
    k, now = store_key(new_id()), time.time()
    assert store.apply(k, ChangeSet(now, now + 60, {"a": "1"}, created=now)) is ApplyResult.APPLIED
    for i in range(3):
        killed = redis_client.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1  # the store's pooled connection is gone
        now = time.time()
        changes = ChangeSet(now, now + 60, {"a": str(i)})
        assert store.apply(k, changes) is ApplyResult.APPLIED
        redis_client.client_kill_filter(_type="normal", skipme=True)
        record = store.load(k, refresh=Refresh(now, 60, 0))
        assert record is not None and record.data["a"] == str(i)
    store.close()


def test_connections_the_server_dropped_are_replaced_on_the_async_hot_path(
    redis_server: RedisServer, redis_client: Any
) -> None:
    async def main() -> None:
        store = AsyncRedisStore.from_url(redis_server.url)
        k, now = store_key(new_id()), time.time()
        created = ChangeSet(now, now + 60, {"a": "1"}, created=now)
        assert await store.apply(k, created) is ApplyResult.APPLIED
        for i in range(3):
            assert redis_client.client_kill_filter(_type="normal", skipme=True) >= 1
            now = time.time()
            changes = ChangeSet(now, now + 60, {"a": str(i)})
            assert await store.apply(k, changes) is ApplyResult.APPLIED
            redis_client.client_kill_filter(_type="normal", skipme=True)
            record = await store.load(k, refresh=Refresh(now, 60, 0))
            assert record is not None and record.data["a"] == str(i)
        await store.aclose()

    asyncio.run(main())


def test_scans_walk_every_page_sync_and_async(redis_server: RedisServer, redis_client: Any) -> None:
    # Flask-Session's keys (what `sharedsession migrate` walks) beside our own
    # hashes: each scan finds all of its own kind, over many SCAN pages.
    sids = {new_id() for _ in range(120)}
    for sid in sids:
        redis_client.set(f"session:{sid}", b"\x80", ex=60)
    with RedisStore.from_url(redis_server.url) as store:
        keys = set()
        for _ in range(30):
            k = store_key(new_id())
            now = time.time()
            store.apply(k, ChangeSet(now, now + 60, {"a": "1"}, created=now))
            keys.add(k)
        assert set(store.flask_session_ids(count=7)) == sids
        assert {stored.key for stored in store.sessions()} == keys

    async def main() -> tuple[set[str], set[str]]:
        async with AsyncRedisStore.from_url(redis_server.url) as store:
            found = {sid async for sid in store.flask_session_ids(count=7)}
            listed = {stored.key async for stored in store.sessions()}
            return found, listed

    assert asyncio.run(main()) == (sids, keys)


@pytest.mark.parametrize("packer", ["hiredis", "redis-py"])
def test_a_flushed_script_cache_is_reloaded_sync_and_async(
    redis_server: RedisServer, redis_client: Any, packer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lone script (apply, then write_keys) meets NOSCRIPT: it is loaded
    # and sent again, and the write happens once. Commands are packed by
    # hiredis, or by redis-py's connection where hiredis is not installed.
    if packer == "redis-py":
        monkeypatch.setattr(_redis_direct, "_pack", None)
    key = store_key(new_id())
    now = time.time()
    with RedisStore(redis.Redis(port=redis_server.port)) as store:
        assert store.apply(key, ChangeSet(now, now + 60, {"a": "1"}, created=now)) is (
            ApplyResult.APPLIED
        )
        redis_client.script_flush()
        assert store.apply(key, ChangeSet(now, now + 60, {"b": "2"})) is ApplyResult.APPLIED
        redis_client.script_flush()
        written = store.write_keys(key, KeyWrites(time.time(), 60, None, {"d": '"é"'}))
        assert written is not None

    async def main() -> ApplyResult:
        store = AsyncRedisStore(redis.asyncio.Redis(port=redis_server.port))
        try:
            redis_client.script_flush()
            return await store.apply(key, ChangeSet(now, now + 60, {"c": "3"}))
        finally:
            await store.aclose()

    assert asyncio.run(main()) is ApplyResult.APPLIED
    stored = redis_client.hgetall(f"session:{{{key}}}")
    assert {k: v for k, v in stored.items() if not k.startswith(b":")} == {
        b"a": b"1",
        b"b": b"2",
        b"c": b"3",
        b"d": '"é"'.encode(),
    }
