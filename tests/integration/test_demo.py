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
