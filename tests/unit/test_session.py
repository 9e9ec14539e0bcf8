from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sharedsession import serialization
from sharedsession._state import changed
from sharedsession._state import preload
from sharedsession._state import removed
from sharedsession._state import state
from sharedsession._state import stored_size
from sharedsession.errors import SerializationError
from sharedsession.ids import new_id
from sharedsession.session import Session
from sharedsession.stores.base import Record


def stored(**values: object) -> Record:
    return Record({k: serialization.dumps(k, v) for k, v in values.items()}, 1.0, None)


def loaded(record: Record | None, sid: str | None = None) -> Session:
    calls: list[int] = []
    sid = sid or new_id()

    def loader() -> tuple[Record | None, frozenset[str], str]:
        calls.append(1)
        return record, frozenset(), sid

    session = Session(sid, loader)
    session.calls = calls  # type: ignore[attr-defined]
    return session


def test_nothing_loads_until_first_use() -> None:
    session = loaded(stored(a=1))
    assert session.calls == []  # type: ignore[attr-defined]
    assert not state(session).loaded and not session.modified
    assert session["a"] == 1
    assert session.get("a") == 1 and "a" in session
    assert session.calls == [1]  # type: ignore[attr-defined]


def test_reads_change_nothing() -> None:
    session = loaded(stored(a=1, cart=[1, 2], when={"x": (1, 2)}))
    assert dict(session) == {"a": 1, "cart": [1, 2], "when": {"x": (1, 2)}}
    assert changed(session) == {} and not session.modified


def test_nested_mutation_is_tracked() -> None:
    session = loaded(stored(cart=[1]))
    session["cart"].append(2)
    assert changed(session) == {"cart": "[1,2]"}
    assert session.modified


def test_a_value_changed_in_place_is_compared_by_its_json_text() -> None:
    import datetime as dt
    from collections import OrderedDict

    # Whatever JSON writes differently is seen: types, order, numbers.
    changes: list[Callable[[Any], object]] = [
        lambda cart: cart[0].update(qty=True),  # was 1
        lambda cart: cart[0].update(qty=1.0),
        lambda cart: cart[0].update(sku=cart[0].pop("sku")),  # key order
        lambda cart: cart.append({" t": [1]}),  # a dict that looks like a tag
        lambda cart: cart.append(dt.date(2026, 1, 2)),  # a type only dumps writes
        lambda cart: cart.append({1, 2}),
    ]
    for change in changes:
        session = loaded(stored(cart=[{"sku": "A", "qty": 1}]))
        change(session["cart"])
        assert changed(session) == {"cart": serialization.dumps("cart", session["cart"])}
    # What dumps tags or refuses but orjson would write as a JSON type (a
    # subclass, a non-str key) is seen, and NaN where null was stored.
    from markupsafe import Markup

    swaps: list[tuple[int, object, str]] = [
        (0, Markup("a"), '[{" m":"a"},null]'),
        (0, {1: 2}, '[{" dk":[[1,2]]},null]'),
        (1, float("nan"), '["a",NaN]'),
    ]
    for index, new, expected in swaps:
        session = loaded(stored(v=["a", None]))
        session["v"][index] = new
        assert changed(session) == {"v": expected}
    session = loaded(stored(tags={"a": {"b": 2}}))
    session["tags"]["a"] = OrderedDict(b=2)
    with pytest.raises(SerializationError, match="OrderedDict"):
        changed(session)
    # What orjson writes like a JSON type (a tuple for a list, a UUID for its
    # text, an Enum member for its value) is not seen when only swapped in place...
    import enum
    import uuid

    class Size(enum.Enum):
        M = "M"

    class Count(enum.IntEnum):
        ONE = 1

    ident = uuid.uuid4()
    session = loaded(stored(cart=[[1, 2]], tags={"id": str(ident), "size": "M", "n": 1}))
    session["cart"][0] = (1, 2)
    session["tags"].update(id=ident, size=Size.M, n=Count.ONE)
    assert changed(session) == {}
    # ... and is once the key is assigned, or the session marked modified.
    session["cart"] = session["cart"]
    assert changed(session) == {"cart": '[{" t":[1,2]}]'}
    session.modified = True
    with pytest.raises(SerializationError, match="Size"):
        changed(session)
    # A stored tag inside (a tuple) is always compared in full.
    session = loaded(stored(when={"x": (1, 2)}))
    session["when"]["x"] = [1, 2]
    assert changed(session) == {"when": '{"x":[1,2]}'}


def test_same_text_answers_only_what_it_can_tell() -> None:
    assert serialization.same_text("x", '"x"')  # a str never changes in place
    assert serialization.same_text([1, "a"], '[1,"a"]')
    assert not serialization.same_text([1, "a"], '[1,"b"]')
    assert serialization.decode('[{" t":[1,2]}]') == ([(1, 2)], False)  # a tag: dumps decides
    assert serialization.decode('[{"t":[1,2]}]') == ([{"t": [1, 2]}], True)
    assert not serialization.same_text([b"x"], "[1]")  # cannot write it: dumps decides
    loop: list[object] = []
    loop.append(loop)
    assert not serialization.same_text(loop, "[[]]")

    class Lazy(dict[str, int]):
        def items(self) -> Any:
            raise LookupError("backend gone")

    assert not serialization.same_text([Lazy(a=1)], "[{}]")  # dumps raises the error
    session = loaded(stored(c=[{}]))
    session["c"][0] = Lazy(a=1)
    with pytest.raises(SerializationError, match="Lazy"):
        changed(session)


def test_only_changed_keys_are_written() -> None:
    session = loaded(stored(a=1, b=2, c=3))
    session["a"] = 1  # same value
    session["b"] = 20
    del session["c"]
    session["d"] = 4
    assert changed(session) == {"b": "20", "d": "4"}
    assert removed(session) == {"c"}


def test_delete_then_set_again_is_a_set() -> None:
    session = loaded(stored(a=1))
    del session["a"]
    session["a"] = 5
    assert removed(session) == frozenset()
    assert changed(session) == {"a": "5"}


def test_dict_api() -> None:
    session = loaded(stored(a=1, b=2))
    assert len(session) == 2 and sorted(session) == ["a", "b"]
    assert session.pop("a") == 1 and session.pop("zz", None) is None
    assert session.setdefault("c", []) == [] and session.setdefault("b", 9) == 2
    session.update(d=4)
    assert sorted(session.keys()) == ["b", "c", "d"]
    assert sorted(session.items()) == [("b", 2), ("c", []), ("d", 4)]
    with pytest.raises(KeyError):
        session["missing"]
    with pytest.raises(KeyError):
        del session["missing"]
    with pytest.raises(TypeError, match="keys must be str"):
        session[1] = 2  # type: ignore[index]


def test_clear() -> None:
    session = loaded(stored(a=1, b=2))
    session.clear()
    assert len(session) == 0 and state(session).cleared and session.modified
    session["z"] = 1
    assert changed(session) == {"z": "1"}


def test_unknown_id_is_never_adopted() -> None:
    sid = new_id()
    session = loaded(None, sid)
    assert session.sid != sid and session.new
    assert state(session).incoming_sid == sid


def test_known_id_is_kept() -> None:
    sid = new_id()
    session = loaded(stored(a=1), sid)
    assert session.sid == sid and not session.new


def test_permanent_is_stored_like_flask() -> None:
    session = loaded(None)
    assert session.permanent  # the default
    session.permanent = False
    assert session["_permanent"] is False and not session.permanent


def test_modified_can_be_forced() -> None:
    session = loaded(stored(a=1))
    session.modified = True
    assert session.modified and state(session).forced


def test_unserializable_value_fails_at_save_not_at_set() -> None:
    session = loaded(None)
    session["obj"] = object()
    with pytest.raises(SerializationError, match="session\\['obj'\\]"):
        changed(session)


def test_undecodable_stored_data_is_no_session(caplog: pytest.LogCaptureFixture) -> None:
    sid = new_id()
    session = loaded(Record({"bad": "{not json", "ok": "1"}, 1.0, None), sid)
    assert session.get("ok") is None and session.new and session.sid != sid
    assert "undecodable" in caplog.text


def test_accessed_flag_from_framework_does_not_load() -> None:
    session = loaded(stored(a=1))
    session.accessed = True
    assert session.accessed and not state(session).loaded
    assert session.calls == []  # type: ignore[attr-defined]
    assert repr(session) == "Session({'a': 1})"  # repr shows the data: it loads
    assert session.calls == [1]  # type: ignore[attr-defined]


def test_stored_size_counts_what_will_be_stored() -> None:
    session = loaded(stored(a="x" * 100, b=1))
    del session["b"]
    session["c"] = "y" * 10
    texts = changed(session)
    assert stored_size(session, texts) == len("a") + 102 + len("c") + 12


def test_regenerate_keeps_data_and_changes_the_id() -> None:
    sid = new_id()
    session = loaded(stored(a=1), sid)
    session.regenerate()
    assert session.sid != sid and state(session).stored_sid == sid and state(session).regenerated
    assert session["a"] == 1 and session.modified
    session.regenerate()
    assert state(session).stored_sid == sid  # the record still sits under the first ID


def test_regenerate_on_a_new_session_just_changes_the_id() -> None:
    session = loaded(None)
    first = session.sid
    session.regenerate()
    assert (
        session.sid != first
        and not state(session).regenerated
        and state(session).stored_sid is None
    )


def test_destroy_starts_over() -> None:
    sid = new_id()
    session = loaded(stored(a=1), sid)
    session.destroy()
    assert state(session).destroyed_sid == sid and session.new and len(session) == 0
    assert session.sid != sid
    session["b"] = 2
    assert changed(session) == {"b": "2"}


def test_bind_user_regenerates_by_default() -> None:
    sid = new_id()
    session = loaded(stored(a=1), sid)
    assert session.user_id is None
    session.bind_user("u1")
    assert session.user_id == "u1" and state(session).bind == ("u1",) and state(session).regenerated
    other = loaded(stored(a=1), new_id())
    other.bind_user("u2", regenerate=False)
    assert not state(other).regenerated and other.modified
    with pytest.raises(TypeError):
        other.bind_user(42)  # type: ignore[arg-type]


def test_everything_and_stale_keys_are_rewritten() -> None:
    session = loaded(stored(a=1, b=2))
    assert len(session) == 2 and changed(session) == {}
    assert changed(session, everything=True) == {"a": "1", "b": "2"}
    preload(session, stored(a=1, b=2), stale={"b"})
    assert changed(session) == {"b": "2"}


def test_a_session_is_a_dict_for_c_code_too() -> None:
    import copy
    import json
    import pickle

    record = stored(a=1, cart=[1, 2])
    assert isinstance(loaded(record), dict)
    # Each operation on a fresh, unloaded session: it must load first.
    assert json.dumps(loaded(record), sort_keys=True) == '{"a": 1, "cart": [1, 2]}'
    assert dict(loaded(record)) == {"a": 1, "cart": [1, 2]}
    assert {**loaded(record)} == {"a": 1, "cart": [1, 2]}
    assert loaded(record) == {"a": 1, "cart": [1, 2]}
    assert {"a": 1, "cart": [1, 2]} == loaded(record)
    assert loaded(record) != {"a": 1}
    assert loaded(record) == loaded(record)
    assert loaded(record) | {"b": 2} == {"a": 1, "cart": [1, 2], "b": 2}
    assert {"b": 2} | loaded(record) == {"b": 2, "a": 1, "cart": [1, 2]}
    assert repr(loaded(record)) == "Session({'a': 1, 'cart': [1, 2]})"
    assert list(reversed(loaded(record))) == ["cart", "a"]
    assert copy.copy(loaded(record)) == {"a": 1, "cart": [1, 2]}
    assert type(copy.copy(loaded(record))) is dict
    assert type(loaded(record).copy()) is dict
    deep = copy.deepcopy(loaded(record))
    assert deep == {"a": 1, "cart": [1, 2]} and type(deep) is dict
    assert pickle.loads(pickle.dumps(copy.copy(loaded(record)))) == {"a": 1, "cart": [1, 2]}
    # A pickle of the session itself holds the data, never the request's state.
    assert pickle.loads(pickle.dumps(loaded(record))) == {"a": 1, "cart": [1, 2]}
    assert bool(loaded(record)) and not bool(loaded(None))


def test_mutation_through_any_view_is_saved() -> None:
    session = loaded(stored(cart=[1], tags={"x": 1}, n=1))
    next(iter(session.values())).append(2)
    assert changed(session) == {"cart": "[1,2]"}
    session = loaded(stored(cart=[1], tags={"x": 1}, n=1))
    dict(session)["tags"]["y"] = 2  # dict() shares the values
    assert changed(session) == {"tags": '{"x":1,"y":2}'}
    session = loaded(stored(cart=[1], tags={"x": 1}, n=1))
    (session | {})["cart"].append(3)
    assert changed(session) == {"cart": "[1,3]"}


def test_every_mutating_dict_method_is_tracked() -> None:
    session = loaded(stored(a=1, b=2, c=3))
    session.update({"d": 4}, e=5)
    session.update([("f", 6)])
    session |= {"g": 7}
    assert session.popitem() == ("g", 7)
    assert session.setdefault("h", [8]) == [8]
    del session["a"]
    assert session.pop("b") == 2
    assert changed(session) == {"d": "4", "e": "5", "f": "6", "h": "[8]"}
    assert removed(session) == {"a", "b"}
    with pytest.raises(TypeError, match="keys must be str"):
        session.update({1: "x"})
    with pytest.raises(TypeError, match="keys must be str"):
        session.setdefault(2, "x")  # type: ignore[arg-type]


def test_the_public_surface_is_small_and_never_raises_before_load() -> None:
    names = {n for n in dir(Session) if not n.startswith("_")} - set(dir(dict))
    assert names == {"permanent", "new", "modified", "accessed", "sid", "regenerate"} | {
        "destroy",
        "bind_user",
        "user_id",
    }
    for name in sorted(names):
        getattr(loaded(stored(a=1)), name)  # loads if it must, never raises


def test_a_session_made_without_init_says_it_has_no_state() -> None:
    session = Session.__new__(Session)
    with pytest.raises(AttributeError, match="without __init__ or opening"):
        session.get("a")


def test_first_looks_from_two_threads_at_once_run_one_opener() -> None:
    import threading
    import time

    from sharedsession._state import SessionState
    from sharedsession.session import install
    from sharedsession.session import opening

    runs: list[int] = []

    def opener(session: Session) -> None:
        runs.append(1)
        time.sleep(0.05)  # both threads look while it runs
        install(
            session,
            SessionState(None, None, permanent=True, id_bytes=32, degrade=False, client=None),
        )

    session = opening(Session, opener)
    seen: list[object] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def look() -> None:
        start.wait()
        try:
            seen.append(state(session))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=look) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and runs == [1]
    assert len(seen) == 2 and seen[0] is seen[1]
