from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
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
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip_is_exact(value: Any) -> None:
    back = serialization.loads(serialization.dumps("k", value))
    assert back == value
    assert type(back) is type(value)


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


@pytest.mark.parametrize(
    ("value", "type_", "path"),
    [
        (Custom(), Custom, ""),
        ({"a": [1, Custom()]}, Custom, "['a'][1]"),
        ({1: "int key"}, int, " (a dict key)"),
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
