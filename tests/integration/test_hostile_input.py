"""Hostile cookies: never a 500, never another user's data, never a store write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from sharedsession.ids import new_id
from sharedsession.stores.base import SessionStore
from sharedsession.stores.memory import MemoryStore
from sharedsession.stores.redis import RedisStore
from sharedsession.stores.sqlite import SQLiteStore
from tests.flask_apps import make_app
from tests.helpers import CountingStore
from tests.servers import RedisServer

header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF) | st.just("\t"), max_size=300
)


def victim_app(
    backend: SessionStore | None = None, **config: Any
) -> tuple[Any, CountingStore, str]:
    store = CountingStore(backend or MemoryStore())
    app, _ = make_app(store=store, **config)
    client = app.test_client()
    client.get("/login/victim")
    found = client.get_cookie("session")
    assert found is not None
    store.calls.clear()
    return app, store, found.value


def mutations(value: str) -> st.SearchStrategy[str]:
    """Near misses of a real cookie: truncated, one character changed, extended."""
    return st.one_of(
        st.integers(0, len(value) - 1).map(lambda n: value[:n]),
        st.tuples(st.integers(0, len(value) - 1), st.sampled_from("A_-z09."))
        .map(lambda t: value[: t[0]] + t[1] + value[t[0] + 1 :])
        .filter(lambda v: v != value),
        st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=5).map(lambda s: value + s),
    )


def check(app: Any, store: CountingStore, header: str, secret: str) -> None:
    response = app.test_client().get("/get/user", headers={"Cookie": header})
    assert response.status_code == 200
    assert "victim" not in response.text
    assert store.calls["apply"] == 0 and store.calls["delete"] == 0
    if "Set-Cookie" in response.headers:
        assert secret not in response.headers["Set-Cookie"]


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    if request.param == "memory":
        made: Any = MemoryStore()
    elif request.param == "sqlite":
        made = SQLiteStore(tmp_path / "s.db")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        request.getfixturevalue("redis_client")
        made = RedisStore(server.client())
    with made:
        yield made


@pytest.mark.parametrize("signed", [False, True])
def test_random_cookie_headers(signed: bool, backend: SessionStore) -> None:
    app, store, secret = victim_app(backend, SESSION_USE_SIGNER=signed)

    @SETTINGS
    @given(header_text)
    @example("session=")
    @example("session=" + "A" * 43)
    @example("session=" + "x" * 10_000)
    @example("session=" + new_id() + "; session=" + new_id())
    @example("session=\u00e9\u00e8" * 30)
    @example("session=" + secret.split(".")[0] + ".forged-signature-value")
    def run(header: str) -> None:
        check(app, store, header, secret)

    run()


@pytest.mark.parametrize("signed", [False, True])
def test_near_misses_of_a_real_cookie(signed: bool) -> None:
    app, store, secret = victim_app(SESSION_USE_SIGNER=signed)

    @SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        forged = data.draw(mutations(secret))
        name = data.draw(st.sampled_from(["session", "Session", "session ", "x; session"]))
        check(app, store, f"{name}={forged}", secret)

    run()


def test_signature_of_another_key_is_refused() -> None:
    app, store, secret = victim_app(SESSION_USE_SIGNER=True)
    other, _ = make_app(store=MemoryStore(), SESSION_USE_SIGNER=True, SECRET_KEY="attacker")
    sid = secret.split(".")[0]
    client = other.test_client()
    client.get("/set/x/1")
    found = client.get_cookie("session")
    assert found is not None
    forged = sid + "." + found.value.split(".")[1]
    check(app, store, f"session={forged}", secret)
