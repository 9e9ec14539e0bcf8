"""Store outages against a real redis-server that the test stops, freezes and restarts."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from flask import Flask
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sharedsession.errors import StoreUnavailable
from sharedsession.flask import session
from sharedsession.stores.redis import AsyncRedisStore
from tests.asgi_apps import starlette_app
from tests.flask_apps import assert_later_expiry
from tests.flask_apps import make_app
from tests.flask_apps import visit
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private server with AOF persistence, so a restart keeps its data."""
    redis_server = RedisServer(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    try:
        yield redis_server.start()
    finally:
        redis_server.stop()


def login(app: Flask) -> str:
    client = app.test_client()
    assert client.get("/set/user/alice").status_code == 200
    found = client.get_cookie("session")
    assert found is not None
    return str(found.value)


def test_restart_with_aof_keeps_sessions_and_needs_no_app_restart(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=server.url, SESSION_REDIS_TIMEOUT=1)
    cookies = [login(app) for _ in range(5)]
    server.stop()
    status, text, set_cookie = visit(app, cookies[0], "/get/user")
    assert status == 503 and "unavailable" in text and set_cookie is None
    assert visit(app, cookies[1], "/set/x/1")[0] == 503
    assert visit(app, cookies[2], "/untouched")[0] == 200
    assert all(cookie not in caplog.text for cookie in cookies)  # logs never hold IDs
    # Once each: the read failed in its load, the write that never reads in its save.
    assert caplog.text.count("session store unavailable during load") == 1
    assert caplog.text.count("session store unavailable during save") == 1
    server.start()
    for cookie in cookies:
        assert visit(app, cookie, "/get/user")[:2] == (200, "'alice'")
    assert visit(app, cookies[1], "/set/x/2")[0] == 200
    assert visit(app, cookies[1], "/get/x")[:2] == (200, "'2'")


@pytest.mark.parametrize("form", ["url", "classic client"])
def test_a_frozen_server_fails_within_the_timeout(server: RedisServer, form: str) -> None:
    # Flask-Session's classic config passes a client made without a socket timeout.
    redis_config = server.url if form == "url" else redis.Redis(host="127.0.0.1", port=server.port)
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=redis_config, SESSION_REDIS_TIMEOUT=0.5)
    cookie = login(app)
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        status, _, _ = visit(app, cookie, "/get/user")
        elapsed = time.monotonic() - started
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert status == 503
    assert elapsed < 0.5 * 2  # one timeout (timeouts are not retried), plus slack
    assert visit(app, cookie, "/get/user")[:2] == (200, "'alice'")


def test_an_async_store_on_a_frozen_server_fails_within_the_timeout(server: RedisServer) -> None:
    # One connection, so Bob's request gets the very connection whose read of
    # Alice's session timed out; Alice's reply arrives while Bob waits.
    store = AsyncRedisStore.from_url(server.url, timeout=0.3, max_connections=1)
    assert server.process is not None
    pid = server.process.pid
    with TestClient(starlette_app(store)) as client:

        def visit(cookie: str | None, path: str) -> tuple[int, str]:
            client.cookies.clear()
            if cookie is not None:
                client.cookies.set("session", cookie)
            response = client.get(path)
            return response.status_code, response.text

        def login(owner: str) -> str:
            assert visit(None, f"/set/owner/{owner}") == (200, "ok")
            return str(client.cookies["session"])

        alice, bob = login("alice"), login("bob")
        thaw = threading.Timer(0.1, os.kill, (pid, signal.SIGCONT))
        # Should a call wait for ever, the server wakes up after 3 s and the test fails.
        rescue = threading.Timer(3, os.kill, (pid, signal.SIGCONT))
        os.kill(pid, signal.SIGSTOP)
        try:
            rescue.start()
            started = time.monotonic()
            first = visit(alice, "/get/owner")
            elapsed = time.monotonic() - started
            thaw.start()
            second = visit(bob, "/get/owner")
        finally:
            thaw.cancel()
            rescue.cancel()
            os.kill(pid, signal.SIGCONT)
        assert first[0] == 503
        assert elapsed < 0.3 * 2  # one timeout for the whole call, plus slack
        assert second == (200, "'bob'") or second[0] == 503, second  # never Alice's
        time.sleep(0.3)
        for _ in range(5):
            assert visit(bob, "/get/owner") == (200, "'bob'")
            assert visit(alice, "/get/owner") == (200, "'alice'")

        # The connection goes back to the pool with its socket timeout: a
        # listing (through redis-py's client, not the kept connection) on a
        # frozen server still fails within it rather than waiting for ever.
        async def listing() -> str:
            try:
                await asyncio.wait_for(_listed(store), 5)
            except StoreUnavailable:
                return "unavailable"
            except asyncio.TimeoutError:
                return "still waiting after 5 s"
            return "listed"

        os.kill(pid, signal.SIGSTOP)
        try:
            assert client.portal is not None
            outcome = client.portal.call(listing)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert outcome == "unavailable"
        assert visit(alice, "/get/owner") == (200, "'alice'")
        client.portal.call(store.aclose)


def test_an_async_store_on_the_apps_own_client_keeps_its_timeouts(server: RedisServer) -> None:
    # The app's client names no socket timeout (redis-py's default, 5 s, applies)
    # and has a pool of one connection, which the store hands back after each
    # command: the app's next call gets that very connection.
    pool = redis.asyncio.BlockingConnectionPool(
        host="127.0.0.1", port=server.port, max_connections=1
    )
    apps = redis.asyncio.Redis(connection_pool=pool)
    store = AsyncRedisStore(apps)
    assert server.process is not None
    pid = server.process.pid

    async def scenario() -> list[str]:
        await apps.set("the-apps-own", "1")
        assert await store.load("no-such-session") is None
        outcomes = []
        os.kill(pid, signal.SIGSTOP)
        try:
            for call in (apps.get("the-apps-own"), store.load("no-such-session")):
                started = time.monotonic()
                try:
                    await asyncio.wait_for(call, 9)
                except redis.exceptions.TimeoutError:
                    outcomes.append("timed out")
                except StoreUnavailable:
                    outcomes.append("unavailable")
                except asyncio.TimeoutError:
                    outcomes.append("still waiting")
                else:
                    outcomes.append("answered")
                outcomes[-1] += f" after {round(time.monotonic() - started)} s"
        finally:
            os.kill(pid, signal.SIGCONT)
        assert await apps.get("the-apps-own") == b"1"
        assert await store.load("no-such-session") is None
        await apps.aclose()
        await pool.disconnect()
        return outcomes

    # The app's call keeps its own timeout, and the store's call is bounded by it too.
    assert asyncio.run(scenario()) == ["timed out after 5 s", "unavailable after 5 s"]


async def _listed(store: AsyncRedisStore) -> int:
    return len([found async for found in store.sessions()])


def test_degrade_serves_an_empty_unsaved_session(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app(
        SESSION_TYPE="redis", SESSION_REDIS=server.url, SESSION_ON_STORE_ERROR="degrade"
    )
    cookie = login(app)
    server.stop()
    with caplog.at_level(logging.WARNING, logger="sharedsession"):
        assert visit(app, cookie, "/get/user") == (200, "None", None)
        assert visit(app, cookie, "/set/cart/x") == (200, "ok", None)
        new_client = app.test_client()
        response = new_client.get("/set/user/bob")  # a new session cannot be saved either
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert "serving an empty unsaved session" in caplog.text
    assert "session not saved" in caplog.text
    assert cookie not in caplog.text
    server.start()
    assert visit(app, cookie, "/get/user")[:2] == (200, "'alice'")
    assert visit(app, cookie, "/get/cart")[:2] == (200, "None")  # nothing was written


def redis_app(server: RedisServer, **config: Any) -> Flask:
    """The test app on ``server``, with a 100 s lifetime: refresh steps of 1 s."""
    app, _ = make_app(
        SESSION_TYPE="redis",
        SESSION_REDIS=server.url,
        SESSION_REDIS_TIMEOUT=1,
        PERMANENT_SESSION_LIFETIME=100,
        **config,
    )
    return app


@pytest.mark.parametrize("mode", ["fail", "degrade"])
def test_a_save_lost_to_an_outage_still_sends_the_deadline_its_load_moved(
    server: RedisServer, mode: str
) -> None:
    # The request's load moves the deadline, then Redis goes down before the
    # save: the response (a 503, or with degrade a 200 that saved nothing)
    # still tells the browser the new expiry, under the ID it has, so it does
    # not keep the earlier one.
    app = redis_app(server, SESSION_ON_STORE_ERROR=mode)

    @app.get("/outage-before-save")
    def outage_before_save() -> str:
        assert session["user"] == "alice"
        session["cart"] = "lost"
        server.stop()
        return "ok"

    client = app.test_client()
    created = client.get("/set/user/alice").headers["Set-Cookie"]
    time.sleep(1.05)  # past the step, and past a second of Expires
    response = client.get("/outage-before-save")
    assert response.status_code == (503 if mode == "fail" else 200)
    assert_later_expiry(created, response.headers.get("Set-Cookie"))
    server.start()
    assert client.get("/get/user").text == "'alice'"
    assert client.get("/get/cart").text == "None"  # nothing was written


def test_asgi_a_save_lost_to_an_outage_still_sends_the_deadline_its_load_moved(
    server: RedisServer,
) -> None:
    store = AsyncRedisStore.from_url(server.url, timeout=1)

    async def outage_before_save(request: Request) -> PlainTextResponse:
        assert request.session["user"] == "alice"
        request.session["cart"] = "lost"
        server.stop()
        return PlainTextResponse("ok")

    app = starlette_app(store, max_age=100)
    app.router.routes.append(Route("/outage-before-save", outage_before_save))
    with TestClient(app) as client:
        created = client.get("/set/user/alice").headers["set-cookie"]
        time.sleep(1.05)
        response = client.get("/outage-before-save")
        assert response.status_code == 503
        assert response.headers["cache-control"] == "private"  # never kept by a shared cache
        assert_later_expiry(created, response.headers.get("set-cookie"))
        server.start()
        assert client.get("/get/user").text == "'alice'"
        assert client.get("/get/cart").text == "None"
        assert client.portal is not None
        client.portal.call(store.aclose)


def test_a_logout_by_clear_fails_closed_when_degrading(server: RedisServer) -> None:
    # session.clear() is how many apps log out: answered 200 while the store
    # still holds the session, the user would stay logged in. Degrading never
    # covers it; it fails closed, and sends no cookie.
    app = redis_app(server, SESSION_ON_STORE_ERROR="degrade")

    @app.get("/logout-during-outage")
    def logout_during_outage() -> str:
        assert session["user"] == "alice"
        server.stop()
        session.clear()
        return "logged out"

    client = app.test_client()
    assert client.get("/set/user/alice").status_code == 200
    time.sleep(1.05)  # the load below moves the deadline
    response = client.get("/logout-during-outage")
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers
    server.start()
    assert client.get("/get/user").text == "'alice'"  # the logout did not happen, and said so


def test_clear_on_a_new_session_still_degrades(server: RedisServer) -> None:
    # Nothing was stored before the request, so nothing can live on: a write
    # into a new session that began with clear() degrades like any other.
    app = redis_app(server, SESSION_ON_STORE_ERROR="degrade")

    @app.get("/fresh-start-during-outage")
    def fresh_start_during_outage() -> str:
        session.clear()
        session["csrf"] = "token"
        server.stop()
        return "ok"

    client = app.test_client()
    response = client.get("/fresh-start-during-outage")
    assert (response.status_code, response.text) == (200, "ok")
    assert "Set-Cookie" not in response.headers  # nothing was saved
    server.start()
    # Once Redis is back, nothing of it was stored, and new sessions are.
    assert redis.Redis.from_url(server.url).dbsize() == 0
    assert client.get("/set/user/bob").status_code == 200
    assert client.get("/get/user").text == "'bob'"
