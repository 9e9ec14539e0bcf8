"""`make demo` end to end: two gunicorn instances behind a real nginx share one session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import RedisServer
from tests.servers import free_port
from tests.servers import require_binary

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    require_binary("nginx")
    command = [sys.executable, str(DEMO), "--check", "--port", str(free_port()), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_demo_walkthrough(store: str, request: pytest.FixtureRequest) -> None:
    args: list[str] = []
    if store == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        request.getfixturevalue("redis_client")
        args = ["--redis", server.url]
    result = run_demo(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    served = [line.split()[1] for line in result.stdout.splitlines() if line[:3] == "  1"]
    assert served and served[0] in {"A", "B"}
    assert "both instances served the session: yes" in result.stdout
    assert "cart survived every switch:        yes" in result.stdout
    assert "logout ended it on both instances:  yes" in result.stdout


def test_demo_starts_its_own_redis_and_refuses_an_unreachable_one() -> None:
    result = run_demo("--redis")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sharing sessions in Redis at redis://127.0.0.1:" in result.stdout
    down = run_demo("--redis", f"redis://user:secret@127.0.0.1:{free_port()}/0")
    assert down.returncode == 1
    assert down.stderr.strip().startswith("cannot reach Redis at redis://user:***@")
    assert "Traceback" not in down.stderr and "secret" not in down.stderr


def test_every_page_says_who_rendered_it_and_who_made_the_last_change(tmp_path: Path) -> None:
    import os

    from examples.shop.app import create_app

    os.environ["SHOP_SQLITE_PATH"] = str(tmp_path / "shop.sqlite3")
    try:
        a, b = create_app("A"), create_app("B")
    finally:
        del os.environ["SHOP_SQLITE_PATH"]
    a.testing = b.testing = True
    browser = a.test_client()
    browser.post("/login", data={"user": "ann"})
    browser.post("/add/apple")
    other = b.test_client()
    other.set_cookie("session", browser.get_cookie("session").value)  # type: ignore[union-attr]
    page = " ".join(other.get("/").text.split())
    assert "rendered by instance <b>B</b>" in page
    assert "The last change (added Apple) was made by instance <b>A</b>" in page
    assert 'name="viewport"' in page and 'rel="icon" href="data:' in page
    assert "Sessions live in the SQLite file" in page and "Apple" in page
    other.post("/logout")
    assert "You are logged out (by instance B)" in other.get("/").text
    assert "You are logged out" not in other.get("/").text  # shown once
