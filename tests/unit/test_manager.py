from __future__ import annotations

from typing import Any

import pytest

from sharedsession import _flows as flows
from sharedsession._driver import loader
from sharedsession._driver import run as drive
from sharedsession._driver import save
from sharedsession._state import preload
from sharedsession.errors import SessionTooLarge
from sharedsession.errors import StoreError
from sharedsession.expiry import ExpiryPolicy
from sharedsession.ids import CookieSigner
from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.manager import Cookie
from sharedsession.manager import SavePlan
from sharedsession.manager import SessionManager
from sharedsession.session import Session
from sharedsession.session import state
from sharedsession.session import untouched
from sharedsession.stores.base import ApplyResult
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.memory import MemoryStore
from tests.conftest import FakeClock
from tests.helpers import CountingStore


def make(
    clock: FakeClock, *, absolute: float | None = None, **options: Any
) -> tuple[SessionManager, MemoryStore]:
    manager = SessionManager(ExpiryPolicy(3600, absolute), clock=clock, **options)
    return manager, MemoryStore(clock=clock)


def run(manager: SessionManager, store: MemoryStore, session: Session) -> Cookie | None:
    return save(store, manager, session)


def saved(manager: SessionManager, store: MemoryStore, **data: Any) -> str:
    """Create and save a session holding ``data``; return its ID."""
    session = open_(manager, store, None)
    session.update(data)
    run(manager, store, session)
    return session.sid


def open_(manager: SessionManager, store: MemoryStore, cookie: str | None) -> Session:
    return manager.open(cookie, loader(manager, store))


def test_untouched_session_plans_nothing(clock: FakeClock) -> None:
    manager, store = make(clock)
    plan = manager.save_plan(open_(manager, store, new_id()))
    assert plan == SavePlan()


def test_an_opened_session_does_no_work_until_first_use(clock: FakeClock) -> None:
    manager, store = make(clock, signer=CookieSigner(["new", "old"]))
    sid = saved(manager, store, a=1)
    old_key = SessionManager(ExpiryPolicy(3600), clock=clock, signer=CookieSigner(["old"]))
    counting = CountingStore(store)
    session: Session = manager.open(old_key.cookie_value(sid), loader(manager, counting))
    assert untouched(session)
    assert manager.save_plan(session) == SavePlan()
    assert untouched(session)  # planning the save of an untouched session makes nothing
    assert not session.accessed and untouched(session)  # asking does not open it either
    st = state(session)  # the first look makes the state: the cookie is checked
    assert not untouched(session) and st.incoming_sid == sid and st.resign
    assert not st.loaded and counting.total == 0
    assert session["a"] == 1 and counting.calls == {"load": 1}
    cookie = run(manager, store, session)
    assert cookie is not None and cookie.value == manager.cookie_value(sid)  # signed anew


def test_a_cookie_reader_is_called_on_first_use(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    reads: list[str] = []

    def read() -> str:
        reads.append(sid)
        return sid

    session: Session = manager.open(read, loader(manager, store))
    assert reads == [] and untouched(session)
    assert session["a"] == 1 and session.sid == sid and reads == [sid]


def test_a_session_without_a_cookie_is_an_empty_dict_at_once() -> None:
    import orjson

    manager = SessionManager(ExpiryPolicy(3600))
    session: Session = manager.open(None)
    # Seen as it is by code that reads the dict without calling its methods.
    assert dict.__len__(session) == 0 and orjson.dumps(session) == b"{}"


def test_an_opened_session_is_of_the_class_asked_for() -> None:
    class Custom(Session):
        pass

    manager = SessionManager(ExpiryPolicy(3600))
    session = manager.open(new_id(), session_class=Custom)
    assert type(session) is Custom and untouched(session)
    session["a"] = 1
    assert dict(session) == {"a": 1} and state(session).loaded


def test_new_empty_session_writes_nothing(clock: FakeClock) -> None:
    manager, store = make(clock)
    session = open_(manager, store, None)
    assert session.get("x") is None
    assert run(manager, store, session) is None
    assert len(store) == 0


def test_new_session_is_created_with_cookie(clock: FakeClock) -> None:
    manager, store = make(clock)
    session = open_(manager, store, None)
    session["user"] = "alice"
    cookie = run(manager, store, session)
    assert cookie == Cookie(session.sid, clock.now + 3600)
    again = open_(manager, store, cookie.value if cookie else None)
    assert again["user"] == "alice"


def test_non_permanent_cookie_has_no_expiry(clock: FakeClock) -> None:
    manager, store = make(clock, permanent=False)
    session = open_(manager, store, None)
    session["a"] = 1
    cookie = run(manager, store, session)
    assert cookie is not None and cookie.expires is None


def test_read_only_request_refreshes_cookie_not_data(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    clock.advance(100)
    session = open_(manager, store, sid)
    assert session["a"] == 1
    plan = manager.save_plan(session)
    assert plan.changes is None and plan.cookie == Cookie(sid, clock.now + 3600)


def test_a_response_that_saves_nothing_still_sends_the_deadline_its_load_moved(
    clock: FakeClock,
) -> None:
    # A 5xx (or a save the store refused): the load moved the deadline, and
    # the client must learn it, under the ID it has; nothing else goes out.
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    clock.advance(100)
    session = open_(manager, store, sid)
    session["a"] = "half-done"
    assert manager.cookie_unsaved(session) == Cookie(sid, clock.now + 3600)
    assert store.load(store_key(sid)) is not None
    assert open_(manager, store, sid)["a"] == 1  # nothing saved

    within_step = open_(manager, store, sid)
    assert within_step["a"] == 1
    assert manager.cookie_unsaved(within_step) is None  # this load moved nothing


@pytest.mark.parametrize(
    "change", ["regenerate", "destroy", "clear", "unused", "browser-session", "cleared-browser"]
)
def test_a_response_that_saves_nothing_sends_no_other_cookie(clock: FakeClock, change: str) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    if change in ("browser-session", "cleared-browser"):
        session = open_(manager, store, sid)
        session.permanent = False
        run(manager, store, session)
    clock.advance(100)
    session = open_(manager, store, sid)
    if change == "unused":
        # Loaded before the handler (ASGI, Quart), never touched by it: its
        # response may be cached, so it never carries a cookie.
        session = manager.open(sid)
        record, stale, stored = drive(store, flows.load(manager, sid))
        assert record is not None and record.refreshed
        preload(session, record, stale=stale, sid=stored)
    if change == "regenerate":
        session.regenerate()  # the new ID was never stored
    elif change == "destroy":
        session.destroy()
    elif change == "browser-session":
        session.permanent = True  # not saved: the client's cookie has no expiry
    elif change in ("clear", "cleared-browser"):
        session.clear()  # a logout: no cookie outlives it, persistent or not
    if change != "unused":
        assert session.get("a") in (1, None)
    assert manager.cookie_unsaved(session) is None


def test_read_only_without_refresh_each_request_sends_nothing(clock: FakeClock) -> None:
    manager, store = make(clock, refresh_each_request=False)
    session = open_(manager, store, None)
    session["a"] = 1
    run(manager, store, session)
    session = open_(manager, store, session.sid)
    assert session["a"] == 1
    assert manager.refresh() is None
    plan = manager.save_plan(session)
    assert plan.changes is None and plan.cookie is None


def test_idle_timeout_slides_on_reads(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    for _ in range(5):
        clock.advance(3000)
        assert open_(manager, store, sid).get("a") == 1
    clock.advance(3601)
    assert open_(manager, store, sid).get("a") is None


def test_absolute_timeout_caps_everything(clock: FakeClock) -> None:
    manager, store = make(clock, absolute=5000)
    sid = saved(manager, store, a=1)
    clock.advance(3000)
    session = open_(manager, store, sid)
    session["b"] = 2
    cookie = run(manager, store, session)
    assert cookie is not None and cookie.expires == clock.now + 2000  # capped
    clock.advance(2001)
    assert open_(manager, store, sid).get("a") is None


def test_a_write_within_a_refresh_step_keeps_the_deadline_and_sends_no_cookie(
    clock: FakeClock,
) -> None:
    manager, store = make(clock)  # idle 3600 s: a step of 36 s
    sid = saved(manager, store, a=1)
    deadline = clock.now + 3600
    clock.advance(30)
    session = open_(manager, store, sid)
    session["a"] = 2
    assert run(manager, store, session) is None  # the cookie still has the deadline
    record = store.load(store_key(sid))
    assert record is not None and record.expires == deadline and record.data["a"] == "2"
    clock.advance(10)  # 40 s since the deadline moved: more than a step
    session = open_(manager, store, sid)
    session["a"] = 3
    assert run(manager, store, session) == Cookie(sid, clock.now + 3600)
    record = store.load(store_key(sid))
    assert record is not None and record.expires == clock.now + 3600


def test_a_kept_deadline_never_undoes_a_concurrent_move(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    first = open_(manager, store, sid)
    assert first.get("a") == 1  # loaded: its deadline is within a step of a move
    clock.advance(10)
    other = open_(manager, store, sid)
    other.modified = True  # a forced save always moves the deadline
    assert run(manager, store, other) == Cookie(sid, clock.now + 3600)
    first["a"] = 2
    assert run(manager, store, first) is None
    record = store.load(store_key(sid))
    assert record is not None and record.expires == clock.now + 3600  # not moved back


def test_a_write_that_changes_permanent_sends_the_cookie_within_a_step(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    session = open_(manager, store, sid)
    session.permanent = False
    assert run(manager, store, session) == Cookie(sid, None)
    session = open_(manager, store, sid)
    session.permanent = True
    assert run(manager, store, session) == Cookie(sid, clock.now + 3600)


def test_expired_record_returned_by_a_store_is_refused(clock: FakeClock) -> None:
    manager, store = make(clock, absolute=10)
    session = open_(manager, store, None)
    session["a"] = 1
    run(manager, store, session)
    key = store_key(session.sid)
    record = store.load(key)
    assert manager.prepare(key, record) == (record, frozenset())
    clock.advance(11)
    assert manager.prepare(key, record) == (None, frozenset())


def test_clear_deletes_record_and_cookie(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    session = open_(manager, store, sid)
    session.clear()
    assert run(manager, store, session) == Cookie(None)
    assert len(store) == 0


def test_popping_last_key_ends_session(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    session = open_(manager, store, sid)
    session.pop("a")
    assert run(manager, store, session) == Cookie(None)
    assert len(store) == 0


def test_stale_cookie_is_deleted(clock: FakeClock) -> None:
    manager, store = make(clock)
    session = open_(manager, store, new_id())
    assert session.get("a") is None
    assert run(manager, store, session) == Cookie(None)


def test_save_after_concurrent_delete_deletes_cookie(clock: FakeClock) -> None:
    manager, store = make(clock)
    sid = saved(manager, store, a=1)
    session = open_(manager, store, sid)
    session["b"] = session["a"] + 1  # loaded before the delete
    store.delete(store_key(sid))
    assert run(manager, store, session) == Cookie(None)
    assert len(store) == 0


def test_key_collision_is_an_error() -> None:
    plan_cookie = Cookie("x")
    with pytest.raises(StoreError):
        SavePlan(cookie=plan_cookie).cookie_after(ApplyResult.EXISTS)


def test_signed_cookies(clock: FakeClock) -> None:
    manager, store = make(clock, signer=CookieSigner(["secret"]))
    session = open_(manager, store, None)
    session["a"] = 1
    cookie = run(manager, store, session)
    assert cookie is not None and cookie.value is not None
    assert cookie.value.startswith(session.sid + ".")
    assert open_(manager, store, cookie.value)["a"] == 1
    assert open_(manager, store, session.sid).get("a") is None  # unsigned: refused
    forged = session.sid + ".AAAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert manager.unsign(forged) is None


def test_too_large_session_writes_nothing(clock: FakeClock) -> None:
    manager, store = make(clock, max_size=100)
    session = open_(manager, store, None)
    session["big"] = "x" * 200
    with pytest.raises(SessionTooLarge) as info:
        manager.save_plan(session)
    assert info.value.limit == 100 and info.value.size > 100
    assert len(store) == 0


def test_short_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="256 bits"):
        SessionManager(ExpiryPolicy(10), id_bytes=16)


def test_change_set_carries_only_changes(clock: FakeClock) -> None:
    manager, store = make(clock)
    session = open_(manager, store, None)
    session.update(a=1, b=2)
    sid = session.sid
    run(manager, store, session)
    session = open_(manager, store, sid)
    session["b"] = 3
    _ = session["a"]
    plan = manager.save_plan(session)
    assert isinstance(plan.changes, ChangeSet)
    assert dict(plan.changes.set) == {"b": "3"} and not plan.changes.delete
