"""One contract suite, run against every store, blocking and async."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.stores.base import ApplyResult
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.base import Record
from sharedsession.stores.base import Refresh
from tests.integration.contract_stores import Clock
from tests.integration.contract_stores import contract_clock  # noqa: F401 (the clock fixture)
from tests.integration.contract_stores import contract_store  # noqa: F401 (the store fixture)

STORES = [
    "memory",
    "memory-async",
    "sqlite",
    "sqlite-async",
    pytest.param("redis", marks=pytest.mark.integration),
    pytest.param("redis-async", marks=pytest.mark.integration),
    pytest.param("redis-cluster", marks=pytest.mark.integration),
    pytest.param("redis-cluster-async", marks=pytest.mark.integration),
    pytest.param("sqlalchemy", marks=pytest.mark.integration),
    pytest.param("sqlalchemy-async", marks=pytest.mark.integration),
    "sqlalchemy-sqlite",
    pytest.param("memcached", marks=pytest.mark.integration),
    pytest.param("memcached-async", marks=pytest.mark.integration),
]


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def key() -> str:
    return store_key(new_id())


def create(
    store: Any,
    clock: Clock,
    k: str,
    data: Mapping[str, str],
    *,
    ttl: float = 60,
    absolute: float | None = None,
) -> ApplyResult:
    now = clock()
    result: ApplyResult = store.apply(
        k, ChangeSet(now, now + ttl, data, created=now, absolute=absolute)
    )
    return result


def update(store: Any, clock: Clock, k: str, ttl: float = 60, **fields: Any) -> ApplyResult:
    now = clock()
    result: ApplyResult = store.apply(k, ChangeSet(now, now + ttl, **fields))
    return result


def load(store: Any, k: str, refresh: Refresh | None = None) -> Record | None:
    record: Record | None = store.load(k, refresh=refresh)
    return record


def test_unknown_key_loads_none(store: Any) -> None:
    assert load(store, key()) is None


def test_create_then_load(store: Any, clock: Clock) -> None:
    k = key()
    before = clock()
    assert (
        create(store, clock, k, {"a": '"x"', "n": "1"}, absolute=before + 100)
        is ApplyResult.APPLIED
    )
    record = load(store, k)
    assert record is not None
    assert dict(record.data) == {"a": '"x"', "n": "1"}
    assert before <= record.created <= clock()
    assert record.absolute == pytest.approx(before + 100)


def test_create_over_existing_key_writes_nothing(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"})
    assert create(store, clock, k, {"b": "2"}) is ApplyResult.EXISTS
    record = load(store, k)
    assert record is not None and dict(record.data) == {"a": "1"}


def test_update_of_missing_record_is_gone_and_creates_nothing(store: Any, clock: Clock) -> None:
    k = key()
    assert update(store, clock, k, set={"a": "1"}) is ApplyResult.GONE
    assert load(store, k) is None


def test_save_in_flight_after_delete_stays_dead(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"user": '"alice"'})
    assert load(store, k) is not None  # a request loads the session ...
    store.delete(k)  # ... logout happens meanwhile ...
    assert (
        update(store, clock, k, set={"cart": "[1]"}) is ApplyResult.GONE
    )  # ... its save comes late
    assert load(store, k) is None


def test_update_writes_only_given_keys(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1", "b": "2", "c": "3"})
    assert update(store, clock, k, set={"b": "20", "d": "4"}, delete={"c"}) is ApplyResult.APPLIED
    record = load(store, k)
    assert record is not None and dict(record.data) == {"a": "1", "b": "20", "d": "4"}


def test_clear_removes_keys_not_set(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1", "b": "2"})
    assert update(store, clock, k, set={"z": "9"}, clear=True) is ApplyResult.APPLIED
    record = load(store, k)
    assert record is not None and dict(record.data) == {"z": "9"}


def test_apply_that_leaves_no_keys_deletes_the_record(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"})
    assert update(store, clock, k, delete={"a"}) is ApplyResult.APPLIED
    assert load(store, k) is None
    assert update(store, clock, k, set={"a": "1"}) is ApplyResult.GONE


def test_creation_metadata_survives_updates(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"}, absolute=clock() + 500)
    first = load(store, k)
    update(store, clock, k, set={"b": "2"}, clear=True)
    second = load(store, k)
    assert first is not None and second is not None
    assert second.created == pytest.approx(first.created)
    assert second.absolute == pytest.approx(first.absolute)


@pytest.mark.parametrize(
    "name", [":created", "::x", ":absolute", "", "{tag}", "ünïcode ✓", "a b", "x" * 300]
)
def test_any_string_is_a_key(store: Any, clock: Clock, name: str) -> None:
    k = key()
    create(store, clock, k, {name: '"v"', "other": "1"})
    record = load(store, k)
    assert record is not None and dict(record.data) == {name: '"v"', "other": "1"}
    update(store, clock, k, delete={name})
    record = load(store, k)
    assert record is not None and dict(record.data) == {"other": "1"}


def test_delete_of_unknown_key_is_fine(store: Any) -> None:
    store.delete(key())


def test_record_expires_at_its_deadline(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"}, ttl=0.2)
    assert load(store, k) is not None
    clock.advance(0.25)
    assert load(store, k) is None
    assert update(store, clock, k, set={"a": "2"}) is ApplyResult.GONE


def test_refresh_slides_the_deadline(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"}, ttl=0.2)
    clock.advance(0.05)
    assert load(store, k, Refresh(clock(), 5.0)) is not None
    clock.advance(0.2)  # past the first deadline
    record = load(store, k)
    assert record is not None and dict(record.data) == {"a": "1"}


def test_refresh_never_passes_the_absolute_deadline(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"}, ttl=0.2, absolute=clock() + 0.4)
    clock.advance(0.05)
    assert load(store, k, Refresh(clock(), 60.0)) is not None
    clock.advance(0.2)  # past the first deadline, before the absolute one
    assert load(store, k, Refresh(clock(), 60.0)) is not None
    clock.advance(0.2)  # past the absolute deadline
    assert load(store, k, Refresh(clock(), 60.0)) is None


def test_refresh_does_not_rewrite_data(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"})
    load(store, k, Refresh(clock(), 60.0))
    update(store, clock, k, set={"b": "2"})
    record = load(store, k, Refresh(clock(), 60.0))
    assert record is not None and dict(record.data) == {"a": "1", "b": "2"}


def test_refresh_of_unknown_key_creates_nothing(store: Any, clock: Clock) -> None:
    k = key()
    assert load(store, k, Refresh(clock(), 60.0)) is None
    assert load(store, k) is None


def test_update_with_past_deadline_ends_the_record(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"})
    now = clock()
    assert store.apply(k, ChangeSet(now, now - 1, {"b": "2"})) is ApplyResult.APPLIED
    assert load(store, k) is None


def test_concurrent_saves_of_different_keys_all_survive(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"seed": "0"})
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            assert load(store, k) is not None
            assert update(store, clock, k, set={f"k{i}": str(i)}) is ApplyResult.APPLIED
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    record = load(store, k)
    assert record is not None
    assert dict(record.data) == {"seed": "0", **{f"k{i}": str(i) for i in range(20)}}


def test_replaces_moves_the_record_and_kills_the_old_key(store: Any, clock: Clock) -> None:
    old, new = key(), key()
    created = clock() - 100
    now = clock()
    store.apply(old, ChangeSet(now, now + 60, {"a": "1", "b": "2"}, created=created))
    result = store.apply(
        new, ChangeSet(now + 1, now + 60, {"c": "3"}, frozenset({"b"}), replaces=old)
    )
    assert result is ApplyResult.APPLIED
    assert load(store, old) is None
    record = load(store, new)
    assert record is not None
    assert dict(record.data) == {"a": "1", "c": "3"}
    assert record.created == pytest.approx(created)  # the absolute clock keeps running
    assert record.issued == pytest.approx(now + 1)
    assert update(store, clock, old, set={"x": "1"}) is ApplyResult.GONE


def test_replaces_of_a_missing_record_is_gone(store: Any, clock: Clock) -> None:
    old, new = key(), key()
    now = clock()
    assert store.apply(new, ChangeSet(now, now + 60, {"a": "1"}, replaces=old)) is ApplyResult.GONE
    assert load(store, new) is None


def test_replaces_keeps_the_binding_and_absolute_deadline(store: Any, clock: Clock) -> None:
    old, new = key(), key()
    now = clock()
    store.apply(
        old,
        ChangeSet(
            now, now + 60, {"a": "1"}, created=now, absolute=now + 500, bind=True, user_id="u1"
        ),
    )
    store.apply(new, ChangeSet(now, now + 60, replaces=old))
    record = load(store, new)
    assert record is not None and record.user_id == "u1"
    assert record.absolute == pytest.approx(now + 500)
    # The handle names the session across new IDs: it stays its first key.
    assert [info.handle for info in store.sessions_for_user("u1")] == [old]


def test_bound_sessions_are_listed_with_metadata(store: Any, clock: Clock) -> None:
    user = f"user-{new_id()[:8]}"
    keys = [key() for _ in range(3)]
    for i, k in enumerate(keys):
        now = clock()
        store.apply(
            k,
            ChangeSet(
                now,
                now + 60,
                {"a": "1"},
                created=now + i,
                bind=True,
                user_id=user,
                client={"agent": f"browser {i}", "ip": "127.0.0.1"},
            ),
        )
    other = key()
    now = clock()
    store.apply(other, ChangeSet(now, now + 60, {"a": "1"}, created=now, bind=True, user_id="x"))
    infos = store.sessions_for_user(user)
    assert [info.handle for info in infos] == keys
    assert [info.client["agent"] for info in infos] == ["browser 0", "browser 1", "browser 2"]
    assert all(info.user_id == user and info.last_seen >= now - 1 for info in infos)
    assert store.sessions_for_user("nobody") == []


def test_bind_on_update_and_unbind(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"})
    assert update(store, clock, k, bind=True, user_id="u2") is ApplyResult.APPLIED
    record = load(store, k)
    assert record is not None and record.user_id == "u2"
    assert [info.handle for info in store.sessions_for_user("u2")] == [k]
    update(store, clock, k, bind=True, user_id=None)
    record = load(store, k)
    assert record is not None and record.user_id is None
    assert store.sessions_for_user("u2") == []


def test_bound_session_without_keys_lives(store: Any, clock: Clock) -> None:
    k = key()
    now = clock()
    store.apply(k, ChangeSet(now, now + 60, {}, created=now, bind=True, user_id="u3"))
    record = load(store, k)
    assert record is not None and record.user_id == "u3" and dict(record.data) == {}


def test_user_index_drops_deleted_expired_and_rebound_sessions(store: Any, clock: Clock) -> None:
    user = f"user-{new_id()[:8]}"
    keys = [key() for _ in range(4)]
    for i, k in enumerate(keys):
        now = clock()
        ttl = 0.1 if i == 1 else 60
        store.apply(
            k, ChangeSet(now, now + ttl, {"a": "1"}, created=now + i, bind=True, user_id=user)
        )
    store.delete(keys[0])
    update(store, clock, keys[2], bind=True, user_id="someone-else")
    clock.advance(0.15)
    assert [info.handle for info in store.sessions_for_user(user)] == [keys[3]]


def test_refresh_updates_last_seen(store: Any, clock: Clock) -> None:
    k = key()
    now = clock()
    store.apply(k, ChangeSet(now, now + 60, {"a": "1"}, created=now, bind=True, user_id="u4"))
    (before,) = store.sessions_for_user("u4")
    load(store, k, Refresh(now + 30, 60.0))
    (after,) = store.sessions_for_user("u4")
    assert after.last_seen == pytest.approx(now + 30) and before.last_seen == pytest.approx(now)


def test_a_renewal_leaves_a_forwarding_marker_until_it_expires(store: Any, clock: Clock) -> None:
    old, new = key(), key()
    now = clock()
    user = f"user-{new_id()[:8]}"
    store.apply(old, ChangeSet(now, now + 60, {"a": "1"}, created=now, bind=True, user_id=user))
    renewal = ChangeSet(now, now + 60, replaces=old, forward="sealed", forward_until=now + 0.2)
    assert store.apply(new, renewal) is ApplyResult.APPLIED
    marker = load(store, old, Refresh(clock(), 60.0))
    assert marker is not None and marker.forward == "sealed" and dict(marker.data) == {}
    # A marker is never written, replaced or listed; the session lives at the new key.
    assert update(store, clock, old, set={"x": "1"}) is ApplyResult.GONE
    again = ChangeSet(now, now + 60, replaces=old, forward="other", forward_until=now + 60)
    assert store.apply(key(), again) is ApplyResult.GONE
    assert [info.handle for info in store.sessions_for_user(user)] == [old]
    record = load(store, new)
    assert record is not None and record.forward is None and dict(record.data) == {"a": "1"}
    clock.advance(0.25)  # the marker was not extended by the refreshing load
    assert load(store, old) is None
    assert load(store, new) is not None


def test_a_marker_can_be_deleted(store: Any, clock: Clock) -> None:
    old, new = key(), key()
    now = clock()
    store.apply(old, ChangeSet(now, now + 60, {"a": "1"}, created=now))
    store.apply(new, ChangeSet(now, now + 60, replaces=old, forward="t", forward_until=now + 60))
    store.delete(old)
    assert load(store, old) is None and load(store, new) is not None


def test_a_load_says_whether_it_moved_the_deadline(store: Any, clock: Clock) -> None:
    k = key()
    create(store, clock, k, {"a": "1"}, ttl=10)
    skipped = load(store, k, Refresh(clock(), 10.0, step=5.0))
    assert skipped is not None and not skipped.refreshed
    clock.advance(0.05)
    moved = load(store, k, Refresh(clock(), 20.0, step=5.0))
    assert moved is not None and moved.refreshed
    plain = load(store, k)
    assert plain is not None and not plain.refreshed
