from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sharedsession.cookies import read_cookie


def split_and_compare(fields: list[str], name: str) -> str | None:
    """The rule read_cookie follows, written the plain way: split every field at
    ``;`` and ``,``, strip each piece, take the first whose name is ``name``
    (a piece with no ``=`` is a value without a name, as browsers read it)."""
    for field in fields:
        for chunk in re.split("[;,]", field):
            cookie_name, equals, value = chunk.strip().partition("=")
            if equals and cookie_name == name:
                return value.strip().strip('"')
    return None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("session=abc", "abc"),
        ("a=1; session=abc; b=2", "abc"),
        ("a=1,session=abc", "abc"),
        ("xsession=no; session=yes", "yes"),
        ("a=session=no; session=yes", "yes"),
        ("session =no; session=yes", "yes"),
        ('session="abc"', "abc"),
        ("session=first; session=second", "first"),
        ("  \tsession= abc ;", "abc"),
        ("session=", ""),
        ("sessions=abc", None),
        ("session; a=1", None),
        ("session; session=abc", "abc"),
        ("xsession=" * 5000 + "; session=abc", "abc"),
        (["a=1", "b=2; session=abc"], "abc"),
        (["session=one", "session=two"], "one"),
    ],
)
def test_the_first_cookie_of_that_name_is_read(
    header: str | list[str] | None, expected: str | None
) -> None:
    assert read_cookie(header, "session") == expected


#: Header fields built from the pieces that matter: names, separators, space, quotes.
FIELDS = st.lists(
    st.lists(
        st.sampled_from(["session", "x", "=", ";", ",", " ", "\t", '"', "a.b"]), max_size=12
    ).map("".join),
    min_size=1,
    max_size=3,
)


@given(FIELDS)
def test_any_header_is_read_as_by_splitting_it(fields: list[str]) -> None:
    assert read_cookie(fields, "session") == split_and_compare(fields, "session")
    assert read_cookie(fields[0], "session") == split_and_compare(fields[:1], "session")
