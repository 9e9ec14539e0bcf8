"""Lifecycle and security through HTTP, on every store: memory, SQLite, Redis and memcached."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask import session
from flask.testing import FlaskClient
from sqlalchemy import update

from sharedsession.crypto import generate_key
from sharedsession.errors import ConfigurationError
from sharedsession.flask import Session
from sharedsession.ids import store_key
from sharedsession.stores.base import writes_keys
from sharedsession.stores.memcached import MemcachedStore
from sharedsession.stores.memory import MemoryStore
from sharedsession.stores.sqlalchemy import SQLAlchemyStore
from sharedsession.stores.sqlite import SQLiteStore
from tests.flask_apps import make_app
from tests.integration.conftest import store_config

STORES = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.integration),
    pytest.param("sqlalchemy", marks=pytest.mark.integration),
    pytest.param("memcached", marks=pytest.mark.integration),
]


@pytest.fixture(params=STORES)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return store_config(request.param, request, tmp_path)


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    made, ext = make_app(**config)
    yield made
    assert ext.store is not None
    ext.store.close()


def cookie_of(client: FlaskClient) -> str | None:
    found = client.get_cookie("session")
    return None if found is None else found.value


def as_cookie(app: Flask, value: str | None) -> FlaskClient:
    client = app.test_client()
    if value is not None:
        client.set_cookie("session", value)
    return client


def store_of(app: Flask) -> Any:
    """The app's store (every built-in one also lists a user's sessions)."""
    return app.session_interface.store  # type: ignore[attr-defined]


def test_regenerate_keeps_data_and_kills_the_old_id(app: Flask) -> None:
    client = app.test_client()
    client.get("/set/cart/apple")
    old = cookie_of(client)
    client.get("/regenerate")
    new = cookie_of(client)
    assert new not in (None, old)
    assert client.get("/get/cart").text == "'apple'"
    assert as_cookie(app, old).get("/get/cart").text == "None"
    assert store_of(app).load(store_key(old or "")) is None


def test_regenerate_on_an_empty_session(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/regenerate")
    assert response.status_code == 200 and cookie_of(client) is None


def test_destroy_deletes_data_and_expires_cookie(app: Flask) -> None:
    client = app.test_client()
    client.get("/login/alice")
    old = cookie_of(client)
    response = client.get("/logout")
    assert "session=;" in response.headers["Set-Cookie"] and cookie_of(client) is None
    assert store_of(app).load(store_key(old or "")) is None
    assert as_cookie(app, old).get("/get/user").text == "None"
    assert store_of(app).sessions_for_user("alice") == []


def test_fixation_a_planted_id_is_useless_after_login(app: Flask) -> None:
    attacker = app.test_client()
    attacker.get("/set/cart/bait")  # a real, valid session ID
    planted = cookie_of(attacker)
    victim = as_cookie(app, planted)
    victim.get("/login/victim")
    assert cookie_of(victim) != planted
    assert victim.get("/get/user").text == "'victim'"
    assert victim.get("/get/cart").text == "'bait'"  # the victim's data follows them
    assert attacker.get("/get/user").text == "None"  # the attacker's ID is dead


def test_log_out_other_devices(app: Flask) -> None:
    devices = [app.test_client() for _ in range(3)]
    for device in devices:
        device.get("/login/bob")
    listed = devices[0].get("/devices").get_json()
    assert len(listed) == 3
    assert all(str(cookie_of(d)) not in str(listed) for d in devices)  # handles are not IDs
    assert devices[0].get("/logout-others").text == "2"
    assert devices[0].get("/get/user").text == "'bob'"
    assert devices[1].get("/get/user").text == "None"
    assert devices[2].get("/get/user").text == "None"
    assert len(devices[0].get("/devices").get_json()) == 1


def test_revoke_one_device_by_handle(config: dict[str, Any]) -> None:
    app, ext = make_app(**config)
    phone, laptop = app.test_client(), app.test_client()
    phone.get("/login/carol")
    laptop.get("/login/carol")
    handles = [info.handle for info in ext.sessions_for_user("carol")]
    assert sorted(handles) == sorted(store_key(cookie_of(c) or "") for c in (phone, laptop))
    ext.revoke(store_key(cookie_of(phone) or ""))
    assert phone.get("/get/user").text == "None"
    assert laptop.get("/get/user").text == "'carol'"


def test_client_info_is_listed_when_enabled(config: dict[str, Any]) -> None:
    app, ext = make_app(SESSION_TRACK_CLIENT=True, **config)
    client = app.test_client()
    client.get("/login/dave", headers={"User-Agent": "TestBrowser/1.0"})
    (info,) = ext.sessions_for_user("dave")
    assert info.client == {"agent": "TestBrowser/1.0", "ip": "127.0.0.1"}
    assert info.handle == store_key(cookie_of(client) or "")
    assert time.time() - 60 < info.created <= info.last_seen <= time.time()


@pytest.mark.parametrize("reads", [True, False], ids=["reads", "only-sets"])
def test_revoked_session_stays_dead_with_a_request_in_flight(app: Flask, reads: bool) -> None:
    started, release = threading.Event(), threading.Event()

    @app.get("/slow")
    def slow() -> str:
        if reads:
            session.get("user")  # most handlers look at the session first
        session["late"] = "write"
        started.set()
        release.wait(10)
        return "ok"

    victim, admin = app.test_client(), app.test_client()
    victim.get("/login/erin")
    ended = cookie_of(victim)
    thread = threading.Thread(target=victim.get, args=("/slow",))
    thread.start()
    assert started.wait(10)
    for info in store_of(app).sessions_for_user("erin"):
        store_of(app).delete(info.handle)
    release.set()
    thread.join()
    assert admin.get("/untouched").status_code == 200
    assert store_of(app).sessions_for_user("erin") == []
    assert victim.get("/get/user").text == "None"
    assert as_cookie(app, ended).get("/get/late").text == "None"
    # A handler that only set keys never loaded the session: its keys are
    # written without a load where the store can, and finding the session
    # ended, they start a new unbound session with a new ID, as for a
    # request that came just after the revocation.
    unread = not reads and writes_keys(store_of(app))
    assert victim.get("/get/late").text == ("'write'" if unread else "None")
    assert cookie_of(victim) != ended


def test_renewal_rotates_the_id_of_a_live_session(config: dict[str, Any]) -> None:
    app, _ = make_app(SESSION_RENEWAL_INTERVAL=0.5, SESSION_RENEWAL_GRACE=0.5, **config)
    client = app.test_client()
    client.get("/login/frank")
    first = cookie_of(client)
    client.get("/get/user")
    assert cookie_of(client) == first
    time.sleep(0.6)
    assert client.get("/get/user").text == "'frank'"
    renewed = cookie_of(client)
    assert renewed not in (None, first)
    # Within the grace window the old ID leads to the renewed session, and the
    # response hands out the renewed ID (a request that raced the renewal).
    late = as_cookie(app, first)
    assert late.get("/get/user").text == "'frank'" and cookie_of(late) == renewed
    time.sleep(0.6)
    assert as_cookie(app, first).get("/get/user").text == "None"
    assert client.get("/get/user").text == "'frank'"


def test_old_key_cookies_work_and_are_re_signed(config: dict[str, Any]) -> None:
    old_app, old_ext = make_app(SESSION_USE_SIGNER=True, SECRET_KEY="old", **config)
    client = old_app.test_client()
    client.get("/set/a/1")
    old_value = cookie_of(client)
    new_app, _ = make_app(
        store=old_ext.store,
        SESSION_USE_SIGNER=True,
        SECRET_KEY="new",
        SECRET_KEY_FALLBACKS=["old"],
        SESSION_REFRESH_EACH_REQUEST=False,  # so only the re-signing sends a cookie
        **config,
    )
    client = as_cookie(new_app, old_value)
    assert client.get("/get/a").text == "'1'"
    new_value = cookie_of(client)
    assert new_value is not None and new_value != old_value
    assert new_value.split(".")[0] == (old_value or "").split(".")[0]  # same ID
    response = as_cookie(new_app, new_value).get("/get/a")
    assert response.text == "'1'" and "Set-Cookie" not in response.headers


def test_encryption_at_rest_and_key_rotation(
    config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    k1, k2 = generate_key(), generate_key()
    app, ext = make_app(SESSION_ENCRYPTION_KEYS=[k1], **config)
    client = app.test_client()
    client.get("/set/secret/swordfish")
    sid = cookie_of(client) or ""
    assert ext.store is not None
    raw = ext.store.load(store_key(sid))
    assert raw is not None and raw.data["secret"].startswith("enc1:")
    assert "swordfish" not in str(raw.data)
    assert client.get("/get/secret").text == "'swordfish'"

    rotated, _ = make_app(store=ext.store, SESSION_ENCRYPTION_KEYS=[k2, k1], **config)
    client = as_cookie(rotated, sid)
    assert client.get("/get/secret").text == "'swordfish'"  # read with the old key ...
    only_new, _ = make_app(store=ext.store, SESSION_ENCRYPTION_KEYS=[k2], **config)
    assert as_cookie(only_new, sid).get("/get/secret").text == "'swordfish'"  # ... rewritten

    wrong, _ = make_app(store=ext.store, SESSION_ENCRYPTION_KEYS=[generate_key()], **config)
    response = as_cookie(wrong, sid).get("/get/secret")
    assert response.status_code == 200 and response.text == "None"
    assert "failed to decrypt" in caplog.text


def test_plaintext_is_never_read_when_encryption_is_on(config: dict[str, Any]) -> None:
    plain, ext = make_app(**config)
    client = plain.test_client()
    client.get("/set/user/mallory")
    sid = cookie_of(client)
    encrypted, _ = make_app(store=ext.store, SESSION_ENCRYPTION_KEYS=[generate_key()], **config)
    assert as_cookie(encrypted, sid).get("/get/user").text == "None"


def test_encrypted_value_copied_to_another_session_does_not_open(config: dict[str, Any]) -> None:
    key = generate_key()
    app, ext = make_app(SESSION_ENCRYPTION_KEYS=[key], **config)
    admin, user = app.test_client(), app.test_client()
    admin.get("/set/role/admin")
    user.get("/set/role/user")
    assert ext.store is not None and ext.manager is not None
    admin_key, user_key = (store_key(cookie_of(c) or "") for c in (admin, user))
    record = ext.store.load(admin_key)
    assert record is not None
    # Someone with write access to the store pastes the admin's sealed value.
    from sharedsession.stores.base import ChangeSet

    now = time.time()
    ext.store.apply(user_key, ChangeSet(now, now + 60, {"role": record.data["role"]}))
    assert user.get("/get/role").text == "None"


def test_too_large_session_fails_and_writes_nothing(config: dict[str, Any]) -> None:
    app, ext = make_app(SESSION_MAX_SIZE=200, **config)
    client = app.test_client()
    client.get("/set/a/1")
    response = client.get("/set/big/" + "x" * 300)
    assert response.status_code == 500
    assert client.get("/get/big").text == "None"
    assert client.get("/get/a").text == "'1'"


def test_cache_control_private_only_when_the_session_is_used(app: Flask) -> None:
    client = app.test_client()
    client.get("/set/a/1")
    assert client.get("/get/a").headers["Cache-Control"] == "private"
    assert "Cache-Control" not in client.get("/untouched").headers


def test_host_prefix_and_partitioned_cookies(config: dict[str, Any]) -> None:
    app, _ = make_app(
        SESSION_COOKIE_NAME="__Host-sid",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_PARTITIONED=True,
        **config,
    )
    header = app.test_client().get("/set/a/1", base_url="https://localhost").headers["Set-Cookie"]
    assert header.startswith("__Host-sid=")
    for part in ("Secure", "Path=/", "Partitioned", "HttpOnly", "SameSite=Lax"):
        assert part in header
    assert "Domain" not in header


@pytest.mark.parametrize(
    ("cookie_config", "message"),
    [
        ({"SESSION_COOKIE_NAME": "__Host-sid"}, "__Host- prefix"),
        (
            {"SESSION_COOKIE_NAME": "__Host-s", "SESSION_COOKIE_SECURE": True,
             "SESSION_COOKIE_DOMAIN": "example.test"},
            "__Host- prefix",
        ),
        ({"SESSION_COOKIE_NAME": "__Secure-sid"}, "__Secure- prefix"),
        ({"SESSION_COOKIE_PARTITIONED": True}, "PARTITIONED needs SESSION_COOKIE_SECURE"),
        ({"SESSION_COOKIE_SAMESITE": "None"}, "'None' needs SESSION_COOKIE_SECURE"),
        ({"SESSION_COOKIE_SAMESITE": "invalid"}, "must be 'Lax', 'Strict', 'None'"),
        ({"SESSION_ENCRYPTION_KEYS": ["short"]}, "32 random bytes"),
        ({"SESSION_ENCRYPTION_KEYS": "one-key"}, "must be a list of keys"),
        ({"SESSION_RENEWAL_INTERVAL": -5}, "SESSION_RENEWAL_INTERVAL must be positive"),
    ],
)  # fmt: skip
def test_cookie_and_key_config_is_checked(cookie_config: dict[str, Any], message: str) -> None:
    app = Flask("bad")
    app.config.update({"SESSION_TYPE": "memory", **cookie_config})
    with pytest.raises(ConfigurationError, match=message):
        Session(app)


def test_insecure_cookie_outside_debug_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = Flask("prod")
    app.config.update(SESSION_TYPE="memory")
    Session(app)
    assert "SESSION_COOKIE_SECURE is off" in caplog.text
    caplog.clear()
    debug = Flask("debug")
    debug.config.update(SESSION_TYPE="memory", DEBUG=True)
    Session(debug)
    secure = Flask("secure")
    secure.config.update(SESSION_TYPE="memory", SESSION_COOKIE_SECURE=True)
    Session(secure)
    assert "SESSION_COOKIE_SECURE" not in caplog.text


def tamper(app: Flask, key: str, **fields: Any) -> None:
    """Change a stored session's plain metadata, as someone with write access to the store."""
    store = store_of(app)
    if isinstance(store, MemoryStore):
        entry = store._entries[key]
        for name, value in fields.items():
            setattr(entry, name, value)
    elif isinstance(store, SQLiteStore):
        for name, value in fields.items():
            store._conn().execute(f"UPDATE sessions SET {name} = ? WHERE key = ?", (value, key))
    elif isinstance(store, SQLAlchemyStore):
        engine, tables = store._engines()
        with engine.begin() as conn:
            conn.execute(
                update(tables.sessions).where(tables.sessions.c.key == key).values(**fields)
            )
    elif isinstance(store, MemcachedStore):
        short = {"user_id": "u", "created": "c", "absolute": "a"}

        def edit(client: Any) -> None:
            document = json.loads(client.get(f"session:{key}"))
            document.update({short[name]: value for name, value in fields.items()})
            client.set(f"session:{key}", json.dumps(document).encode(), 600, noreply=False)

        store._run(edit)
    else:
        store.client.hset(f"session:{{{key}}}", mapping={f":{k}": v for k, v in fields.items()})


def test_encryption_seals_the_metadata_and_hides_the_user(config: dict[str, Any]) -> None:
    app, ext = make_app(
        SESSION_ENCRYPTION_KEYS=[generate_key()],
        SESSION_TRACK_CLIENT=True,
        SESSION_ABSOLUTE_LIFETIME=2,
        **config,
    )
    alice, bob = app.test_client(), app.test_client()
    alice.get("/login/alice", headers={"User-Agent": "alice-phone"})
    bob.get("/login/bob")
    alice_key, bob_key = (store_key(cookie_of(c) or "") for c in (alice, bob))
    store = store_of(app)
    stored = store.load(alice_key)
    assert stored.user_id is not None and "alice" not in stored.user_id
    assert store.sessions_for_user("alice") == []  # the store never sees the user ID
    with app.app_context():
        (info,) = ext.sessions_for_user("alice")
    assert info.user_id == "alice" and info.client["agent"] == "alice-phone"
    # Rebinding in the store does not change who the session belongs to.
    tamper(app, alice_key, user_id=store.load(bob_key).user_id)
    assert alice.get("/whoami").text == "'alice'"
    # Nor does moving its creation and deadline: the sealed copy is what counts.
    later = time.time() + 86400
    tamper(app, alice_key, created=time.time(), absolute=later)
    time.sleep(2.1)
    assert alice.get("/whoami").text == "None"


def test_encrypted_session_without_sealed_metadata_is_no_session(config: dict[str, Any]) -> None:
    from sharedsession.crypto import META

    app, _ = make_app(SESSION_ENCRYPTION_KEYS=[generate_key()], **config)
    client = app.test_client()
    client.get("/login/carol")
    key = store_key(cookie_of(client) or "")
    now = time.time()
    from sharedsession.stores.base import ChangeSet

    store_of(app).apply(key, ChangeSet(now, now + 60, delete=frozenset({META})))
    assert client.get("/whoami").text == "None"
