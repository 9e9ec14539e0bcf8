"""Starlette, FastAPI and Quart adapters against every async store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from starlette.testclient import TestClient

from sharedsession.asgi import SessionMiddleware
from sharedsession.errors import SessionNotLoaded
from sharedsession.errors import StoreUnavailable
from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.stores.base import AsyncSessionStore
from sharedsession.stores.memory import AsyncMemoryStore
from sharedsession.stores.offload import AsyncOffloadStore
from sharedsession.stores.redis import AsyncRedisStore
from sharedsession.stores.sqlalchemy import AsyncSQLAlchemyStore
from sharedsession.stores.sqlite import AsyncSQLiteStore
from sharedsession.stores.sqlite import SQLiteStore
from tests.asgi_apps import fastapi_app
from tests.asgi_apps import quart_app
from tests.asgi_apps import starlette_app
from tests.helpers import AsyncCountingStore
from tests.servers import RedisServer
from tests.servers import free_port

STORES = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncCountingStore:
    if request.param == "memory":
        made: AsyncSessionStore = AsyncMemoryStore()
    elif request.param == "sqlite":
        made = AsyncSQLiteStore(tmp_path / "asgi.db")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        request.getfixturevalue("redis_client")
        made = AsyncRedisStore(redis.asyncio.Redis(port=server.port))
    return AsyncCountingStore(made)


async def disconnect(store: Any) -> None:
    """Close the store's connections on the TestClient's loop before it ends."""
    while hasattr(store, "store"):
        store = store.store
    if isinstance(store, (AsyncRedisStore, AsyncSQLAlchemyStore)):
        await store.aclose()


@contextlib.contextmanager
def serve(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as client:
        try:
            yield client
        finally:
            assert client.portal is not None
            client.portal.call(disconnect, app.state.store)


@pytest.fixture
def client(store: AsyncCountingStore) -> Iterator[TestClient]:
    with serve(starlette_app(store)) as made:
        yield made


def sid(client: TestClient) -> str | None:
    """The session cookie the server set (a test may have planted another by hand)."""
    found = [c for c in client.cookies.jar if c.name == "session"]
    found.sort(key=lambda c: c.domain == "")  # server-set cookies carry the test domain
    return found[0].value if found else None


def test_set_get_and_nested_mutation(client: TestClient) -> None:
    client.get("/set/user/alice")
    assert client.get("/get/user").text == "'alice'"
    client.get("/append/apple")
    assert client.get("/append/pear").text == "['apple', 'pear']"


def test_cache_control_set_by_the_app_becomes_private(store: AsyncCountingStore) -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def cached(request: Request) -> PlainTextResponse:
        request.session["seen"] = True
        return PlainTextResponse("ok", headers={"Cache-Control": "public, max-age=60"})

    app = starlette_app(store)
    app.router.routes.append(Route("/cached", cached))
    with serve(app) as client:
        response = client.get("/cached")
    assert response.headers.get_list("cache-control") == ["private, max-age=60"]
    assert response.headers["vary"] == "Cookie"


def test_cookie_and_cache_headers(client: TestClient) -> None:
    response = client.get("/set/a/1")
    header = response.headers["set-cookie"]
    for part in ("HttpOnly", "SameSite=Lax", "Path=/", "Expires=", "Max-Age="):
        assert part in header
    assert response.headers["vary"] == "Cookie" and response.headers["cache-control"] == "private"
    assert "vary" not in client.get("/untouched").headers


def test_round_trips_with_autoload(client: TestClient, store: AsyncCountingStore) -> None:
    client.get("/untouched")
    assert store.total == 0  # no cookie: nothing
    client.get("/set/a/1")
    assert dict(store.calls) == {"apply": 1}
    store.calls.clear()
    client.get("/get/a")
    assert dict(store.calls) == {"load": 1}
    store.calls.clear()
    client.get("/set/a/2")
    assert dict(store.calls) == {"load": 1, "apply": 1}
    store.calls.clear()
    client.get("/untouched")
    assert dict(store.calls) == {"load": 1}  # autoload: the price of sync dict access
    store.calls.clear()
    client.get("/clear")
    assert dict(store.calls) == {"load": 1, "delete": 1}


def test_lazy_mode_costs_nothing_when_untouched(store: AsyncCountingStore) -> None:
    with serve(starlette_app(store, autoload=False)) as client:
        client.get("/login/bob")
        store.calls.clear()
        assert client.get("/untouched").text == "untouched"
        assert store.total == 0
        assert client.get("/lazy").text == "'bob'"  # await load_session(request)
        assert dict(store.calls) == {"load": 1}
        assert client.get("/sync/user").text == "'bob'"  # a def handler loads on first use
        with pytest.raises(SessionNotLoaded, match="await load_session"):
            client.get("/get/user")  # an async handler cannot


def test_autoload_by_path_prefix(store: AsyncCountingStore) -> None:
    with serve(starlette_app(store, autoload=["/get"])) as client:
        client.get("/set/a/1")
        store.calls.clear()
        client.get("/untouched")
        assert store.total == 0
        assert client.get("/get/a").text == "'1'"


def test_unknown_id_is_not_adopted(client: TestClient) -> None:
    planted = new_id()
    client.cookies.set("session", planted)
    response = client.get("/set/a/1")
    assert planted not in response.headers["set-cookie"]
    assert sid(client) not in (None, planted)


def test_regenerate_destroy_and_fixation(client: TestClient, store: AsyncCountingStore) -> None:
    client.get("/set/cart/bait")
    planted = sid(client)
    client.get("/login/victim")
    assert sid(client) != planted
    assert client.get("/get/cart").text == "'bait'"
    assert client.portal is not None
    assert client.portal.call(store.load, store_key(planted or "")) is None  # attacker's ID: dead
    old = sid(client)
    client.get("/regenerate")
    assert sid(client) != old and client.get("/get/user").text == "'victim'"
    assert len(client.get("/devices").json()) == 1
    client.get("/logout")
    assert sid(client) is None
    assert client.get("/get/user").text == "None"


def test_signed_cookies(store: AsyncCountingStore) -> None:
    with serve(starlette_app(store, secret_key="k1")) as client:
        client.get("/set/a/1")
        value = sid(client)
        assert value is not None and "." in value
    with serve(starlette_app(store, secret_key=["k2", "k1"])) as client:
        client.cookies.set("session", value)
        assert client.get("/get/a").text == "'1'"
        assert sid(client) != value  # re-signed with k2
    with serve(starlette_app(store, secret_key="k2")) as client:
        client.cookies.set("session", value.split(".")[0])
        assert client.get("/get/a").text == "None"


def test_websocket_sees_the_session(client: TestClient) -> None:
    client.get("/login/carol")
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_text() == "'carol'"


def test_fastapi_dependency(store: AsyncCountingStore) -> None:
    with serve(fastapi_app(store, autoload=False)) as client:
        assert client.get("/add/apple").json() == ["apple"]
        assert client.get("/add/pear").json() == ["apple", "pear"]
        assert client.get("/me").json() == {"user": None, "cart": ["apple", "pear"]}


def test_store_down_is_503(store: AsyncCountingStore) -> None:
    dead = AsyncRedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    with serve(starlette_app(dead)) as client:
        client.cookies.set("session", new_id())
        response = client.get("/get/a")
        assert response.status_code == 503 and "set-cookie" not in response.headers
        assert client.get("/untouched").status_code == 200  # not using it: unaffected
        client.cookies.clear()
        response = client.get("/set/a/1")  # saving a new session fails closed too
        assert response.status_code == 503 and "set-cookie" not in response.headers
        assert client.get("/untouched").status_code == 200
    with serve(starlette_app(dead, autoload=False)) as client:
        client.cookies.set("session", new_id())
        assert client.get("/sync/a").status_code == 503  # lazy load in a worker thread
    with serve(starlette_app(dead, on_store_error="degrade")) as client:
        client.cookies.set("session", new_id())
        response = client.get("/get/a")
        assert response.status_code == 200 and response.text == "None"
        assert client.get("/set/a/1").status_code == 200


def test_a_session_used_after_its_response_started_on_an_outage_ends_the_response() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def stream(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"started: "
            yield str(request.session.get("a")).encode()  # the failed load surfaces here

        return StreamingResponse(body())

    dead = AsyncRedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    app = Starlette(routes=[Route("/stream", stream)])
    app.state.store = dead
    app.add_middleware(SessionMiddleware, store=dead)
    with serve(app) as client:
        client.cookies.set("session", new_id())
        # Too late for a 503: the error ends the response, as any handler error would.
        with pytest.raises(StoreUnavailable):
            client.get("/stream")


def test_middleware_options_are_checked(store: AsyncCountingStore) -> None:
    with pytest.raises(ValueError, match="on_store_error"):
        starlette_app(store, on_store_error="ignore").build_middleware_stack()
    with pytest.raises(ValueError, match="same_site"):
        starlette_app(store, same_site="sometimes").build_middleware_stack()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_quart_adapter(store: AsyncCountingStore) -> None:
    app, ext = quart_app(store)

    async def scenario() -> None:
        client = app.test_client()
        await client.get("/set/user/dave")
        assert await (await client.get("/get/user")).get_data(as_text=True) == "'dave'"
        await client.get("/append/apple")
        response = await client.get("/append/pear")
        assert await response.get_data(as_text=True) == "['apple', 'pear']"
        assert response.headers["Vary"] == "Cookie"
        other = app.test_client()
        await other.get("/login/erin")
        await client.get("/login/erin")
        assert await (await client.get("/logout-others")).get_data(as_text=True) == "1"
        assert await (await other.get("/get/user")).get_data(as_text=True) == "None"
        assert len(await ext.sessions_for_user("erin")) == 1
        await client.get("/logout")
        assert await (await client.get("/get/user")).get_data(as_text=True) == "None"
        await disconnect(store)

    run(scenario())


def test_quart_store_down_is_503_only_when_used() -> None:
    dead = AsyncRedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    app, _ = quart_app(dead)

    async def scenario() -> None:
        client = app.test_client()
        client.set_cookie("localhost", "session", new_id())
        assert (await client.get("/get/user")).status_code == 503
        assert (await client.get("/untouched")).status_code == 200
        await dead.aclose()

    run(scenario())


def test_quart_config_store(tmp_path: Path) -> None:
    app, ext = quart_app(SESSION_TYPE="sqlite", SESSION_SQLITE_PATH=str(tmp_path / "q.db"))
    assert isinstance(ext.store, AsyncOffloadStore) and isinstance(ext.store.store, SQLiteStore)

    async def scenario() -> None:
        client = app.test_client()
        await client.get("/set/a/1")
        assert await (await client.get("/get/a")).get_data(as_text=True) == "'1'"

    run(scenario())


def test_quart_one_extension_many_apps(tmp_path: Path) -> None:
    from quart import Quart

    from sharedsession.quart import Session as QuartExtension

    ext = QuartExtension()
    first, second = Quart("first"), Quart("second")
    for app in (first, second):
        app.config.update(SESSION_TYPE="memory")
        ext.init_app(app)

    @first.get("/login")
    async def login() -> str:
        from quart import session

        session.bind_user("ann")  # type: ignore[attr-defined]
        return "ok"

    async def scenario() -> tuple[int, int]:
        await first.test_client().get("/login")
        async with first.app_context():
            on_first = len(await ext.sessions_for_user("ann"))
        async with second.app_context():
            on_second = len(await ext.sessions_for_user("ann"))
        return on_first, on_second

    assert run(scenario()) == (1, 0)
