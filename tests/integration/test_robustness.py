"""Fleet correctness on every store: logouts by clear(), stored garbage, limits,
degraded saves, private files, redacted credentials, cookies, 5xx responses."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from starlette.testclient import TestClient

from sharedsession.errors import ConfigurationError
from sharedsession.errors import SessionTooLarge
from sharedsession.flask import session
from sharedsession.ids import store_key
from sharedsession.stores.base import writes_keys
from sharedsession.stores.memory import AsyncMemoryStore
from tests.asgi_apps import quart_app
from tests.asgi_apps import starlette_app
from tests.flask_apps import assert_later_expiry
from tests.flask_apps import cookie_of
from tests.flask_apps import make_app
from tests.flask_apps import visit
from tests.integration.conftest import KINDS
from tests.integration.conftest import store_config
from tests.servers import RedisServer


@pytest.mark.parametrize("kind", KINDS)
def test_clear_ends_a_bound_session(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, ext = make_app(**store_config(kind, request, tmp_path))
    client = app.test_client()
    client.get("/login/ann")
    cookie = cookie_of(client)
    response = client.get("/clear")
    assert "session=;" in response.headers["Set-Cookie"]  # the cookie is expired
    assert visit(app, cookie, "/get/user")[1] == "None"
    with app.app_context():
        assert ext.sessions_for_user("ann") == []


def corrupt(app: Flask, kind: str, cookie: str, how: str) -> None:
    """Damage the stored session of ``cookie`` as a store writer or a bad migration might."""
    key = store_key(cookie)
    store: Any = app.session_interface.store  # type: ignore[attr-defined]
    if kind == "memory":
        entry = store._entries[key]
        if how == "metadata":
            entry.created = "yesterday"
        else:
            entry.data["user"] = '{" dec": "abc"}'
    elif kind == "sqlite":
        conn = store._conn()
        if how == "metadata":
            damage = "UPDATE sessions SET created = 'yesterday', absolute = 'x' WHERE key = ?"
            conn.execute(damage, (key,))
        else:
            conn.execute("UPDATE session_data SET value = ? WHERE key = ?", ('{" t": 5}', key))
    else:
        client = store.client
        name = f"session:{{{key}}}"
        if how == "metadata":
            client.hset(name, mapping={":created": "yesterday", ":absolute": "never"})
        elif how == "data":
            client.hset(name, "user", "[" * 100_000)
        else:
            client.delete(name)
            client.set(name, "not a hash")


REDIS = pytest.mark.integration
CORRUPTIONS = [(kind, how) for kind in ("memory", "sqlite") for how in ("metadata", "data")] + [
    pytest.param("redis", how, marks=REDIS) for how in ("metadata", "data", "wrongtype")
]


@pytest.mark.parametrize(("kind", "how"), CORRUPTIONS)
def test_damaged_stored_data_is_no_session_never_a_500(
    kind: str,
    how: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, _ = make_app(**store_config(kind, request, tmp_path))
    client = app.test_client()
    client.get("/set/user/ann")
    cookie = cookie_of(client)
    corrupt(app, kind, cookie, how)
    with caplog.at_level(logging.WARNING, logger="sharedsession"):
        status, text, _ = visit(app, cookie, "/get/user")
        assert (status, text) == (200, "None")
        # Writing starts a new session; the damaged one is never written back.
        status, _, set_cookie = visit(app, cookie, "/append/bob")
        assert status == 200 and set_cookie is not None and cookie not in set_cookie
        # A write that never reads does not see a damaged value (it may be a
        # newer version's tag, during a deploy) where the store writes keys
        # unread: here it replaces the damaged value, and the session reads
        # again. Damaged metadata, or a key of another type, it does see: the
        # keys start a new session, as on the stores that always load.
        status, _, set_cookie = visit(app, cookie, "/set/user/bob")
        unread = how == "data" and writes_keys(app.session_interface.store)  # type: ignore[attr-defined]
        if unread:
            # The same session, its deadline within a step of the cookie's: no cookie.
            assert status == 200 and set_cookie is None
        else:
            assert status == 200 and set_cookie is not None and cookie not in set_cookie
        assert visit(app, cookie, "/get/user")[:2] == (200, "'bob'" if unread else "None")
    assert caplog.records and cookie not in caplog.text


@pytest.mark.parametrize("kind", KINDS)
def test_thousands_of_keys_save_and_regenerate(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, _ = make_app(**store_config(kind, request, tmp_path), SESSION_MAX_KEYS=None)
    client = app.test_client()
    assert client.get("/many/9000").status_code == 200
    assert client.get("/login/ann").status_code == 200  # regeneration moves every key
    assert client.get("/count").text == "9001"
    assert client.get("/clear").status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_max_keys_refuses_the_save(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, _ = make_app(**store_config(kind, request, tmp_path), SESSION_MAX_KEYS=10)
    app.testing = True
    client = app.test_client()
    assert client.get("/many/10").status_code == 200
    refused = "11 keys, over the limit of 10 keys.*SESSION_MAX_KEYS"
    with pytest.raises(SessionTooLarge, match=refused):
        client.get("/set/one/more")
    assert client.get("/count").text == "10"  # nothing of the refused save was written


@pytest.mark.parametrize("kind", KINDS)
def test_absolute_lifetime_applies_to_existing_sessions(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    config = store_config(kind, request, tmp_path)
    before, _ = make_app("before", **config)
    store = before.session_interface.store  # type: ignore[attr-defined]
    client = before.test_client()
    client.get("/set/user/ann")
    cookie = cookie_of(client)
    after, _ = make_app("after", store=store, **config, SESSION_ABSOLUTE_LIFETIME=0.3)
    assert visit(after, cookie, "/get/user")[1] == "'ann'"
    time.sleep(0.4)
    assert visit(after, cookie, "/get/user")[1] == "None"
    assert visit(before, cookie, "/get/user")[1] == "'ann'"  # the stored deadline is not changed


@pytest.fixture
def private_redis(tmp_path: Path) -> Any:
    server = RedisServer(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.mark.integration
def test_degrade_mode_fails_closed_on_logout_and_login(private_redis: RedisServer) -> None:
    app, _ = make_app(
        SESSION_TYPE="redis", SESSION_REDIS=private_redis.url, SESSION_ON_STORE_ERROR="degrade"
    )
    client = app.test_client()
    client.get("/login/ann")
    cookie = cookie_of(client)
    private_redis.stop()
    assert visit(app, cookie, "/get/user")[:2] == (200, "None")  # reads degrade
    assert visit(app, cookie, "/logout")[0] == 503  # ends: fails closed
    assert visit(app, cookie, "/login/bob")[0] == 503  # rotates: fails closed
    assert visit(app, cookie, "/set/x/1")[0] == 200  # a plain write degrades
    private_redis.start()
    assert visit(app, cookie, "/get/user")[:2] == (200, "'ann'")  # the logout did not happen


@pytest.mark.integration
@pytest.mark.parametrize("refusal", ["NOREPLICAS", "READONLY"])
def test_refused_writes_are_503_never_500(private_redis: RedisServer, refusal: str) -> None:
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=private_redis.url)
    client = app.test_client()
    client.get("/set/user/ann")
    admin: Any = private_redis.client()
    if refusal == "NOREPLICAS":
        admin.config_set("min-replicas-to-write", 1)
    else:
        admin.execute_command("REPLICAOF", "127.0.0.1", "1")  # a replica of nothing: read-only
    try:
        response = client.get("/set/user/bob")
        assert response.status_code == 503 and "unavailable" in response.text
    finally:
        admin.config_set("min-replicas-to-write", 0)
        admin.execute_command("REPLICAOF", "NO", "ONE")
        admin.close()
    assert client.get("/get/user").text == "'ann'"  # the refused write left nothing behind
    assert client.get("/set/user/bob").status_code == 200  # writes work again ...
    assert client.get("/get/user").text == "'bob'"  # ... and are kept


def test_sqlite_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "sessions"
    app, _ = make_app(SESSION_TYPE="sqlite", SESSION_SQLITE_PATH=str(folder / "s.db"))
    app.test_client().get("/set/a/1")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    for name in ("s.db", "s.db-wal", "s.db-shm"):
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o600, name


def test_credentials_never_reach_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigurationError) as error:
        make_app(SESSION_TYPE="redis", SESSION_REDIS="redis+sentinel://ann:s3cret@h:notaport/m")
    assert "s3cret" not in str(error.value) and "***" in str(error.value)
    app, _ = make_app(
        SESSION_TYPE="redis",
        SESSION_REDIS="redis://ann:s3cret@127.0.0.1:1/0",
        SESSION_REDIS_TIMEOUT=0.2,
    )
    client = app.test_client()
    client.set_cookie("session", "x" * 43)
    with caplog.at_level(logging.DEBUG, logger="sharedsession"):
        assert client.get("/get/a").status_code == 503
    assert caplog.text and "s3cret" not in caplog.text


def test_every_cookie_field_is_read_on_every_adapter() -> None:
    flask, _ = make_app()
    client = flask.test_client()
    client.get("/set/a/1")
    sid = cookie_of(client)
    joined = f"theme=dark, session={sid}"  # a server that joins repeated fields with commas
    bare = flask.test_client(use_cookies=False)  # sends the header as given
    response = bare.get("/get/a", headers={"Cookie": joined})
    assert response.text == "'1'"

    store = AsyncMemoryStore()
    with TestClient(starlette_app(store, debug=True)) as asgi:
        asgi.get("/set/a/2")
        sid = asgi.cookies["session"]
        asgi.cookies.clear()
        raw = [(b"cookie", b"theme=dark"), (b"cookie", f"session={sid}".encode())]
        assert asgi.get("/get/a", headers=raw).text == "'2'"

    quart, _ = quart_app()

    async def scenario() -> str:
        q = quart.test_client()
        first = await q.get("/set/a/3")
        value = first.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        from werkzeug.datastructures import Headers

        headers = Headers([("Cookie", "theme=dark"), ("Cookie", f"session={value}")])
        fresh = quart.test_client()
        response = await fresh.get("/get/a", headers=headers)
        return str(await response.get_data(as_text=True))

    assert asyncio.run(scenario()) == "'3'"


@pytest.mark.parametrize("adapter", ["flask", "starlette", "quart"])
def test_a_server_error_saves_nothing_on_every_adapter(adapter: str) -> None:
    if adapter == "flask":
        app, _ = make_app()
        client = app.test_client()
        client.get("/set/a/1")
        assert client.get("/fail/a").status_code == 500
        assert client.get("/get/a").text == "'1'"
    elif adapter == "starlette":
        with TestClient(starlette_app(AsyncMemoryStore(), debug=True)) as asgi:
            asgi.get("/set/a/1")
            assert asgi.get("/fail/a").status_code == 500
            assert asgi.get("/get/a").text == "'1'"
    else:
        quart, _ = quart_app()

        async def scenario() -> str:
            q = quart.test_client()
            await q.get("/set/a/1")
            assert (await q.get("/fail/a")).status_code == 500
            return str(await (await q.get("/get/a")).get_data(as_text=True))

        assert asyncio.run(scenario()) == "'1'"


@pytest.mark.parametrize("adapter", ["flask", "starlette", "quart"])
def test_a_server_error_still_sends_the_deadline_its_load_moved(adapter: str) -> None:
    # A 100 s lifetime refreshes in steps of 1 s. After 1.05 s, the first
    # request's load moves the deadline; it fails with a 500, which saves
    # nothing, yet its response carries the cookie: same ID, the new expiry.
    # Without it the browser keeps the earlier expiry, and no request within
    # the step (the next one) would send the later one.
    paths = ["/set/a/1", "/fail/a", "/fail/a", "/get/a"]
    if adapter == "flask":
        app, _ = make_app(PERMANENT_SESSION_LIFETIME=100)

        @app.get("/read-then-fail/<key>")
        def read_then_fail(key: str) -> tuple[str, int]:
            # Flask loads on first use: a handler that only sets keys loads
            # nothing and moves no deadline (ASGI and Quart load up front).
            assert session["a"] == "1"
            session[key] = "half-done"
            return "failed", 500

        paths = ["/set/a/1", "/read-then-fail/a", "/read-then-fail/a", "/get/a"]
        flask_client = app.test_client()

        def flask_visit(path: str) -> tuple[int, str | None, str]:
            response = flask_client.get(path)
            return response.status_code, response.headers.get("Set-Cookie"), response.text

        seen = _with_a_pause(flask_visit, paths)
    elif adapter == "starlette":
        with TestClient(starlette_app(AsyncMemoryStore(), debug=True, max_age=100)) as asgi:

            def asgi_visit(path: str) -> tuple[int, str | None, str]:
                response = asgi.get(path)
                return response.status_code, response.headers.get("set-cookie"), response.text

            seen = _with_a_pause(asgi_visit, paths)
    else:
        quart, _ = quart_app(PERMANENT_SESSION_LIFETIME=100)

        async def scenario() -> list[tuple[int, str | None, str]]:
            q = quart.test_client()
            out = []
            for index, path in enumerate(paths):
                if index == 1:
                    await asyncio.sleep(1.05)
                response = await q.get(path)
                text = await response.get_data(as_text=True)
                out.append((response.status_code, response.headers.get("Set-Cookie"), text))
            return out

        seen = asyncio.run(scenario())
    (_, created, _), (failed, refreshed, _), (again, within_step, _), (_, _, value) = seen
    assert created is not None
    assert failed == again == 500
    assert_later_expiry(created, refreshed)  # the ID the browser has, the new expiry
    assert within_step is None  # that load moved nothing: nothing to tell
    assert value == "'1'"  # and the failed requests saved nothing


def _with_a_pause(visit_: Any, paths: list[str]) -> list[tuple[int, str | None, str]]:
    out = []
    for index, path in enumerate(paths):
        if index == 1:
            time.sleep(1.05)  # past the step, and past a second of Expires
        out.append(visit_(path))
    return out


@pytest.mark.integration
def test_redis_client_objects_are_bounded_too() -> None:
    # A refused connection answers fast, not after redis-py's own retries.
    client_object = redis.Redis(port=1)
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=client_object, SESSION_REDIS_TIMEOUT=0.3)
    client = app.test_client()
    client.set_cookie("session", "x" * 43)
    started = time.monotonic()
    assert client.get("/get/a").status_code == 503
    assert time.monotonic() - started < 5
