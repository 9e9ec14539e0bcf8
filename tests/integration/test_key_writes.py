"""``write_keys`` (keys set without loading the session), one suite over every
store that has it, blocking and async: the store side of a write that never reads."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.stores.base import ApplyResult
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.base import KeyWriter
from sharedsession.stores.base import KeyWrites
from sharedsession.stores.base import Record
from sharedsession.stores.base import Refresh
from sharedsession.stores.base import Written
from sharedsession.stores.base import writes_keys
from sharedsession.stores.redis import RedisStore
from tests.helpers import BlockingFacade
from tests.integration.contract_stores import Clock
from tests.integration.contract_stores import contract_clock  # noqa: F401 (the clock fixture)
from tests.integration.contract_stores import contract_store  # noqa: F401 (the store fixture)
from tests.servers import RedisServer
from tests.servers import SentinelSetup

STORES = [
    "memory",
    "memory-async",
    pytest.param("redis", marks=pytest.mark.integration),
    pytest.param("redis-async", marks=pytest.mark.integration),
    pytest.param("redis-cluster", marks=pytest.mark.integration),
    pytest.param("redis-cluster-async", marks=pytest.mark.integration),
    pytest.param("redis-sentinel", marks=pytest.mark.integration),
]


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def create(
    store: Any, clock: Any, data: dict[str, str], *, ttl: float = 60, absolute: float | None = None
) -> str:
    k = store_key(new_id())
    now = clock()
    result = store.apply(k, ChangeSet(now, now + ttl, data, created=now, absolute=absolute))
    assert result is ApplyResult.APPLIED
    return k


def write(store: Any, k: str, writes: KeyWrites) -> Written | None:
    written: Written | None = store.write_keys(k, writes)
    return written


def load(store: Any, k: str) -> Record | None:
    record: Record | None = store.load(k)
    return record


def test_the_built_in_stores_that_have_it_are_key_writers(store: Any) -> None:
    inner: Any = store.store if isinstance(store, BlockingFacade) else store
    assert writes_keys(inner)
    if not isinstance(store, BlockingFacade):
        assert isinstance(store, KeyWriter)


def test_keys_are_set_beside_the_others_and_the_deadline_moves(store: Any, clock: Any) -> None:
    k = create(store, clock, {"a": "1", "b": "2"}, ttl=30)
    now = clock()
    written = write(store, k, KeyWrites(now, 600, None, {"b": "20", "c": "3"}))
    assert written is not None
    assert written.expires == pytest.approx(now + 600)
    record = load(store, k)
    assert record is not None and dict(record.data) == {"a": "1", "b": "20", "c": "3"}
    # The deadline moved: a refresh asking for less than it has writes nothing.
    again = store.load(k, refresh=Refresh(clock(), 500, step=0))
    assert again is not None and not again.refreshed


def test_the_stored_text_of_the_key_asked_for_is_returned(store: Any, clock: Any) -> None:
    k = create(store, clock, {"_permanent": "false", ":odd": "1"})
    writes = KeyWrites(clock(), 60, None, {":odd": "2", "x": "1"}, read="_permanent")
    written = write(store, k, writes)
    assert written is not None and written.value == "false"
    record = load(store, k)
    assert record is not None
    assert dict(record.data) == {"_permanent": "false", ":odd": "2", "x": "1"}
    missing = write(store, k, KeyWrites(clock(), 60, None, {"y": "1"}, read="nothing"))
    assert missing is not None and missing.value is None
    escaped = write(store, k, KeyWrites(clock(), 60, None, {}, read=":odd"))
    assert escaped is not None and escaped.value == "2"


def test_the_new_deadline_never_passes_the_absolute_one(store: Any, clock: Any) -> None:
    now = clock()
    k = create(store, clock, {"a": "1"}, absolute=now + 100)
    written = write(store, k, KeyWrites(clock(), 3600, None, {"b": "2"}))
    assert written is not None and written.expires == pytest.approx(now + 100)


def test_the_configured_lifetime_caps_a_session_created_without_one(store: Any, clock: Any) -> None:
    k = create(store, clock, {"a": "1"})
    record = load(store, k)
    assert record is not None
    written = write(store, k, KeyWrites(clock(), 3600, 200, {"b": "2"}))
    assert written is not None and written.expires == pytest.approx(record.created + 200)


def test_nothing_is_written_where_no_session_lives(store: Any, clock: Any) -> None:
    unknown = store_key(new_id())
    assert write(store, unknown, KeyWrites(clock(), 60, None, {"a": "1"})) is None
    assert load(store, unknown) is None
    ended = create(store, clock, {"user": '"ann"'})
    store.delete(ended)  # a logout: a request that only sets keys never brings it back
    assert write(store, ended, KeyWrites(clock(), 60, None, {"a": "1"})) is None
    assert load(store, ended) is None


def test_nothing_is_written_past_the_absolute_deadline(store: Any, clock: Clock) -> None:
    k = create(store, clock, {"a": "1"})
    record = load(store, k)
    assert record is not None
    clock.advance(0.01)  # past the configured lifetime of 0.001 s from creation
    assert write(store, k, KeyWrites(clock(), 60, 0.001, {"b": "2"})) is None
    record = load(store, k)
    assert record is not None and dict(record.data) == {"a": "1"}


def test_a_renewals_forwarding_marker_is_never_written(store: Any, clock: Any) -> None:
    old = create(store, clock, {"a": "1"})
    new = store_key(new_id())
    now = clock()
    moved = ChangeSet(now, now + 60, replaces=old, forward="sealed", forward_until=now + 30)
    assert store.apply(new, moved) is ApplyResult.APPLIED
    assert write(store, old, KeyWrites(clock(), 60, None, {"b": "2"})) is None
    marker = load(store, old)
    assert marker is not None and marker.forward == "sealed" and dict(marker.data) == {}


def test_nothing_is_written_when_the_keys_could_exceed_the_limit(store: Any, clock: Any) -> None:
    k = create(store, clock, {str(n): "1" for n in range(20)})
    assert write(store, k, KeyWrites(clock(), 60, None, {"x": "1"}, max_keys=20)) is None
    record = load(store, k)
    assert record is not None and "x" not in record.data
    # Far from the limit: written (a store may count its metadata against it).
    assert write(store, k, KeyWrites(clock(), 60, None, {"x": "1"}, max_keys=40)) is not None


def test_many_keys_in_one_write(store: Any, clock: Any) -> None:
    k = create(store, clock, {"a": "1"})
    many = {f"k{n}": str(n) for n in range(2500)}
    assert write(store, k, KeyWrites(clock(), 60, None, many)) is not None
    record = load(store, k)
    assert record is not None and len(record.data) == 2501 and record.data["k2499"] == "2499"


def test_a_bound_session_stays_listed_for_its_user(store: Any, clock: Any) -> None:
    k = store_key(new_id())
    now = clock()
    login = ChangeSet(now, now + 60, {"a": "1"}, created=now, bind=True, user_id="ann", idle=60)
    assert store.apply(k, login) is ApplyResult.APPLIED
    assert write(store, k, KeyWrites(clock(), 600, None, {"b": "2"})) is not None
    assert [info.handle for info in store.sessions_for_user("ann")] == [k]


@pytest.mark.integration
def test_with_acknowledged_writes_the_store_writes_nothing_unread(
    sentinel: SentinelSetup,
) -> None:
    # With SESSION_REDIS_MIN_REPLICAS the save loads instead (docs/decisions.md):
    # an unchanged key would become a write waiting for the replicas.
    with RedisStore.from_url(sentinel.url, min_replicas=1) as store:
        k = create(store, time.time, {"a": "1"})
        assert write(store, k, KeyWrites(time.time(), 60, None, {"a": "2"})) is None
        record = load(store, k)
        assert record is not None and dict(record.data) == {"a": "1"}


@pytest.mark.integration
@pytest.mark.parametrize(
    "damage",
    [{":created": "yesterday"}, {":absolute": "never"}, {":issued": "x"}],
    ids=["created", "absolute", "issued"],
)
def test_damaged_metadata_is_not_written_unread(
    redis_server: RedisServer, redis_client: Any, damage: dict[str, str]
) -> None:
    with RedisStore(redis_server.client()) as store:
        k = create(store, time.time, {"a": "1"})
        name = f"session:{{{k}}}"
        redis_client.hset(name, mapping=damage)
        assert write(store, k, KeyWrites(time.time(), 60, None, {"b": "2"})) is None
        assert redis_client.hget(name, "b") is None
        redis_client.delete(name)
        redis_client.set(name, "not a hash")
        assert write(store, k, KeyWrites(time.time(), 60, None, {"b": "2"})) is None
        assert redis_client.get(name) == b"not a hash"


@pytest.mark.integration
def test_the_hash_lives_until_the_deadline_it_records(
    redis_server: RedisServer, redis_client: Any
) -> None:
    # The idle deadline comes as text from the client; an absolute one that
    # comes first (also before an endless idle lifetime) is worked out by the
    # script: both set the same TTL as ':expires'.
    with RedisStore(redis_server.client()) as store:
        soon = time.time() + 100
        for absolute, idle in ((None, 600.25), (soon, 3600), (soon, math.inf)):
            k = create(store, time.time, {"a": "1"}, absolute=absolute)
            now = time.time()
            written = write(store, k, KeyWrites(now, idle, None, {"b": "2"}))
            assert written is not None
            expected = now + idle if absolute is None else absolute
            assert written.expires == pytest.approx(expected, abs=1e-6)
            name = f"session:{{{k}}}"
            assert float(redis_client.hget(name, ":expires")) == written.expires
            left_ms = redis_client.pttl(name)
            # Less only by the time gone since the write (a wrong unit or
            # argument would be off by far more).
            assert (written.expires - time.time()) * 1000 - 50 <= left_ms
            assert left_ms <= (written.expires - now) * 1000 + 1
