"""Administration on every store: handles that survive new IDs, details, counts,
caps, revocation that reports, the user index; through Flask, Quart and ASGI."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sharedsession.asgi import admin as asgi_admin
from sharedsession.cli import main
from sharedsession.session import Session
from sharedsession.stores.memory import AsyncMemoryStore
from tests.asgi_apps import quart_app
from tests.asgi_apps import starlette_app
from tests.flask_apps import make_app
from tests.integration.conftest import KINDS
from tests.integration.conftest import LISTING_KINDS
from tests.integration.conftest import store_config
from tests.servers import ClusterSetup


def logged_in(app: Flask, user: str) -> Any:
    client = app.test_client()
    client.get(f"/login/{user}")
    return client


@pytest.mark.parametrize("kind", KINDS)
def test_a_handle_keeps_naming_its_device_across_renewal(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, ext = make_app(**store_config(kind, request, tmp_path), SESSION_RENEWAL_INTERVAL=0.3)
    phone = logged_in(app, "ann")
    with app.app_context():
        (listed,) = ext.sessions_for_user("ann")
    time.sleep(0.35)
    before = phone.get_cookie("session")
    assert phone.get("/get/user").text == "'ann'"  # a request renews the ID ...
    after = phone.get_cookie("session")
    assert before is not None and after is not None and before.value != after.value
    with app.app_context():
        assert [i.handle for i in ext.sessions_for_user("ann")] == [listed.handle]
        assert ext.revoke(listed.handle) is True  # ... and the handle still ends it
        assert ext.revoke(listed.handle) is False  # nothing left to end
    assert phone.get("/get/user").text == "None"


@pytest.mark.parametrize("kind", LISTING_KINDS)  # counts and stats list every session
def test_details_counts_stats_and_caps(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, ext = make_app(**store_config(kind, request, tmp_path), SESSION_MAX_PER_USER=2)
    visitor = app.test_client()
    visitor.get("/set/cart/apple")
    laptop = logged_in(app, "bo")
    logged_in(app, "bo")
    logged_in(app, "bo")  # a third device: the oldest is ended
    assert laptop.get("/get/user").text == "None"
    with app.app_context():
        admin = ext.admin
        handles = [i.handle for i in admin.sessions_for_user("bo")]
        assert len(handles) == 2
        assert admin.count() == 3
        stats = admin.stats()
        assert (stats.count, stats.bound, stats.by_age) == (3, 2, {"<1h": 3})
        assert stats.bytes > 0
        details = admin.details(handles[0])
        assert details is not None and details.user_id == "bo" and details.data == {"user": "bo"}
        assert admin.details("no-such-handle") is None
        assert admin.purge() == 0 and admin.count() == 3  # nothing expired: nothing purged


def test_quart_and_asgi_reach_the_same_administration() -> None:
    app, ext = quart_app()

    async def quart_side() -> int:
        client, other = app.test_client(), app.test_client()
        await client.get("/login/cy")
        await other.get("/login/cy")
        async with app.app_context():
            assert await ext.admin.count() == 2
            return len(await ext.admin.sessions_for_user("cy"))

    assert asyncio.run(quart_side()) == 2

    async def others(request: Request) -> PlainTextResponse:
        session: Session = request.session  # type: ignore[assignment]
        user = session.user_id
        assert user is not None
        return PlainTextResponse(str(await asgi_admin(request).revoke_user(user, keep=session)))

    starlette = starlette_app(AsyncMemoryStore(), debug=True)
    starlette.router.routes.append(Route("/others", others))
    with TestClient(starlette) as laptop, TestClient(starlette) as phone:
        laptop.get("/login/dee")
        phone.get("/login/dee")
        assert laptop.get("/others").text == "1"
        assert phone.get("/get/user").text == "None"
        assert laptop.get("/get/user").text == "'dee'"


def cli(url: str, *args: str, prefix: str = "session:") -> Any:
    return CliRunner().invoke(main, ["--store", url, "--prefix", prefix, *args])


def cli_json(url: str, *args: str) -> Any:
    result = cli(url, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def store_url(config: dict[str, Any]) -> str:
    """The ``--store`` URL of a store config."""
    if config["SESSION_TYPE"] == "sqlite":
        return f"sqlite:///{config['SESSION_SQLITE_PATH']}"
    if config["SESSION_TYPE"] == "memcached":
        return f"memcached://{config['SESSION_MEMCACHED']}"
    url: str = config.get("SESSION_REDIS") or config["SESSION_SQLALCHEMY"]
    return url


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("redis", marks=pytest.mark.integration),
        pytest.param("postgres", marks=pytest.mark.integration),
    ],
)
def test_every_command(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    config = store_config(kind, request, tmp_path)
    app, _ = make_app(**config)
    url = store_url(config)
    cookies = []
    for _ in range(3):
        client = logged_in(app, "eve")
        cookies.append(client.get_cookie("session").value)
    app.test_client().get("/set/cart/apple")
    listed = cli(url, "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 4 and {"handle", "user_id", "created", "last_seen"} <= set(rows[0])
    table = cli(url, "list", "--user", "eve", "--limit", "2")
    assert table.exit_code == 0 and "HANDLE" in table.output and len(table.output.splitlines()) == 3
    assert cli(url, "count").output.strip() == "4"
    stats = cli_json(url, "stats")
    assert stats["count"] == 4 and stats["bound"] == 3
    eve = [r["handle"] for r in rows if r["user_id"] == "eve"]
    shown = cli_json(url, "show", eve[0])
    assert shown["data"] == {"user": "eve"} and shown["user_id"] == "eve"
    assert cli(url, "revoke", eve[0]).output.strip() == "ended 1 session"
    assert cli(url, "revoke", eve[0]).exit_code == 1  # nothing matched
    kept = cli(url, "revoke-user", "eve", "--keep", eve[1])
    assert kept.output.strip() == "ended 1 sessions"
    assert cli(url, "revoke-user", "eve", "--keep", eve[1]).exit_code == 1
    assert cli(url, "purge").exit_code == 0
    assert cli(url, "show", "nope").exit_code == 1
    # A handle may start with "-" (URL-safe base64): taken as the handle, not an option.
    assert cli(url, "show", "-Anope", "--json").exit_code == 1
    assert "No such option" not in cli(url, "revoke", "-Anope").output
    assert cli(url, "frobnicate").exit_code == 2
    everything = "".join(cli(url, c).output for c in ("list", "count", "stats"))
    assert not any(cookie in everything + listed.output for cookie in cookies)  # no IDs


@pytest.mark.integration
def test_the_commands_memcached_can_run(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    config = store_config("memcached", request, tmp_path)
    app, _ = make_app(**config)
    url = store_url(config)
    phone, laptop = logged_in(app, "ida"), logged_in(app, "ida")
    listed = cli(url, "list", "--user", "ida", "--json").stdout
    rows = [json.loads(line) for line in listed.splitlines()]
    assert len(rows) == 2 and {row["user_id"] for row in rows} == {"ida"}
    assert cli_json(url, "show", rows[0]["handle"])["data"] == {"user": "ida"}
    # memcached cannot enumerate its keys: a usage error that says what works instead.
    counted = cli(url, "count")
    assert counted.exit_code == 2 and "sessions_for_user" in counted.output
    assert cli(url, "revoke-user", "ida").output.strip() == "ended 2 sessions"
    assert phone.get("/get/user").text == "None" and laptop.get("/get/user").text == "None"
    assert CliRunner().invoke(main, ["--store", "memcached://", "count"]).exit_code == 2


@pytest.mark.integration
def test_listing_and_counting_on_a_cluster(cluster: ClusterSetup, cluster_url: str) -> None:
    app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=cluster_url)
    for i in range(12):
        logged_in(app, f"u{i}")
    assert cli(cluster_url, "count").output.strip() == "12"
    assert len(cli(cluster_url, "list", "--json").output.splitlines()) == 12


@pytest.mark.integration
def test_unreachable_store_is_a_message_not_a_traceback() -> None:
    from tests.servers import free_port

    result = cli(f"redis://127.0.0.1:{free_port()}/0", "count")
    assert result.exit_code == 1 and "unreachable" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("kind", KINDS)
def test_the_cap_ends_the_oldest_live_logins_never_the_current(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, ext = make_app(**store_config(kind, request, tmp_path), SESSION_MAX_PER_USER=2)
    early = app.test_client()
    early.get("/set/cart/apple")  # an old anonymous session ...
    time.sleep(0.01)
    a, b, c = logged_in(app, "fay"), logged_in(app, "fay"), logged_in(app, "fay")
    assert a.get("/get/user").text == "None"  # the cap: two live sessions
    c.get("/logout")  # a logged-out session does not count
    d = logged_in(app, "fay")
    assert [x.get("/get/user").text for x in (b, d)] == ["'fay'", "'fay'"]
    early.get("/login/fay")  # ... logging in now is the newest login, not the oldest
    assert early.get("/get/user").text == "'fay'" and b.get("/get/user").text == "None"
    with app.app_context():
        assert len(ext.sessions_for_user("fay")) == 2


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_revoking_an_expired_session_reports_nothing_ended(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, ext = make_app(**store_config(kind, request, tmp_path), PERMANENT_SESSION_LIFETIME=0.3)
    logged_in(app, "gus")
    with app.app_context():
        (info,) = ext.sessions_for_user("gus")
        time.sleep(0.4)
        assert ext.revoke(info.handle) is False


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_purge_removes_expired_sessions(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, ext = make_app(**store_config(kind, request, tmp_path), PERMANENT_SESSION_LIFETIME=0.3)
    logged_in(app, "ida")
    logged_in(app, "ida")
    time.sleep(0.4)
    kept = logged_in(app, "jo")
    with app.app_context():
        assert ext.admin.purge() == 2
        assert ext.admin.purge() == 0
        assert [i.user_id for i in ext.sessions_for_user("jo")] == ["jo"]
    assert kept.get("/get/user").text == "'jo'"


@pytest.mark.integration
def test_a_session_kept_alive_by_writes_stays_revocable(
    redis_server: Any, redis_client: Any
) -> None:
    config = {
        "SESSION_TYPE": "redis",
        "SESSION_REDIS": redis_server.url,
        "PERMANENT_SESSION_LIFETIME": 1.5,
        "SESSION_REFRESH_EACH_REQUEST": False,
    }
    app, ext = make_app(**config)
    device = logged_in(app, "hal")
    device.get("/login/hal")  # a second login: its handle now differs from its key
    for i in range(5):  # writes for longer than the lifetime, never a refreshing read
        time.sleep(0.5)
        assert device.get(f"/set/n/{i}").status_code == 200
    with app.app_context():
        assert ext.revoke_user("hal") == 1
    assert device.get("/get/user").text == "None"


@pytest.mark.integration
def test_listing_during_a_new_id_keeps_the_session_indexed(
    redis_server: Any, redis_client: Any
) -> None:
    import threading

    from sharedsession.ids import new_id
    from sharedsession.ids import store_key
    from sharedsession.stores import _redis_layout as layout
    from sharedsession.stores.base import ChangeSet
    from sharedsession.stores.redis import RedisStore

    store = RedisStore(redis_server.client())
    old, new = store_key(new_id()), store_key(new_id())
    now = time.time()
    store.apply(old, ChangeSet(now, now + 60, {"a": "1"}, created=now, bind=True, user_id="ivy"))
    flow = layout.apply(store.prefix, new, ChangeSet(now, now + 60, replaces=old, handle=old))
    reply = store._do(flow.send(None))  # the old hash is taken; the new one is not there yet
    listed: list[Any] = []
    lister = threading.Thread(target=lambda: listed.extend(store.sessions_for_user("ivy")))
    lister.start()
    time.sleep(0.02)
    try:
        while True:
            reply = store._do(flow.send(reply))
    except StopIteration:
        pass
    lister.join()
    assert [info.handle for info in listed] == [old]
    assert redis_client.zrange("session:user:ivy", 0, -1) == [old.encode()]


def test_command_line_edges(tmp_path: Path) -> None:
    missing = cli(f"sqlite:///{tmp_path}/nothing-here.sqlite3", "count")
    assert missing.exit_code == 1 and "no SQLite session file" in missing.output
    assert not (tmp_path / "nothing-here.sqlite3").exists()
    app, _ = make_app(SESSION_TYPE="sqlite", SESSION_SQLITE_PATH=str(tmp_path / "s.db"))
    logged_in(app, "jo")
    url = f"sqlite:///{tmp_path}/s.db"
    assert cli(url, "revoke-user", "").exit_code == 2
    assert cli(url, "list", "--user", "").exit_code == 2
    odd = cli(url, "revoke", "}x")
    assert odd.exit_code == 1 and "Traceback" not in odd.output


def test_standalone_command_line_with_encryption_keys(tmp_path: Path) -> None:
    from sharedsession.crypto import generate_key

    key = generate_key()
    app, _ = make_app(
        SESSION_TYPE="sqlite",
        SESSION_SQLITE_PATH=str(tmp_path / "s.db"),
        SESSION_ENCRYPTION_KEYS=[key],
    )
    device = logged_in(app, "kim")
    url = f"sqlite:///{tmp_path}/s.db"
    assert cli(url, "revoke-user", "kim").exit_code == 1  # without the key: nothing matches
    ended = CliRunner().invoke(
        main, ["--store", url, "--encryption-key", key, "revoke-user", "kim"]
    )
    assert ended.exit_code == 0 and "ended 1" in ended.output
    assert device.get("/get/user").text == "None"
