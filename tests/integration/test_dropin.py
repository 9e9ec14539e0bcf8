"""Drop-in fidelity through every adapter and store: the session is a dict."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from sharedsession.stores.base import AsyncSessionStore
from sharedsession.stores.memcached import AsyncMemcachedStore
from sharedsession.stores.memory import AsyncMemoryStore
from sharedsession.stores.redis import AsyncRedisStore
from sharedsession.stores.sqlalchemy import AsyncSQLAlchemyStore
from sharedsession.stores.sqlite import AsyncSQLiteStore
from tests.asgi_apps import fastapi_app
from tests.asgi_apps import quart_app
from tests.asgi_apps import starlette_app
from tests.flask_apps import make_app
from tests.integration.conftest import KINDS
from tests.integration.conftest import store_config
from tests.integration.test_asgi import serve
from tests.servers import MemcachedServer
from tests.servers import RedisServer


@pytest.mark.parametrize("kind", KINDS)
def test_flask_session_is_a_dict_for_json(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, _ = make_app(**store_config(kind, request, tmp_path))
    client = app.test_client()
    client.get("/set/a/1")
    client.get("/append/x")
    assert client.get("/json").get_json() == {"a": "1", "cart": ["x"]}
    # A fresh request: the JSON encoder itself makes the session load.
    assert client.get("/json-dumps").text == '{"a": "1", "cart": ["x"]}'


def async_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncSessionStore:
    if kind == "memory":
        return AsyncMemoryStore()
    if kind == "sqlite":
        return AsyncSQLiteStore(tmp_path / "asgi.db")
    if kind == "sqlalchemy":
        return AsyncSQLAlchemyStore(request.getfixturevalue("postgres_url"))
    if kind == "memcached":
        memcached: MemcachedServer = request.getfixturevalue("memcached_flushed")
        return AsyncMemcachedStore(memcached.address)
    server: RedisServer = request.getfixturevalue("redis_server")
    request.getfixturevalue("redis_client")
    return AsyncRedisStore(redis.asyncio.Redis(port=server.port))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_asgi_session_is_a_dict_for_json_responses(
    kind: str, framework: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = async_store(kind, request, tmp_path)
    app: Any = starlette_app(store) if framework == "starlette" else fastapi_app(store)
    with serve(app) as client:
        client.get("/add/x" if framework == "fastapi" else "/append/x")
        assert client.get("/json").json() == {"cart": ["x"]}


@pytest.mark.parametrize("kind", KINDS)
def test_quart_session_is_a_dict_for_json(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, ext = quart_app(**store_config(kind, request, tmp_path))

    async def scenario() -> str:
        client = app.test_client()
        await client.get("/set/a/1")
        response = await client.get("/json")
        text: str = await response.get_data(as_text=True)
        await ext.store.aclose()
        return text

    assert asyncio.run(scenario()) == '{"a": "1"}'
