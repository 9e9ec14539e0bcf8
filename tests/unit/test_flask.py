from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sharedsession.errors import ConfigurationError
from sharedsession.flask import Session
from sharedsession.ids import new_id
from sharedsession.stores.memory import MemoryStore
from sharedsession.stores.redis import RedisStore
from tests.flask_apps import make_app
from tests.helpers import CountingStore
from tests.servers import free_port


@pytest.fixture
def counting() -> CountingStore:
    return CountingStore(MemoryStore())


@pytest.fixture
def client(counting: CountingStore) -> FlaskClient:
    app, _ = make_app(store=counting)
    return app.test_client()


def cookie(client: FlaskClient) -> str | None:
    found = client.get_cookie("session")
    return None if found is None else found.value


def test_set_then_get(client: FlaskClient) -> None:
    assert client.get("/set/user/alice").text == "ok"
    assert client.get("/get/user").text == "'alice'"


def test_nested_mutation_saved_without_modified(client: FlaskClient) -> None:
    client.get("/append/apple")
    assert client.get("/append/pear").text == "['apple', 'pear']"
    assert client.get("/get/cart").text == "['apple', 'pear']"


def test_flash_messages(client: FlaskClient) -> None:
    client.get("/flash/hello")
    assert client.get("/flashes").text == "['hello']"
    assert client.get("/flashes").text == "[]"


def test_no_cookie_untouched_costs_nothing(client: FlaskClient, counting: CountingStore) -> None:
    response = client.get("/untouched")
    assert counting.total == 0
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers


def test_an_untouched_route_with_a_session_costs_nothing(
    client: FlaskClient, counting: CountingStore
) -> None:
    client.get("/set/user/alice")
    before = counting.total
    response = client.get("/untouched")
    assert counting.total == before
    assert "Set-Cookie" not in response.headers and "Vary" not in response.headers
    assert client.get("/get/user").text == "'alice'"


def test_no_cookie_read_costs_nothing(client: FlaskClient, counting: CountingStore) -> None:
    response = client.get("/get/x")
    assert counting.total == 0
    assert "Set-Cookie" not in response.headers
    assert response.headers["Vary"] == "Cookie"


def test_the_apps_vary_and_cache_control_lines_are_merged_with_the_sessions() -> None:
    app, _ = make_app(store=MemoryStore())

    @app.get("/cached")
    def cached() -> Any:
        from flask import session

        session.get("x")
        headers = [
            ("Vary", "Accept-Encoding"),
            ("Vary", "Accept-Language"),
            ("Cache-Control", "public, max-age=60"),
            ("Cache-Control", "no-transform"),
        ]
        return "ok", 200, headers

    response = app.test_client().get("/cached")
    assert response.headers.getlist("Vary") == ["Accept-Encoding, Accept-Language, Cookie"]
    assert response.headers.getlist("Cache-Control") == ["private, max-age=60, no-transform"]


def test_round_trip_budget(client: FlaskClient, counting: CountingStore) -> None:
    client.get("/set/a/1")
    assert dict(counting.calls) == {"apply": 1}
    counting.calls.clear()
    client.get("/untouched")
    assert counting.total == 0
    client.get("/get/a")
    assert dict(counting.calls) == {"load": 1}
    counting.calls.clear()
    client.get("/set/a/2")  # sets without reading: written without a load
    assert dict(counting.calls) == {"write_keys": 1}
    counting.calls.clear()
    client.get("/append/x")  # reads, then writes
    assert dict(counting.calls) == {"load": 1, "apply": 1}
    counting.calls.clear()
    client.get("/clear")
    assert dict(counting.calls) == {"load": 1, "delete": 1}


def test_cookie_attributes(client: FlaskClient) -> None:
    header = client.get("/set/a/1").headers["Set-Cookie"]
    sid = cookie(client)
    assert sid is not None and len(sid) == 43
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Expires=" in header and "Secure" not in header


def test_cookie_config_is_honoured(counting: CountingStore) -> None:
    app, _ = make_app(
        store=counting,
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_DOMAIN="example.test",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=False,
    )
    header = app.test_client().get("/set/a/1").headers["Set-Cookie"]
    assert header.startswith("sid=")
    assert "Domain=example.test" in header and "Path=/app" in header
    assert "Secure" in header and "SameSite=Strict" in header and "HttpOnly" not in header


def test_non_permanent_session_cookie_has_no_expiry(client: FlaskClient) -> None:
    header = client.get("/temporary").headers["Set-Cookie"]
    assert "Expires" not in header
    assert client.get("/get/t").text == "1"


def test_session_permanent_false_config(counting: CountingStore) -> None:
    app, _ = make_app(store=counting, SESSION_PERMANENT=False)
    assert "Expires" not in app.test_client().get("/set/a/1").headers["Set-Cookie"]


def test_lifetime_sets_cookie_expiry(counting: CountingStore) -> None:
    app, _ = make_app(store=counting, PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=5))
    client = app.test_client()
    client.get("/set/a/1")
    found = client.get_cookie("session")
    assert found is not None and found.expires is not None
    left = found.expires - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=4) < left <= dt.timedelta(minutes=5)


def test_read_only_request_resends_permanent_cookie_only_when_refreshing(
    counting: CountingStore,
) -> None:
    # A 2 s lifetime refreshes in steps of 1% (20 ms): once per step, the
    # read that moves the deadline sends the cookie again; the others do not.
    app, _ = make_app(store=counting, PERMANENT_SESSION_LIFETIME=2)
    client = app.test_client()
    client.get("/set/a/1")
    assert "Set-Cookie" not in client.get("/get/a").headers
    time.sleep(0.05)
    assert "Set-Cookie" in client.get("/get/a").headers
    app, _ = make_app(store=counting, SESSION_REFRESH_EACH_REQUEST=False)
    client = app.test_client()
    client.get("/set/a/1")
    assert "Set-Cookie" not in client.get("/get/a").headers


def test_unknown_id_is_not_adopted(client: FlaskClient, counting: CountingStore) -> None:
    planted = new_id()
    client.set_cookie("session", planted)
    response = client.get("/set/user/bob")
    assert cookie(client) not in (None, planted)
    assert response.status_code == 200
    client.set_cookie("session", planted)
    assert client.get("/get/user").text == "None"


def test_stale_cookie_is_removed_when_read(client: FlaskClient) -> None:
    client.set_cookie("session", new_id())
    response = client.get("/get/user")
    assert "session=;" in response.headers["Set-Cookie"]
    assert cookie(client) is None


def test_garbage_cookie_is_ignored(client: FlaskClient, counting: CountingStore) -> None:
    client.set_cookie("session", "../../etc/passwd")
    assert client.get("/get/x").text == "None"
    assert counting.total == 0


def test_clear_ends_the_session(client: FlaskClient, counting: CountingStore) -> None:
    client.get("/set/a/1")
    old = cookie(client)
    client.get("/clear")
    assert cookie(client) is None
    assert len(counting.store) == 0  # type: ignore[arg-type]
    client.set_cookie("session", old or "")
    assert client.get("/get/a").text == "None"


@pytest.mark.parametrize("path", ["/logout", "/clear"])
def test_ending_a_session_the_store_did_not_find_deletes_its_key(
    client: FlaskClient, counting: CountingStore, path: str
) -> None:
    # "Not found" may come from a stale copy (a Redis master that a failover
    # demoted): the delete, confirmed like any write, is what makes it so.
    unknown = new_id()
    client.set_cookie("session", unknown)
    assert client.get(path).status_code == 200
    assert counting.calls["load"] == 1 and counting.calls["delete"] == 1
    assert cookie(client) is None
    client.set_cookie("session", new_id())
    client.get("/get/a")  # only reading a dead cookie deletes nothing
    assert counting.calls["delete"] == 1


def test_a_second_end_in_one_request_keeps_the_stored_id_to_delete() -> None:
    # An old cookie within the renewal grace loads the renewed session: the
    # cookie's ID is not where it is stored. Flask-Login's logout (destroy())
    # followed by the app's own clear() must still end the renewed session.
    app, ext = make_app(SESSION_RENEWAL_INTERVAL=0.3)

    @app.get("/logout-twice")
    def logout_twice() -> str:
        from sharedsession.flask import session

        session.destroy()
        session.clear()
        return "ok"

    phone = app.test_client()
    phone.get("/login/ann")
    old = cookie(phone)
    time.sleep(0.35)
    assert phone.get("/get/user").text == "'ann'"  # renewed: a new ID
    renewed = cookie(phone)
    assert old is not None and renewed not in (None, old)
    stale_tab = app.test_client()
    stale_tab.set_cookie("session", old)
    assert stale_tab.get("/logout-twice").status_code == 200
    assert phone.get("/get/user").text == "None"
    with app.app_context():
        assert ext.sessions_for_user("ann") == []


def test_sid_is_exposed(client: FlaskClient) -> None:
    client.get("/set/a/1")
    assert client.get("/sid").text == cookie(client)


def test_unserializable_value_is_500_and_writes_nothing(
    client: FlaskClient, counting: CountingStore
) -> None:
    client.get("/set/a/1")
    counting.calls.clear()
    response = client.get("/bad")
    assert response.status_code == 500
    assert "apply" not in counting.calls
    assert client.get("/get/a").text == "'1'"


def test_session_transaction(client: FlaskClient) -> None:
    with client.session_transaction() as sess:
        sess["user"] = "carol"
    assert client.get("/get/user").text == "'carol'"


def test_signed_cookies_and_key_rotation(counting: CountingStore) -> None:
    app, _ = make_app(store=counting, SESSION_USE_SIGNER=True, SECRET_KEY="old")
    client = app.test_client()
    client.get("/set/a/1")
    value = cookie(client)
    assert value is not None and "." in value
    client.set_cookie("session", value.split(".")[0])
    assert client.get("/get/a").text == "None"  # bare ID refused
    rotated, _ = make_app(
        store=counting, SESSION_USE_SIGNER=True, SECRET_KEY="new", SECRET_KEY_FALLBACKS=["old"]
    )
    client = rotated.test_client()
    client.set_cookie("session", value)
    assert client.get("/get/a").text == "'1'"


def test_init_app_factory_and_extension_attributes() -> None:
    ext = Session()
    app = Flask("factory")
    app.config.update(SESSION_TYPE="memory")
    ext.init_app(app)
    assert isinstance(ext.store, MemoryStore)
    assert ext.manager is not None and app.extensions["sharedsession"].store is ext.store


def test_default_store_is_sqlite_in_instance_folder(tmp_path: Path) -> None:
    app = Flask("default", instance_path=str(tmp_path / "instance"))
    Session(app)
    from sharedsession.stores.sqlite import SQLiteStore

    store = app.extensions["sharedsession"].store
    assert isinstance(store, SQLiteStore)
    assert store.path == str(tmp_path / "instance" / "sharedsession.sqlite3")
    store.close()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SESSION_TYPE": "filesystem"}, "SESSION_TYPE = 'filesystem' is not supported"),
        ({"SESSION_ID_LENGTH": 16}, "SESSION_ID_LENGTH must be an int of at least 32"),
        ({"SESSION_PERMANENT": "false"}, "SESSION_PERMANENT must be True or False"),
        ({"SESSION_REFRESH_EACH_REQUEST": 1}, "SESSION_REFRESH_EACH_REQUEST must be True"),
        ({"PERMANENT_SESSION_LIFETIME": "1 day"}, "PERMANENT_SESSION_LIFETIME must be a"),
        ({"PERMANENT_SESSION_LIFETIME": 0}, "PERMANENT_SESSION_LIFETIME must be positive"),
        ({"SESSION_USE_SIGNER": True, "SECRET_KEY": None}, "SECRET_KEY is not set"),
        ({"SESSION_KEY_PREFIX": "a{b}"}, "SESSION_KEY_PREFIX must be a str without braces"),
        ({"SESSION_MAX_SIZE": -1}, "SESSION_MAX_SIZE must be an int of at least 1"),
        ({"SESSION_ON_STORE_ERROR": "ignore"}, "SESSION_ON_STORE_ERROR = 'ignore'"),
        ({"SESSION_TYPE": "redis", "SESSION_REDIS": "http://x"}, "is not a usable Redis URL"),
        ({"SESSION_TYPE": "redis", "SESSION_REDIS": 42}, "SESSION_REDIS must be a Redis URL"),
    ],
)
def test_invalid_config_fails_at_init_app(config: dict[str, Any], message: str) -> None:
    app = Flask("bad")
    app.config.update({"SECRET_KEY": "k", **config})
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Session(app)


def test_integer_lifetime_is_seconds(counting: CountingStore) -> None:
    _, ext = make_app(store=counting, PERMANENT_SESSION_LIFETIME=120)
    assert ext.manager is not None and ext.manager.policy.idle == 120


def test_unreachable_store_is_503_never_a_fresh_session(caplog: pytest.LogCaptureFixture) -> None:
    dead = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    app, _ = make_app(store=dead)
    client = app.test_client()
    sid = new_id()
    client.set_cookie("session", sid)
    response = client.get("/get/user")
    assert response.status_code == 503
    assert "unavailable" in response.text and "Set-Cookie" not in response.headers
    assert sid not in caplog.text
    assert "session store unavailable" in caplog.text
    response = client.get("/set/a/1")  # a new session cannot be saved either
    assert response.status_code == 503 and "Set-Cookie" not in response.headers
    assert client.get("/untouched").status_code == 200


def test_one_extension_many_apps_uses_the_current_apps_store() -> None:
    ext = Session()
    first, second = Flask("first"), Flask("second")
    for app in (first, second):
        app.config.update(SESSION_TYPE="memory")
        ext.init_app(app)

    @first.get("/login")
    def login() -> str:
        from flask import session

        session.bind_user("ann")  # type: ignore[attr-defined]
        return "ok"

    first.test_client().get("/login")
    with first.app_context():
        assert len(ext.sessions_for_user("ann")) == 1
    with second.app_context():
        assert ext.sessions_for_user("ann") == []


def test_redis_client_of_the_wrong_kind_is_refused() -> None:
    import redis
    import redis.asyncio
    from quart import Quart

    from sharedsession.quart import Session as QuartSession

    flask_app = Flask("sync")
    flask_app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.asyncio.Redis())
    with pytest.raises(ConfigurationError, match="Flask calls sessions synchronously"):
        Session(flask_app)
    quart_app = Quart("async")
    quart_app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis())
    with pytest.raises(ConfigurationError, match="the app is async"):
        QuartSession(quart_app)
