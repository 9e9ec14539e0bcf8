"""Memcached-specific behaviour against a real memcached: the item layout, expiry
beyond 30 days, the item size limit, damaged items, outages, what it cannot do."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient

from sharedsession.errors import ConfigurationError
from sharedsession.errors import StoreError
from sharedsession.errors import StoreUnavailable
from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.serialization import loads
from sharedsession.stores.base import ApplyResult
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.memcached import MemcachedStore
from tests.flask_apps import cookie_of
from tests.flask_apps import make_app
from tests.flask_apps import visit
from tests.servers import MemcachedServer
from tests.servers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[MemcachedServer]:
    """A memcached of the test's own, which it may stop, freeze and restart."""
    memcached = MemcachedServer()
    try:
        yield memcached.start()
    finally:
        memcached.stop()


@contextlib.contextmanager
def connected(memcached: MemcachedServer) -> Iterator[Any]:
    client = memcached.client()
    try:
        yield client
    finally:
        client.close()


def item(memcached: MemcachedServer, cookie: str) -> Any:
    with connected(memcached) as client:
        raw = client.get(f"session:{store_key(cookie)}")
    return None if raw is None else json.loads(raw)


def remaining_ttl(memcached: MemcachedServer, cookie: str) -> int:
    """The item's TTL as memcached counts it (meta get, ``t`` flag)."""
    with connected(memcached) as client:
        reply = client.raw_command(f"mg session:{store_key(cookie)} t".encode(), b"\r\n")
    (flag,) = [f for f in reply.split() if f.startswith(b"t")]
    return int(flag[1:])


def test_one_readable_item_per_session_keyed_by_a_digest(
    memcached_flushed: MemcachedServer,
) -> None:
    app, _ = make_app(SESSION_TYPE="memcached", SESSION_MEMCACHED=memcached_flushed.address)
    client = app.test_client()
    client.get("/login/zoë ✓")
    cookie = cookie_of(client)
    document = item(memcached_flushed, cookie)
    assert loads(document["d"]["user"]) == "zoë ✓" and document["u"] == "zoë ✓"
    assert document["h"] == store_key(cookie) or document["h"] != cookie
    with connected(memcached_flushed) as raw:
        assert raw.get(f"session:{cookie}") is None  # the cookie's ID is never a key


@pytest.mark.parametrize("days", [10, 31, 400])
def test_lifetimes_beyond_30_days_are_kept(memcached_flushed: MemcachedServer, days: int) -> None:
    # Memcached reads a TTL over 30 days as a Unix time: sent as one, or the
    # session would expire at once.
    app, _ = make_app(
        SESSION_TYPE="memcached",
        SESSION_MEMCACHED=memcached_flushed.address,
        PERMANENT_SESSION_LIFETIME=days * 86400,
    )
    client = app.test_client()
    client.get("/set/user/ann")
    cookie = cookie_of(client)
    assert client.get("/get/user").text == "'ann'"
    assert abs(remaining_ttl(memcached_flushed, cookie) - days * 86400) <= 5


def test_a_session_over_the_item_limit_is_a_clear_error_and_writes_nothing(
    memcached_flushed: MemcachedServer,
) -> None:
    app, _ = make_app(SESSION_TYPE="memcached", SESSION_MEMCACHED=memcached_flushed.address)
    app.testing = True

    @app.get("/big")
    def big() -> str:
        from flask import session

        session["blob"] = "x" * 1_100_000
        return "ok"

    @app.get("/login-big/<user>")
    def login_big(user: str) -> str:
        from sharedsession.flask import session as shared

        shared.bind_user(user)  # a new ID: the session moves to a new item
        shared["blob"] = "x" * 1_100_000
        return "ok"

    client = app.test_client()
    client.get("/set/user/ann")
    with pytest.raises(StoreError, match="over its item size limit.*nothing was written"):
        client.get("/big")
    assert client.get("/get/user").text == "'ann'"
    assert client.get("/get/blob").text == "None"

    cookie = cookie_of(client)
    with pytest.raises(StoreError, match="item size limit"):
        client.get("/login-big/ann")
    # The old item was a tombstone for a moment; the failed move put it back.
    assert visit(app, cookie, "/get/user")[:2] == (200, "'ann'")


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"d": {}}',
        b'{"c": "yesterday", "a": null, "e": 1e12, "i": 0, "s": 0, "h": "h", "u": null,'
        b' "k": null, "x": 0, "d": {}}',
        b'{"c": 0, "a": null, "e": 1e12, "i": 0, "s": 0, "h": "h", "u": null, "k": null,'
        b' "x": 0, "d": {"user": 5}}',
        b"\xff\xfe",
    ],
)
def test_damaged_items_are_no_session_never_a_500(
    memcached_flushed: MemcachedServer, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app(SESSION_TYPE="memcached", SESSION_MEMCACHED=memcached_flushed.address)
    client = app.test_client()
    client.get("/set/user/ann")
    cookie = cookie_of(client)
    with connected(memcached_flushed) as writer:
        writer.set(f"session:{store_key(cookie)}", raw, 60)
    with caplog.at_level(logging.WARNING, logger="sharedsession"):
        assert visit(app, cookie, "/get/user")[:2] == (200, "None")
        status, _, set_cookie = visit(app, cookie, "/set/user/bob")
    assert status == 200 and set_cookie is not None and cookie not in set_cookie
    assert "unreadable" in caplog.text and cookie not in caplog.text


@pytest.mark.parametrize("form", ["address", "classic client"])
def test_a_stopped_memcached_answers_503_and_the_app_recovers(
    server: MemcachedServer, form: str
) -> None:
    # Flask-Session's classic config passes a client made without a timeout.
    setting: Any = server.address if form == "address" else Client(("127.0.0.1", server.port))
    app, _ = make_app(
        SESSION_TYPE="memcached", SESSION_MEMCACHED=setting, SESSION_MEMCACHED_TIMEOUT=1
    )
    client = app.test_client()
    client.get("/set/user/alice")
    cookie = cookie_of(client)
    server.stop()
    status, text, set_cookie = visit(app, cookie, "/get/user")
    assert status == 503 and "unavailable" in text and set_cookie is None
    assert visit(app, cookie, "/set/x/1")[0] == 503
    assert visit(app, cookie, "/untouched")[0] == 200
    server.start()
    # Memcached keeps nothing across a restart: the session is gone, and the
    # first request after it works (the dead pooled connection is replaced).
    assert visit(app, cookie, "/get/user")[:2] == (200, "None")
    fresh = app.test_client()
    assert fresh.get("/set/user/bob").status_code == 200
    assert fresh.get("/get/user").text == "'bob'"


@pytest.mark.parametrize("form", ["address", "classic client"])
def test_a_frozen_memcached_is_a_503_not_a_hang(server: MemcachedServer, form: str) -> None:
    setting: Any = server.address if form == "address" else Client(("127.0.0.1", server.port))
    app, _ = make_app(
        SESSION_TYPE="memcached", SESSION_MEMCACHED=setting, SESSION_MEMCACHED_TIMEOUT=0.5
    )
    client = app.test_client()
    client.get("/set/user/alice")
    cookie = cookie_of(client)
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    wait_until(lambda: stopped(server), "memcached to stop")
    try:
        status, text, _ = visit(app, cookie, "/get/user")
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert status == 503 and "unavailable" in text
    assert visit(app, cookie, "/get/user")[:2] == (200, "'alice'")


def stopped(server: MemcachedServer) -> bool:
    """Whether every thread of the server is stopped (a signal is delivered asynchronously)."""
    assert server.process is not None
    tasks = Path(f"/proc/{server.process.pid}/task")
    states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in tasks.iterdir()]
    return all(state in ("T", "t") for state in states)


def test_conflicts_beyond_the_retries_are_a_503_and_write_nothing(
    memcached_flushed: MemcachedServer,
) -> None:
    first = MemcachedStore(memcached_flushed.address)
    other = MemcachedStore(memcached_flushed.address)
    first.max_attempts = 1
    k, now = store_key(new_id()), time.time()
    first.apply(k, ChangeSet(now, now + 60, {"a": "1"}, created=now))
    assert first.load(k) is not None  # remembers what it read ...
    assert other.apply(k, ChangeSet(now, now + 60, {"b": "2"})) is ApplyResult.APPLIED
    with pytest.raises(StoreUnavailable, match="compare-and-swap"):  # ... which is stale now
        first.apply(k, ChangeSet(now, now + 60, {"c": "3"}))
    record = other.load(k)
    assert record is not None and dict(record.data) == {"a": "1", "b": "2"}
    first.max_attempts = 2
    assert first.load(k) is not None
    other.apply(k, ChangeSet(now, now + 60, {"d": "4"}))
    assert first.apply(k, ChangeSet(now, now + 60, {"c": "3"})) is ApplyResult.APPLIED
    record = other.load(k)
    assert record is not None and dict(record.data) == {"a": "1", "b": "2", "c": "3", "d": "4"}
    first.close()
    other.close()


def test_listing_every_session_is_refused_with_the_reason(
    memcached_flushed: MemcachedServer,
) -> None:
    app, ext = make_app(SESSION_TYPE="memcached", SESSION_MEMCACHED=memcached_flushed.address)
    for _ in range(2):
        app.test_client().get("/login/ann")
    with app.app_context(), pytest.raises(ConfigurationError, match="cannot list every session"):
        ext.admin.count()
    runner = app.test_cli_runner()
    count = runner.invoke(args=["sessions", "count"])
    assert count.exit_code == 2 and "memcached has no way to enumerate" in count.output
    listed = runner.invoke(args=["sessions", "list", "--user", "ann", "--json"])
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == 2
    ended = runner.invoke(args=["sessions", "revoke-user", "ann"])
    assert ended.exit_code == 0 and "ended 2" in ended.output
    with app.app_context():
        assert ext.sessions_for_user("ann") == [] and ext.admin.purge() == 0


def test_a_session_kept_alive_by_writes_stays_revocable(
    memcached_flushed: MemcachedServer,
) -> None:
    # The user index and the handle item are written with a TTL of twice the idle
    # lifetime and extended when a session outlives that: here after ~2 s.
    app, ext = make_app(
        SESSION_TYPE="memcached",
        SESSION_MEMCACHED=memcached_flushed.address,
        PERMANENT_SESSION_LIFETIME=1.0,
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    device = app.test_client()
    device.get("/login/hal")
    device.get("/login/hal")  # a second login: its handle now differs from its key
    for i in range(7):  # writes for well past twice the lifetime, never a refreshing read
        time.sleep(0.5)
        assert device.get(f"/set/n/{i}").status_code == 200
    with app.app_context():
        assert ext.revoke_user("hal") == 1
    assert device.get("/get/user").text == "None"


def test_user_ids_of_any_form_are_indexed(memcached_flushed: MemcachedServer) -> None:
    store = MemcachedStore(memcached_flushed.address)
    now = time.time()
    for user in ["ann smith", "zoë ✓", "x" * 400, "\n", "\ud800"]:
        k = store_key(new_id())
        store.apply(k, ChangeSet(now, now + 60, {"a": "1"}, created=now, bind=True, user_id=user))
        assert [info.handle for info in store.sessions_for_user(user)] == [k]
    store.close()


def test_any_text_survives_the_item(memcached_flushed: MemcachedServer) -> None:
    store = MemcachedStore(memcached_flushed.address)
    k, now = store_key(new_id()), time.time()
    data = {
        "\ud800 lone": '"\ud800"',
        "日本": '"語 ✓"',
        "": "1",
        "x" * 5000: '"' + "é" * 300_000 + '"',
    }
    assert store.apply(k, ChangeSet(now, now + 60, data, created=now)) is ApplyResult.APPLIED
    record = store.load(k)
    assert record is not None and dict(record.data) == data
    store.close()


class RevokedMidway(MemcachedStore):
    """Revokes the session right after its old ID died and before its new one is
    written: where a concurrent revoke from another process can land."""

    def _create(self, client: Any, key: str, doc: Any, changes: ChangeSet) -> ApplyResult:
        if changes.replaces is not None:
            self.revoke(doc.handle)
        return super()._create(client, key, doc, changes)


def test_a_revoke_during_a_new_id_ends_the_new_one(memcached_flushed: MemcachedServer) -> None:
    store = RevokedMidway(memcached_flushed.address)
    old, new, now = store_key(new_id()), store_key(new_id()), time.time()
    store.apply(old, ChangeSet(now, now + 60, {"a": "1"}, created=now, bind=True, user_id="ivy"))
    assert store.apply(new, ChangeSet(now, now + 60, replaces=old)) is ApplyResult.GONE
    assert store.load(old) is None and store.load(new) is None
    assert store.sessions_for_user("ivy") == []
    store.close()


def test_clients_that_hide_failures_are_refused(
    memcached_flushed: MemcachedServer, server: MemcachedServer
) -> None:
    """A HashClient answers with default values while a server is marked dead (a
    logout could be skipped in silence): refused, with what to use instead."""
    from pymemcache.client.retrying import RetryingClient

    ring = HashClient(
        [("127.0.0.1", memcached_flushed.port), ("127.0.0.1", server.port)], use_pooling=True
    )
    retrying = RetryingClient(Client(("127.0.0.1", memcached_flushed.port)))
    for client in (ring, retrying):
        with pytest.raises(ConfigurationError, match="Pass one server's 'host:port'"):
            make_app(SESSION_TYPE="memcached", SESSION_MEMCACHED=client)
    ring.close()
    retrying.close()


def test_flask_session_style_client_object_is_accepted(
    memcached_flushed: MemcachedServer,
) -> None:
    app: Flask
    app, _ = make_app(
        SESSION_TYPE="memcached", SESSION_MEMCACHED=Client(("127.0.0.1", memcached_flushed.port))
    )
    client = app.test_client()
    client.get("/set/user/dave")
    assert client.get("/get/user").text == "'dave'"
    assert item(memcached_flushed, cookie_of(client))["d"]["user"] == '"dave"'
