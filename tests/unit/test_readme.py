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
    code = block("def login(name: str)")
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


@pytest.mark.parametrize("marker", ["def login(name: str)", "class DictStore"])
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

    async def scenario() -> str:
        client = app.test_client()
        async with client.session_transaction() as sess:
            sess.bind_user("ann", regenerate=False)
            sess["cart"] = ["apple"]
        response = await client.post("/logout-everywhere")
        text: str = await response.get_data(as_text=True)
        return text

    assert asyncio.run(scenario()) == "1"
