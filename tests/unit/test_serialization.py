from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from sharedsession import serialization
from sharedsession.errors import SerializationError

VALUES: list[Any] = [
    "text",
    "",
    0,
    -12,
    10**30,
    1.5,
    True,
    None,
    [1, "a", None],
    {"nested": {"deep": [1, 2]}},
    (1, 2, (3,)),
    (),
    {1, 2, 3},
    frozenset({"a", "b"}),
    set(),
    b"\x00\xffbytes",
    Markup("<b>safe</b>"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    dt.datetime(2026, 11, 22, 1, 2, 3, 456789),
    dt.datetime(2026, 11, 22, 1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    dt.date(2026, 2, 28),
    dt.time(23, 59, 1, 5),
    Decimal("1.10"),
    Decimal("-0.000001"),
    {" t": "looks like a tag"},
    {" di": [["x", 1]]},
    {"cart": [{"sku": "A1", "qty": 2, "added": dt.date(2026, 1, 1), "tags": ("x",)}]},
    "héllo ☃ 😀",
    {1: "a", "x": 2, None: 3, 1.5: 5},
    {True: "t", 0: "zero", -1.0: "float"},
    {False: "f", 2: "two"},
    {" dk": [[1, 2]]},
    {" t": 1, 2: (3,)},
    {"outer": {7: {8: [dt.date(2026, 1, 1)]}}},
    dt.datetime(2026, 11, 22, 1, 2, 3, tzinfo=dt.timezone.utc),
    dt.datetime(2026, 11, 22, 1, 2, 3, tzinfo=ZoneInfo("Europe/Paris")),
    dt.time(7, 30, tzinfo=ZoneInfo("Asia/Tokyo")),
    dt.time(7, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
]


def _shape(value: Any) -> Any:
    """The types all the way down, dict keys included: == alone has {1: x} == {True: x}."""
    if type(value) is dict:
        return [(type(k), _shape(v)) for k, v in value.items()]
    if type(value) is list or type(value) is tuple:
        return (type(value), [_shape(v) for v in value])
    if type(value) is dt.datetime or type(value) is dt.time:
        return (type(value), value.tzinfo, value.fold)
    return type(value)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip_is_exact(value: Any) -> None:
    back = serialization.loads(serialization.dumps("k", value))
    assert back == value
    assert _shape(back) == _shape(value)


def test_nested_types_keep_their_type() -> None:
    value = {"t": (1, (2, 3)), "s": [{4}], "d": {"x": Decimal("2.5")}}
    back = serialization.loads(serialization.dumps("k", value))
    assert type(back["t"]) is tuple and type(back["t"][1]) is tuple
    assert type(back["s"][0]) is set
    assert type(back["d"]["x"]) is Decimal


def test_output_is_readable_json() -> None:
    text = serialization.dumps("cart", {"items": ["apple"], "count": 1})
    assert json.loads(text) == {"items": ["apple"], "count": 1}


def test_sets_serialize_the_same_whatever_their_order() -> None:
    a = serialization.dumps("k", {"pear", "apple", "fig"})
    b = serialization.dumps("k", {"fig", "apple", "pear"})
    assert a == b
    assert serialization.dumps("k", {1, "a", (2,)}) == serialization.dumps("k", {(2,), "a", 1})


class Custom:
    pass


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "type_", "path"),
    [
        (Custom(), Custom, ""),
        ({"a": [1, Custom()]}, Custom, "['a'][1]"),
        ({(1, 2): "tuple key"}, tuple, " (a dict key)"),
        ({"a": {b"x": 1}}, bytes, "['a'] (a dict key)"),
        ({1: {Custom(): 1}}, Custom, "[1] (a dict key)"),
        ({Color.RED: 1}, Color, " (a dict key)"),
        (object(), object, ""),
        (3 + 4j, complex, ""),
    ],
)
def test_unsupported_types_name_key_type_and_path(value: Any, type_: type, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        serialization.dumps("cart", value)
    assert info.value.key == "cart"
    assert info.value.type_ is type_
    assert info.value.path == path
    assert "session['cart']" in str(info.value)
    assert type_.__qualname__ in str(info.value)


def test_str_subclass_is_refused_not_silently_changed() -> None:
    class Name(str):
        pass

    with pytest.raises(SerializationError):
        serialization.dumps("k", Name("x"))


def test_unknown_tag_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown serialization tag"):
        serialization.loads('{" nope": 1}')


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_round_trips(value: Any) -> None:
    assert serialization.loads(serialization.dumps("k", value)) == value


def test_str_keyed_dicts_stay_plain_json_and_others_are_pairs() -> None:
    assert serialization.dumps("k", {"a": {"b": 1}}) == '{"a":{"b":1}}'
    assert serialization.dumps("k", {1: "a", None: [2]}) == '{" dk":[[1,"a"],[null,[2]]]}'


def test_true_and_1_are_one_key_and_keep_the_first_keys_type() -> None:
    # dict(pairs), not a literal: the repeated key is the point here.
    value = dict([(1, "a"), ("x", 2), (None, 3), (True, 4), (1.5, 5)])
    back = serialization.loads(serialization.dumps("k", value))
    assert back == {1: 4, "x": 2, None: 3, 1.5: 5}
    assert [type(k) for k in back] == [int, str, type(None), float]
    back = serialization.loads(serialization.dumps("k", dict([(True, "b"), (1, "i")])))
    assert [type(k) for k in back] == [bool]


def test_str_key_subclass_is_refused() -> None:
    class Name(str):
        pass

    with pytest.raises(SerializationError) as info:
        serialization.dumps("k", {Name("x"): 1})
    assert info.value.type_ is Name


scalar_keys = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
)
keyed_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(scalar_keys, children),
    max_leaves=15,
)


@given(keyed_values)
def test_dicts_with_scalar_keys_round_trip_with_their_key_types(value: Any) -> None:
    back = serialization.loads(serialization.dumps("k", value))
    assert back == value
    assert _shape(back) == _shape(value)


NEW_YORK = "America/New_York"


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo(NEW_YORK)),
        dt.datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo(NEW_YORK), fold=1),
        dt.datetime(2026, 3, 8, 2, 30, tzinfo=ZoneInfo(NEW_YORK)),
        dt.datetime(2026, 3, 8, 2, 30, tzinfo=ZoneInfo(NEW_YORK), fold=1),
        dt.datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")),
        dt.datetime(2026, 1, 1, tzinfo=ZoneInfo.no_cache("Europe/Paris")),
        dt.time(1, 30, 0, 5, tzinfo=ZoneInfo(NEW_YORK), fold=1),
    ],
    ids=str,
)
def test_zoneinfo_keeps_zone_wall_time_and_fold(value: dt.datetime | dt.time) -> None:
    back = serialization.loads(serialization.dumps("k", value))
    assert type(back) is type(value)
    assert isinstance(value.tzinfo, ZoneInfo) and value.tzinfo.key is not None
    assert back.tzinfo is ZoneInfo(value.tzinfo.key)
    assert back.replace(tzinfo=None) == value.replace(tzinfo=None)
    assert back.fold == value.fold
    assert back.utcoffset() == value.utcoffset()


def test_zoned_datetime_is_readable_wall_time_zone_and_fold() -> None:
    value = dt.datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo(NEW_YORK), fold=1)
    text = serialization.dumps("k", value)
    assert text == '{" dtz":["2026-11-01T01:30:00","America/New_York",1]}'


@given(st.datetimes(timezones=st.timezones()) | st.times(timezones=st.timezones()))
def test_any_zoned_datetime_or_time_round_trips(value: dt.datetime | dt.time) -> None:
    back = serialization.loads(serialization.dumps("k", value))
    assert back == value
    assert _shape(back) == _shape(value)


def test_fixed_offsets_keep_the_isoformat_tag() -> None:
    value = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert serialization.dumps("k", value) == '{" dt":"2026-01-01T00:00:00+00:00"}'
    assert serialization.loads(serialization.dumps("k", value)).tzinfo is dt.timezone.utc


def test_values_stored_before_zones_and_pair_dicts_still_decode() -> None:
    back = serialization.loads('{"a":{" dt":"2026-11-22T01:02:03-05:00"},"b":{" tm":"23:59:01"}}')
    assert back["a"].utcoffset() == dt.timedelta(hours=-5)
    assert back["b"] == dt.time(23, 59, 1)
    assert serialization.loads('{" di":[[" t",1]]}') == {" t": 1}


class FixedTz(dt.tzinfo):
    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=1)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, when: dt.datetime | None) -> str:
        return "FIXED"


class MyZone(ZoneInfo):
    pass


@pytest.mark.parametrize(
    ("value", "type_", "path"),
    [
        (dt.datetime(2026, 1, 1, tzinfo=FixedTz()), FixedTz, ".tzinfo"),
        ({"at": [dt.time(1, tzinfo=FixedTz())]}, FixedTz, "['at'][0].tzinfo"),
        (dt.datetime(2026, 1, 1, tzinfo=MyZone("UTC")), MyZone, ".tzinfo"),
    ],
)
def test_other_tzinfo_types_are_refused_with_the_fix(value: Any, type_: type, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        serialization.dumps("when", value)
    assert (info.value.key, info.value.type_, info.value.path) == ("when", type_, path)
    message = str(info.value)
    assert message.startswith(f"session['when']{path} holds a ")
    assert type_.__qualname__ in message
    assert "zoneinfo.ZoneInfo" in message and "datetime.timezone" in message


def test_zoneinfo_without_a_key_is_refused() -> None:
    with open("/usr/share/zoneinfo/UTC", "rb") as file:
        zone = ZoneInfo.from_file(file)
    with pytest.raises(SerializationError, match="made from a key"):
        serialization.dumps("when", dt.datetime(2026, 1, 1, tzinfo=zone))


@pytest.mark.parametrize(
    "value",
    ["\ud800", ["ok", "é\udcff"], {"\ud800": 1}, {1: "\udfff"}, {" x\ud800": 1}, ("\ud800",)],
    ids=repr,
)
def test_lone_surrogates_are_refused_naming_the_key(value: Any) -> None:
    with pytest.raises(SerializationError) as info:
        serialization.dumps("name", value)
    assert (info.value.key, info.value.type_) == ("name", str)
    assert "session['name']" in str(info.value)
    assert "surrogate" in str(info.value) and "UTF-8" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        '{" dec":"abc"}',
        '{" t":5}',
        '{" u":7}',
        '{" b":"é"}',
        '{" dt":5}',
        '{" s":[[1]]}',
        '{" fs":[{"a":1}]}',
        '{" dk":"x"}',
        '{" dk":[[1]]}',
        '{" dk":[[[1],2]]}',
        '{" dk":[[{" t":[1]},2]]}',
        '{" di":[5]}',
        '{" di":[[1,2]]}',
        '{" dtz":[1]}',
        '{" dtz":["2026-01-01T00:00:00","Nowhere/Atlantis",0]}',
        '{" dtz":["2026-01-01T00:00:00","../etc",0]}',
        '{" dtz":["2026-01-01T00:00:00+01:00","UTC",0]}',
        '{" dtz":["2026-01-01T00:00:00","UTC",2]}',
        '{" tmz":["25:00","UTC",0]}',
        '{" nope":1}',
        "[" * 100_000,
        '{" t":' * 100_000,
        '{"a":' * 100_000,
        b"\xff",
    ],
    ids=lambda t: repr(t[:40]),
)
def test_bad_stored_data_raises_value_error(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        serialization.loads(text)


@given(st.sampled_from(sorted(serialization._DECODERS)), json_values)
def test_any_tag_payload_decodes_or_raises_value_error(tag: str, payload: Any) -> None:
    text = json.dumps([{tag: payload}])
    try:
        serialization.loads(text)
    except ValueError:
        pass


def test_text_without_tags_never_reaches_the_tag_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serialization, "_DECODER", None)
    assert serialization.loads('{"a":[1,{"b":" {"}]}') == {"a": [1, {"b": " {"}]}


any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@pytest.mark.parametrize(
    "text",
    [
        "1180591620717411303424",  # beyond 64 bits: msgspec keeps it an int, orjson would not
        "-9223372036854775809",
        "[NaN,Infinity,-Infinity]",  # msgspec refuses: the standard library reads them
        '"\\ud800"',  # a lone surrogate, the same
        "1E400",
        '{"a":1,"a":2}',
        "-0",
        "[1.0,1e-07,-0.0]",
        '"\\u2028\\b"',
    ],
)
def test_plain_text_decodes_as_the_standard_library_does(text: str) -> None:
    found = serialization.loads(text)
    assert repr(found) == repr(json.loads(text))
    assert type(found) is type(json.loads(text))


@given(any_json)
def test_plain_text_of_any_json_value_decodes_as_the_standard_library_does(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assume('{" ' not in text)  # tagged text is the tag decoder's (tested above)
    assert repr(serialization.loads(text)) == repr(json.loads(text))


@given(any_json)
def test_same_text_never_hides_a_change(value: Any) -> None:
    # Whatever it calls unchanged, dumps writes as the stored text.
    for stored in ([None], [0], [value], {"v": None}):
        text = serialization.dumps("k", stored)
        current = [value] if isinstance(stored, list) else {"v": value}
        if serialization.decode(text)[1] and serialization.same_text(current, text):
            assert serialization.dumps("k", current) == text


def test_same_text_confirms_null_with_the_standard_library() -> None:
    assert serialization.same_text([None], "[null]")
    assert not serialization.same_text([float("nan")], "[null]")  # orjson writes NaN as null
    assert not serialization.same_text([2**70], "[null]")  # orjson refuses it: dumps decides


def test_same_text_never_raises_when_a_null_match_cannot_be_confirmed() -> None:
    import enum
    import uuid

    class Color(enum.Enum):
        RED = "red"

    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    # orjson writes these like the stored text; the standard library cannot write them.
    assert not serialization.same_text(
        {"id": ident, "email": None}, f'{{"id":"{ident}","email":null}}'
    )
    assert not serialization.same_text(["red", Color.RED, "annulled"], '["red","red","annulled"]')


def test_a_raw_lone_surrogate_decodes_as_the_standard_library_does() -> None:
    text = '"\ud800"'  # not escaped: only text from before dumps refused such strings
    assert serialization.loads(text) == json.loads(text) == "\ud800"
    assert not serialization.same_text(["a"], '["\ud800"]')  # changed in place since
