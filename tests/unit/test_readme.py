"""The README's code runs as shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask

from tests.flask_apps import make_app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS: list[str] = re.findall(r"```python\n(.*?)```", README, re.S)


def block(marker: str) -> str:
    (found,) = [code for code in BLOCKS if marker in code]
    return found


def test_quick_start() -> None:
    code = block("from sharedsession.flask import Session")
    assert len(code.splitlines()) <= 20
    namespace: dict[str, Any] = {"__name__": "readme_quick_start"}
    exec(code.replace('"sqlite"', '"memory"'), namespace)
    app: Flask = namespace["app"]
    client = app.test_client()
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
    app, _ = make_app(store=store)
    client = app.test_client()
    client.get("/append/apple")
    assert client.get("/append/pear").text == "['apple', 'pear']"
    assert len(store.rows) == 1
    client.get("/clear")
    assert store.rows == {}


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
