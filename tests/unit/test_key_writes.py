"""A request that only sets keys: written without loading the session, and
what the save does when that cannot be done."""

from __future__ import annotations

from typing import Any

import pytest

from sharedsession._driver import loader
from sharedsession._driver import save
from sharedsession.crypto import Encryptor
from sharedsession.crypto import generate_key
from sharedsession.errors import SerializationError
from sharedsession.errors import SessionTooLarge
from sharedsession.expiry import ExpiryPolicy
from sharedsession.ids import store_key
from sharedsession.manager import Cookie
from sharedsession.manager import SessionManager
from sharedsession.metrics import instrument
from sharedsession.session import Session
from sharedsession.stores.base import ApplyResult
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.base import Record
from sharedsession.stores.base import Refresh
from sharedsession.stores.base import writes_keys
from sharedsession.stores.memory import MemoryStore
from tests.conftest import FakeClock
from tests.flask_apps import make_app
from tests.helpers import CountingStore


def make(
    clock: FakeClock, *, absolute: float | None = None, **options: Any
) -> tuple[SessionManager, CountingStore]:
    manager = SessionManager(ExpiryPolicy(3600, absolute), clock=clock, **options)
    return manager, CountingStore(MemoryStore(clock=clock))


def open_(manager: SessionManager, store: Any, sid: str | None) -> Session:
    return manager.open(sid, loader(manager, store), unread=writes_keys(store))


def saved(manager: SessionManager, store: Any, **data: Any) -> str:
    session = open_(manager, store, None)
    session.update(data)
    assert save(store, manager, session) is not None
    store.calls.clear()
    return session.sid


def stored(manager: SessionManager, store: Any, sid: str) -> dict[str, Any] | None:
    session = open_(manager, store, sid)
    data = None if session.new else session.copy()
    store.calls.clear()
    return data


def test_keys_only_set_are_written_in_one_call_beside_the_others(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, user="ann", cart=[1])
    clock.advance(100)
    session = open_(manager, store, sid)
    session["theme"] = "dark"
    session.update(cart=[1, 2])
    assert session.modified
    assert save(store, manager, session) == Cookie(sid, clock.now + 3600)
    assert dict(store.calls) == {"write_keys": 1}
    assert stored(manager, store, sid) == {"user": "ann", "cart": [1, 2], "theme": "dark"}


def test_the_cookie_follows_the_stored_permanent_flag(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1, _permanent=False)
    session = open_(manager, store, sid)
    session["b"] = 2
    # Within a refresh step of its deadline: the deadline stays, the cookie holds.
    assert save(store, manager, session) is None
    clock.advance(100)
    session = open_(manager, store, sid)
    session["b"] = 3
    assert save(store, manager, session) == Cookie(sid, None)  # a browser-session cookie
    session = open_(manager, store, sid)
    session.permanent = True  # loads: set on every request by many apps, rarely changed
    session["c"] = 3
    assert save(store, manager, session) == Cookie(sid, clock.now + 3600)
    assert dict(store.calls) == {"write_keys": 2, "load": 1, "apply": 1}
    store.calls.clear()
    session = open_(manager, store, sid)
    session.permanent = True
    assert save(store, manager, session) is None  # unchanged: nothing written, nothing sent
    assert dict(store.calls) == {"load": 1}


def test_the_cookie_never_outlives_the_absolute_deadline(clock: FakeClock) -> None:
    manager, store = make(clock, absolute=5000)
    start = clock.now
    sid = saved(manager, store, a=1)
    clock.advance(3000)
    session = open_(manager, store, sid)
    session["b"] = 2
    assert save(store, manager, session) == Cookie(sid, start + 5000)


def test_a_session_past_its_absolute_deadline_is_not_written_its_keys_start_a_new_one(
    clock: FakeClock,
) -> None:
    manager, store = make(clock, absolute=5000)
    sid = saved(manager, store, user="ann")
    clock.advance(3000)
    touch = open_(manager, store, sid)
    touch["seen"] = 1  # keeps it from idling out
    save(store, manager, touch)
    store.calls.clear()
    clock.advance(2500)
    # Still stored (its idle deadline has not passed), but past its hard deadline.
    session = open_(manager, store, sid)
    session["b"] = 2
    cookie = save(store, manager, session)
    assert dict(store.calls) == {"write_keys": 1, "load": 1, "apply": 1}
    assert cookie is not None and cookie.value not in (None, sid)
    assert stored(manager, store, sid) is None
    assert stored(manager, store, cookie.value) == {"b": 2}


def test_a_session_that_ended_before_the_save_is_never_written_again(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, user="ann")
    session = open_(manager, store, sid)
    session.bind_user("ann", regenerate=False)
    save(store, manager, session)
    session = open_(manager, store, sid)
    session["theme"] = "dark"  # set while the session lived ...
    store.delete(store_key(sid))  # ... then a logout or a revocation
    store.calls.clear()
    cookie = save(store, manager, session)
    assert dict(store.calls) == {"write_keys": 1, "load": 1, "apply": 1}
    # As for a request that came just after the logout: its keys start a new,
    # unbound session with a new ID; the ended one, its data and its user stay gone.
    assert cookie is not None and cookie.value not in (None, sid)
    assert stored(manager, store, sid) is None
    assert stored(manager, store, cookie.value) == {"theme": "dark"}
    assert store.sessions_for_user("ann") == []


def test_keys_set_then_read_are_this_requests_values(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1, b=2)
    session = open_(manager, store, sid)
    session["a"] = 10
    assert session["a"] == 10 and session["b"] == 2  # loaded, with the set key on top
    assert dict(session) == {"a": 10, "b": 2}
    save(store, manager, session)
    assert dict(store.calls) == {"load": 1, "apply": 1}
    assert stored(manager, store, sid) == {"a": 10, "b": 2}


def test_too_many_keys_is_refused_and_nothing_is_written(clock: FakeClock) -> None:
    manager, store = make(clock, max_keys=3)
    sid = saved(manager, store, a=1, b=2, c=3)
    session = open_(manager, store, sid)
    session["d"] = 4
    with pytest.raises(SessionTooLarge):
        save(store, manager, session)
    assert stored(manager, store, sid) == {"a": 1, "b": 2, "c": 3}
    session = open_(manager, store, sid)
    session.update(w=1, x=2, y=3, z=4)
    with pytest.raises(SessionTooLarge):  # known without asking the store
        save(store, manager, session)
    assert store.total == 0
    session = open_(manager, store, sid)
    session["a"] = 100  # a key it has: within the limit
    save(store, manager, session)
    assert stored(manager, store, sid) == {"a": 100, "b": 2, "c": 3}


def test_a_value_that_cannot_be_stored_writes_nothing(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    session = open_(manager, store, sid)
    session["ok"] = 1
    session["bad"] = object()
    with pytest.raises(SerializationError, match="bad"):
        save(store, manager, session)
    assert store.total == 0
    assert stored(manager, store, sid) == {"a": 1}


@pytest.mark.parametrize(
    "options",
    [
        {"renewal": 600.0},
        {"max_size": 4096},
        {"encryptor": Encryptor([generate_key()])},
    ],
    ids=["renewal", "max_size", "encryption"],
)
def test_a_save_that_needs_the_stored_session_loads_it(
    clock: FakeClock, options: dict[str, Any]
) -> None:
    manager, store = make(clock, **options)
    assert not manager.writes_unread
    sid = saved(manager, store, a=1)
    session = open_(manager, store, sid)
    session["b"] = 2
    save(store, manager, session)
    assert dict(store.calls) == {"load": 1, "apply": 1}
    assert stored(manager, store, sid) == {"a": 1, "b": 2}


class PlainStore:
    """A store of the four protocol methods only, as a user might write."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        self.calls.append("load")
        return self.inner.load(key, refresh=refresh)

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        self.calls.append("apply")
        return self.inner.apply(key, changes)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def close(self) -> None:
        self.inner.close()


def test_a_store_without_write_keys_loads_and_applies() -> None:
    store = PlainStore(MemoryStore())
    assert not writes_keys(store)
    app, _ = make_app(store=store)
    client = app.test_client()
    client.get("/set/a/1")
    store.calls.clear()
    client.get("/set/b/2")
    assert store.calls == ["load", "apply"]
    assert client.get("/get/a").text == "'1'" and client.get("/get/b").text == "'2'"


def test_a_wrapped_store_writes_keys_only_where_the_store_does() -> None:
    assert writes_keys(instrument(MemoryStore()))
    assert not writes_keys(instrument(PlainStore(MemoryStore())))


class PassThrough:
    """A wrapper as users write them: its own load/apply, the rest passed through."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.applied = 0

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        record: Record | None = self.store.load(key, refresh=refresh)
        return record

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        self.applied += 1
        result: ApplyResult = self.store.apply(key, changes)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_pass_through_wrapper_sees_every_write() -> None:
    wrapper = PassThrough(MemoryStore())
    assert not writes_keys(wrapper)  # its __getattr__ would let writes bypass its apply
    app, _ = make_app(store=wrapper)
    client = app.test_client()
    client.get("/set/a/1")
    client.get("/set/b/2")
    assert wrapper.applied == 2
    assert client.get("/get/b").text == "'2'"


def test_damaged_times_are_not_written_unread(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    entry = store.store._entries[store_key(sid)]  # type: ignore[attr-defined]
    entry.issued = "x"
    session = open_(manager, store, sid)
    session["b"] = 2
    cookie = save(store, manager, session)  # the load finds it invalid: a new session
    assert cookie is not None and cookie.value not in (None, sid)
    assert entry.data == {"a": "1"}
