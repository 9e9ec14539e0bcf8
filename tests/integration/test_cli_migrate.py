"""`sharedsession migrate` and `flask sessions migrate`: bulk copy of Flask-Session's sessions."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import flask_session
import pytest
import redis
from click.testing import CliRunner
from flask import Flask
from flask import session

from sharedsession.cli import main
from sharedsession.flask import Session
from tests.servers import RedisServer
from tests.servers import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:The 'use_signer' option:DeprecationWarning"),
]
PREFIX = "app:"


@pytest.fixture
def client(redis_server: RedisServer, redis_client: Any) -> Iterator[redis.Redis]:
    made = redis_server.client()
    yield made
    made.close()


def seed(client: redis.Redis, users: int) -> list[str]:
    """Sessions written by the real Flask-Session 0.8; returns their cookies."""
    app = Flask("old")
    app.config.update(SECRET_KEY="k", SESSION_TYPE="redis", SESSION_REDIS=client)
    app.config["SESSION_KEY_PREFIX"] = PREFIX

    @app.get("/login/<user>")
    def login(user: str) -> str:
        session["user"] = user
        return "ok"

    flask_session.Session(app)
    cookies = []
    for i in range(users):
        browser = app.test_client()
        browser.get(f"/login/u{i}")
        found = browser.get_cookie("session")
        assert found is not None
        cookies.append(found.value)
    client.set(PREFIX + "s" * 43, pickle.dumps({"user": "old"}), ex=600)  # pre-0.7 data
    client.set(PREFIX + "short", b"\x81\xa4user\xa1x", ex=600)  # a 16-byte-ID era session
    return cookies


def new_app(client: redis.Redis, **extra: Any) -> Flask:
    app = Flask("new")
    app.config.update(
        SECRET_KEY="k",
        SESSION_TYPE="redis",
        SESSION_REDIS=client,
        SESSION_KEY_PREFIX=PREFIX,
        SESSION_MIGRATE_FROM=None,  # only the command copies, for this test
        **extra,
    )
    Session(app)

    @app.get("/user")
    def user() -> str:
        return repr(session.get("user"))

    return app


def served(app: Flask, cookie: str) -> str:
    browser = app.test_client()
    browser.set_cookie("session", cookie)
    return browser.get("/user").text


def our_keys(client: redis.Redis) -> int:
    return len(list(client.scan_iter(f"{PREFIX}{{*")))


def test_standalone_command_dry_run_counts_idempotence_and_delete(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    cookies = seed(client, 5)
    runner = CliRunner()
    args = ["--store", redis_server.url, "--prefix", PREFIX, "migrate", "--from", "flask-session"]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would migrate 5, already present 0, skipped 2, failed 0" in dry.output
    assert "1 skipped: pickled" in dry.output and "not a session ID of 256 bits" in dry.output
    assert our_keys(client) == 0  # a dry run writes nothing
    app = new_app(client)
    assert served(app, cookies[0]) == "None"  # not adopted: this app leaves it to the command
    interrupted = interrupt_after(2, runner, args)
    assert interrupted.exit_code != 0 and our_keys(client) == 2
    result = runner.invoke(main, args)  # run again: it resumes where it stopped
    assert result.exit_code == 0, result.output
    assert "migrated 3, already present 2, skipped 2" in result.output
    assert [served(app, cookie) for cookie in cookies] == [f"'u{i}'" for i in range(5)]
    again = runner.invoke(main, [*args, "--delete-source"])  # idempotent; resumes anywhere
    assert "migrated 0, already present 5, skipped 2" in again.output
    assert client.exists(*(PREFIX + c for c in cookies)) == 0
    assert all(c not in result.output + again.output for c in cookies)  # never prints IDs
    allowed = runner.invoke(main, [*args, "--allow-pickle"])
    assert "migrated 1" in allowed.output


def interrupt_after(copies: int, runner: CliRunner, args: list[str]) -> Any:
    """Run the command but stop it (as Ctrl-C would) after ``copies`` sessions were copied."""
    from sharedsession import _flows

    original = _flows.migrate_one
    done: list[int] = []

    def counting(*a: Any, **k: Any) -> Any:
        if len(done) == copies:
            raise KeyboardInterrupt
        outcome = yield from original(*a, **k)
        if outcome[0] == "migrated":
            done.append(1)
        return outcome

    _flows.migrate_one = counting
    try:
        return runner.invoke(main, args)
    finally:
        _flows.migrate_one = original


def test_flask_command_uses_the_apps_store(client: redis.Redis) -> None:
    cookies = seed(client, 3)
    app = new_app(client)
    result = app.test_cli_runner().invoke(args=["sessions", "migrate", "--from", "flask-session"])
    assert result.exit_code == 0, result.output
    assert "migrated 3" in result.output
    assert served(app, cookies[2]) == "'u2'"


def test_exit_codes(client: redis.Redis, redis_server: RedisServer) -> None:
    runner = CliRunner()
    base = ["--store", redis_server.url, "--prefix", "empty:", "migrate"]
    assert runner.invoke(main, [*base, "--from", "flask-session"]).exit_code == 1  # none found
    assert runner.invoke(main, base).exit_code == 2  # usage: --from is required
    down = f"redis://127.0.0.1:{free_port()}/0"
    result = runner.invoke(main, ["--store", down, "migrate", "--from", "flask-session"])
    assert result.exit_code == 1 and "unreachable" in result.output
    assert "Traceback" not in result.output


def test_keys_of_other_types_are_counted_not_fatal(
    client: redis.Redis, redis_server: RedisServer
) -> None:
    cookies = seed(client, 1)
    client.rpush(PREFIX + "w" * 43, "not a session")  # another app's list, named like one
    args = ["--store", redis_server.url, "--prefix", PREFIX, "migrate", "--from", "flask-session"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "migrated 1" in result.output and "failed 1" in result.output
    assert "1 failed: not a Flask-Session value" in result.output
    assert "w" * 43 not in result.output and cookies[0] not in result.output
