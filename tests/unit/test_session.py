from __future__ import annotations

import pytest

from sharedsession import serialization
from sharedsession.errors import SerializationError
from sharedsession.ids import new_id
from sharedsession.session import Session
from sharedsession.stores.base import Record


def stored(**values: object) -> Record:
    return Record({k: serialization.dumps(k, v) for k, v in values.items()}, 1.0, None)


def loaded(record: Record | None, sid: str | None = None) -> Session:
    calls: list[int] = []

    def loader() -> tuple[Record | None, frozenset[str]]:
        calls.append(1)
        return record, frozenset()

    session = Session(sid or new_id(), loader)
    session.calls = calls  # type: ignore[attr-defined]
    return session


def test_nothing_loads_until_first_use() -> None:
    session = loaded(stored(a=1))
    assert session.calls == []  # type: ignore[attr-defined]
    assert not session.loaded and not session.modified
    assert session["a"] == 1
    assert session.get("a") == 1 and "a" in session
    assert session.calls == [1]  # type: ignore[attr-defined]


def test_reads_change_nothing() -> None:
    session = loaded(stored(a=1, cart=[1, 2], when={"x": (1, 2)}))
    assert dict(session) == {"a": 1, "cart": [1, 2], "when": {"x": (1, 2)}}
    assert session.changed() == {} and not session.modified


def test_nested_mutation_is_tracked() -> None:
    session = loaded(stored(cart=[1]))
    session["cart"].append(2)
    assert session.changed() == {"cart": "[1,2]"}
    assert session.modified


def test_only_changed_keys_are_written() -> None:
    session = loaded(stored(a=1, b=2, c=3))
    session["a"] = 1  # same value
    session["b"] = 20
    del session["c"]
    session["d"] = 4
    assert session.changed() == {"b": "20", "d": "4"}
    assert session.removed() == {"c"}


def test_delete_then_set_again_is_a_set() -> None:
    session = loaded(stored(a=1))
    del session["a"]
    session["a"] = 5
    assert session.removed() == frozenset()
    assert session.changed() == {"a": "5"}


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
    assert len(session) == 0 and session.cleared and session.modified
    session["z"] = 1
    assert session.changed() == {"z": "1"}


def test_unknown_id_is_never_adopted() -> None:
    sid = new_id()
    session = loaded(None, sid)
    assert session.sid != sid and session.new
    assert session.incoming_sid == sid


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
    assert session.modified and session.forced


def test_unserializable_value_fails_at_save_not_at_set() -> None:
    session = loaded(None)
    session["obj"] = object()
    with pytest.raises(SerializationError, match="session\\['obj'\\]"):
        session.changed()


def test_undecodable_stored_data_is_no_session(caplog: pytest.LogCaptureFixture) -> None:
    sid = new_id()
    session = loaded(Record({"bad": "{not json", "ok": "1"}, 1.0, None), sid)
    assert session.get("ok") is None and session.new and session.sid != sid
    assert "undecodable" in caplog.text


def test_accessed_flag_from_framework_does_not_load() -> None:
    session = loaded(stored(a=1))
    session.accessed = True
    assert session.accessed and not session.loaded
    assert session.calls == []  # type: ignore[attr-defined]
    assert "not loaded" in repr(session)


def test_stored_size_counts_what_will_be_stored() -> None:
    session = loaded(stored(a="x" * 100, b=1))
    del session["b"]
    session["c"] = "y" * 10
    changed = session.changed()
    assert session.stored_size(changed) == len("a") + 102 + len("c") + 12


def test_regenerate_keeps_data_and_changes_the_id() -> None:
    sid = new_id()
    session = loaded(stored(a=1), sid)
    session.regenerate()
    assert session.sid != sid and session.stored_sid == sid and session.regenerated
    assert session["a"] == 1 and session.modified
    session.regenerate()
    assert session.stored_sid == sid  # the record still sits under the first ID


def test_regenerate_on_a_new_session_just_changes_the_id() -> None:
    session = loaded(None)
    first = session.sid
    session.regenerate()
    assert session.sid != first and not session.regenerated and session.stored_sid is None


def test_destroy_starts_over() -> None:
    sid = new_id()
    session = loaded(stored(a=1), sid)
    session.destroy()
    assert session.destroyed_sid == sid and session.new and len(session) == 0
    assert session.sid != sid
    session["b"] = 2
    assert session.changed() == {"b": "2"}


def test_bind_user_regenerates_by_default() -> None:
    sid = new_id()
    session = loaded(stored(a=1), sid)
    assert session.user_id is None
    session.bind_user("u1")
    assert session.user_id == "u1" and session.binding == ("u1",) and session.regenerated
    other = loaded(stored(a=1), new_id())
    other.bind_user("u2", regenerate=False)
    assert not other.regenerated and other.modified
    with pytest.raises(TypeError):
        other.bind_user(42)  # type: ignore[arg-type]


def test_everything_and_stale_keys_are_rewritten() -> None:
    session = loaded(stored(a=1, b=2))
    assert len(session) == 2 and session.changed() == {}
    assert session.changed(everything=True) == {"a": "1", "b": "2"}
    session.preload(stored(a=1, b=2), stale={"b"})
    assert session.changed() == {"b": "2"}
