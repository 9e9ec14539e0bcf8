"""The README's code runs as shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from sharedsession.stores import SessionStore
from tests.flask_apps import make_app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS: list[str] = re.findall(r"```python\n(.*?)```", README, re.S)


def block(marker: str) -> str:
    (found,) = [code for code in BLOCKS if marker in code]
    return found


def test_quick_start() -> None:
    code = block("from sharedsession.flask import Session, session")
    assert len(code.splitlines()) <= 22
    namespace: dict[str, Any] = {"__name__": "readme_quick_start"}
    memory = 'app.config["SESSION_TYPE"] = "memory"\nsessions = Session(app)'
    exec(code.replace("sessions = Session(app)", memory, 1), namespace)
    app: Flask = namespace["app"]
    assert type(app.session_interface.store).__name__ == "MemoryStore"  # type: ignore[attr-defined]
    client = app.test_client()
    visitor = app.test_client()  # before any login
    assert visitor.post("/cart/fig").get_json() == {"cart": ["fig"], "devices": 0}
    assert client.post("/login/alice").text == "hello"
    client.post("/cart/apple")
    body = client.post("/cart/pear").get_json()
    assert body == {"cart": ["apple", "pear"], "devices": 1}
    assert client.post("/logout").text == "bye"
    assert client.get_cookie("session") is None


def test_writing_a_store_example() -> None:
    namespace: dict[str, Any] = {}
    exec(block("class DictStore"), namespace)
    store = namespace["DictStore"]()
    assert isinstance(namespace["DictStore"](), SessionStore)
    app, _ = make_app(store=store)
    client = app.test_client()
    client.get("/append/apple")
    assert client.get("/append/pear").text == "['apple', 'pear']"
    assert len(store.rows) == 1
    client.get("/clear")
    assert store.rows == {}
    with store:
        client.get("/append/fig")
    assert store.rows == {}  # closed


@pytest.mark.parametrize(
    "marker", ["from sharedsession.flask import Session, session", "class DictStore"]
)
def test_readme_code_passes_mypy_strict(marker: str, tmp_path: Path) -> None:
    from mypy import api

    source = tmp_path / "readme_block.py"
    source.write_text(block(marker))
    cache = Path(__file__).resolve().parents[2] / ".mypy_cache"
    out, err, status = api.run(["--strict", "--cache-dir", str(cache), str(source)])
    assert status == 0, out + err


def test_quart_quick_start() -> None:
    import asyncio

    namespace: dict[str, Any] = {"__name__": "readme_quart"}
    code = block("from sharedsession.quart import Session")
    exec(code.replace('SESSION_TYPE="redis"', 'SESSION_TYPE="memory"'), namespace)
    app = namespace["app"]

    async def scenario() -> list[str]:
        visitor, laptop, phone = app.test_client(), app.test_client(), app.test_client()
        first = await (await visitor.post("/logout-everywhere")).get_data(as_text=True)
        await laptop.post("/login/ann")
        await phone.post("/login/ann")
        ended = await (await laptop.post("/logout-everywhere")).get_data(as_text=True)
        return [first, ended]

    assert asyncio.run(scenario()) == ["0", "2"]


def memory_store(code: str) -> str:
    """The README's ASGI code with an in-memory store instead of a Redis server."""
    return code.replace(
        'AsyncRedisStore.from_url("redis://127.0.0.1:6379/0")', "AsyncMemoryStore()"
    ).replace(
        "from sharedsession.stores.redis import AsyncRedisStore",
        "from sharedsession.stores.memory import AsyncMemoryStore",
    )


def test_starlette_quick_start() -> None:
    from starlette.testclient import TestClient

    namespace: dict[str, Any] = {"__name__": "readme_starlette"}
    exec(memory_store(block("from starlette.applications import Starlette")), namespace)
    with TestClient(namespace["app"]) as visitor, TestClient(namespace["app"]) as phone:
        assert visitor.post("/cart/fig").json() == {"cart": ["fig"]}  # before login
        assert visitor.post("/logout-others").text == "0"
        visitor.post("/login/ann")
        phone.post("/login/ann")
        assert visitor.post("/cart/pear").json() == {"cart": ["fig", "pear"]}
        assert visitor.post("/logout-others").text == "1"


def test_fastapi_quick_start() -> None:
    from starlette.testclient import TestClient

    namespace: dict[str, Any] = {"__name__": "readme_fastapi"}
    exec(memory_store(block("from fastapi import FastAPI")), namespace)
    with TestClient(namespace["app"]) as client:
        assert client.post("/cart/apple").json() == ["apple"]
        assert client.post("/cart/pear").json() == ["apple", "pear"]
        assert client.post("/logout").json() == "bye"
        assert client.post("/cart/fig").json() == ["fig"]
