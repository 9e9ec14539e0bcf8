from __future__ import annotations

import pytest
from itsdangerous import Signer

from sharedsession.ids import CookieSigner
from sharedsession.ids import is_well_formed
from sharedsession.ids import new_id
from sharedsession.ids import store_key


def test_new_ids_are_256_bit_and_unique() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(sid) == 43 and is_well_formed(sid) for sid in ids)


def test_short_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        new_id(16)


@pytest.mark.parametrize(
    "value", ["", "short", "x" * 42, "a" * 43 + "!", "é" * 50, "a" * 257, "a.b" * 20]
)
def test_malformed_ids(value: str) -> None:
    assert not is_well_formed(value)


def test_store_key_is_a_digest_not_the_id() -> None:
    sid = new_id()
    k = store_key(sid)
    assert sid not in k and len(k) == 43
    assert store_key(sid) == k
    assert store_key(new_id()) != k


def test_signer_round_trip_and_rotation() -> None:
    sid = new_id()
    old = CookieSigner(["old-key"])
    rotated = CookieSigner(["new-key", "old-key"])
    assert rotated.unsign(rotated.sign(sid)) == (sid, True)
    assert rotated.unsign(old.sign(sid)) == (sid, False)
    assert CookieSigner(["new-key"]).unsign(old.sign(sid)) is None
    assert rotated.sign(sid) == CookieSigner(["new-key"]).sign(sid)


@pytest.mark.parametrize("keys", [["k"], [b"current", "older", b"oldest"]])
def test_signatures_are_the_ones_flask_session_makes_and_reads(keys: list[str | bytes]) -> None:
    # Flask-Session signs with itsdangerous: this salt, "hmac" key derivation,
    # SHA-1, the last key of its list the current one.
    raw = [key.encode() if isinstance(key, str) else key for key in keys]
    theirs = Signer(raw[::-1], salt="flask-session", key_derivation="hmac")
    ours = CookieSigner(keys)
    for sid in (new_id(), new_id(48)):
        assert ours.sign(sid) == theirs.sign(sid).decode()
        for index, key in enumerate(raw):
            signed = Signer(key, salt="flask-session", key_derivation="hmac").sign(sid).decode()
            assert ours.unsign(signed) == (sid, index == 0)
            # Padding, as itsdangerous reads it.
            assert ours.unsign(signed + "=") == (sid, index == 0)
            forged = signed[:-2] + ("AA" if signed[-2:] != "AA" else "BB")
            assert ours.unsign(forged) is None
            assert ours.unsign(new_id() + signed[signed.rindex(".") :]) is None
            assert ours.unsign(signed + "é") is None  # not ASCII: refused, never a 500


@pytest.mark.parametrize("value", ["", "no-dot", "a.b", "é.é", "x" * 5000 + ".sig", ".", "a.!!!"])
def test_signer_rejects_garbage(value: str) -> None:
    assert CookieSigner(["k"]).unsign(value) is None


def test_signer_needs_a_key() -> None:
    with pytest.raises(ValueError):
        CookieSigner([])
