"""Flask-Session configurations keep working or fail loudly; one config path for every adapter."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import pytest
import redis
import redis.asyncio
from flask import Blueprint
from flask import Flask
from flask import current_app
from starlette.applications import Starlette
from starlette.testclient import TestClient

from sharedsession._config import OPTION_KEYS
from sharedsession.asgi import SessionMiddleware
from sharedsession.errors import ConfigurationError
from sharedsession.flask import Session
from sharedsession.flask import SessionInterface
from sharedsession.flask import session
from sharedsession.ids import MAX_ID_BYTES
from sharedsession.stores._redis_url import client_from_setting
from sharedsession.stores.memcached import MemcachedStore
from sharedsession.stores.memory import AsyncMemoryStore
from sharedsession.stores.memory import MemoryStore
from sharedsession.stores.redis import RedisStore
from sharedsession.stores.sqlite import SQLiteStore
from tests.asgi_apps import starlette_app
from tests.flask_apps import make_app


def flask_app(**config: Any) -> Flask:
    app = Flask("config")
    app.config.update({"SECRET_KEY": "k", **config})
    Session(app)
    return app


@pytest.mark.parametrize("value", ["Redis", "REDIS", "redis"])
def test_session_type_is_case_insensitive(value: str) -> None:
    app = flask_app(SESSION_TYPE=value, SESSION_REDIS="redis://127.0.0.1:1/0")
    assert isinstance(app.session_interface.store, RedisStore)  # type: ignore[attr-defined]


def test_session_redis_without_session_type_means_redis(tmp_path: Any) -> None:
    # A local SQLite file would not be shared across machines: Flask-Session refuses this.
    app = flask_app(SESSION_REDIS="redis://127.0.0.1:1/0")
    assert isinstance(app.session_interface.store, RedisStore)  # type: ignore[attr-defined]
    app = flask_app(SESSION_SQLITE_PATH=str(tmp_path / "s.db"))
    assert isinstance(app.session_interface.store, SQLiteStore)  # type: ignore[attr-defined]


def test_flask_session_only_keys_are_accepted_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="sharedsession"):
        flask_app(
            SESSION_TYPE="memory",
            SESSION_FILE_DIR="/tmp/sessions",
            SESSION_CLEANUP_N_REQUESTS=100,
        )
    lines = [r for r in caplog.records if "Flask-Session setting with no effect" in r.message]
    assert [r.levelno for r in lines] == [logging.INFO, logging.INFO]
    assert "SESSION_FILE_DIR" in lines[0].message


def test_unknown_session_key_gets_a_warning_with_the_closest_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="sharedsession"):
        flask_app(SESSION_TYPE="memory", SESSION_PERMANET=False, TESTING=True)
    (record,) = [r for r in caplog.records if "SESSION_PERMANET" in r.message]
    assert record.levelno == logging.WARNING
    assert "Did you mean SESSION_PERMANENT?" in record.message


def test_id_length_beyond_what_cookies_accept_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=f"at most {MAX_ID_BYTES}"):
        flask_app(SESSION_TYPE="memory", SESSION_ID_LENGTH=MAX_ID_BYTES + 1)
    app = flask_app(SESSION_TYPE="memory", SESSION_ID_LENGTH=MAX_ID_BYTES)
    client = app.test_client()

    @app.get("/n")
    def n() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    assert [client.get("/n").text for _ in range(2)] == ["1", "2"]  # the long ID is recognised


def test_flask_sessions_regenerate_api() -> None:
    app, _ = make_app()

    @app.get("/fs-regenerate")
    def fs_regenerate() -> str:
        interface: Any = current_app.session_interface
        interface.regenerate(session)
        return "ok"

    client = app.test_client()
    client.get("/set/user/ann")
    old = client.get_cookie("session")
    assert old is not None
    assert client.get("/fs-regenerate").text == "ok"
    new = client.get_cookie("session")
    assert new is not None and new.value != old.value
    assert client.get("/get/user").text == "'ann'"
    stale = app.test_client()
    stale.set_cookie("session", old.value)
    assert stale.get("/get/user").text == "None"  # the old ID is dead


def test_extensions_entry_is_the_extension_object() -> None:
    app, ext = make_app()
    assert app.extensions["sharedsession"] is ext
    blueprint = Blueprint("account", __name__)

    @blueprint.get("/others")
    def others() -> str:
        user = session.user_id
        assert user is not None
        return str(current_app.extensions["sharedsession"].revoke_user(user, keep=session))

    app.register_blueprint(blueprint)
    phone, laptop = app.test_client(), app.test_client()
    phone.get("/login/ann")
    laptop.get("/login/ann")
    assert laptop.get("/others").text == "1"
    assert phone.get("/get/user").text == "None" and laptop.get("/get/user").text == "'ann'"


# -- cookies as Flask writes them -------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "sent"),
    [(".example.com", "example.com"), ("example.com:8080", "example.com")]
    + [("bücher.example", "xn--bcher-kva.example")],
)
def test_cookie_domain_is_normalised_as_werkzeug_does(configured: str, sent: str) -> None:
    app, _ = make_app(SESSION_COOKIE_DOMAIN=configured)
    client = app.test_client()
    response = client.get("/set/a/1", base_url=f"http://www.{sent}")
    assert f"Domain={sent};" in response.headers["Set-Cookie"]
    if sent.isascii() and not sent.startswith("xn--"):  # the test client's own limits
        assert client.get("/get/a", base_url=f"http://www.{sent}").text == "'1'"


def test_invalid_samesite_is_refused_also_after_init() -> None:
    with pytest.raises(ConfigurationError, match="must be 'Lax', 'Strict', 'None'"):
        make_app(SESSION_COOKIE_SAMESITE="invalid")
    app, _ = make_app(SESSION_COOKIE_SAMESITE="strict")
    assert "SameSite=Strict" in app.test_client().get("/set/a/1").headers["Set-Cookie"]
    app.config["SESSION_COOKIE_SAMESITE"] = "bogus"
    app.testing = True  # let the error through instead of a 500 page
    with pytest.raises(ConfigurationError, match="must be 'Lax', 'Strict', 'None'"):
        app.test_client().get("/set/a/1")


def test_cookie_attributes_are_read_per_request_through_the_hooks() -> None:
    app, _ = make_app()
    app.config["SESSION_COOKIE_PATH"] = "/shop"
    app.config["SESSION_COOKIE_HTTPONLY"] = False
    header = app.test_client().get("/set/a/1").headers["Set-Cookie"]
    assert "Path=/shop" in header and "HttpOnly" not in header

    app.config["SESSION_COOKIE_PATH"] = "/"

    class Named(SessionInterface):
        def get_cookie_name(self, app: Flask) -> str:
            return "sid"

    interface: Any = app.session_interface
    app.session_interface = Named(interface.manager, interface.store)
    client = app.test_client()
    assert client.get("/set/a/2").headers["Set-Cookie"].startswith("sid=")
    assert client.get("/get/a").text == "'2'"


# -- the ASGI middleware: the same checks, the same messages -----------------------


REFUSED = [
    ({"SESSION_COOKIE_NAME": "__Host-s"}, {"session_cookie": "__Host-s"}),
    ({"SESSION_COOKIE_NAME": "__Secure-s"}, {"session_cookie": "__Secure-s"}),
    ({"SESSION_COOKIE_SAMESITE": "None"}, {"same_site": "none"}),
    ({"SESSION_COOKIE_PARTITIONED": True}, {"partitioned": True}),
    ({"SESSION_COOKIE_SAMESITE": "sometimes"}, {"same_site": "sometimes"}),
    ({"PERMANENT_SESSION_LIFETIME": "1 day"}, {"max_age": "1 day"}),
    ({"SESSION_ON_STORE_ERROR": "ignore"}, {"on_store_error": "ignore"}),
    ({"SESSION_ID_LENGTH": 8}, {"id_length": 8}),
    ({"SESSION_MAX_SIZE": 0}, {"max_size": 0}),
]


@pytest.mark.parametrize(("config", "options"), REFUSED)
def test_middleware_refuses_what_flask_refuses_with_the_same_message(
    config: dict[str, Any], options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError) as flask_error:
        flask_app(SESSION_TYPE="memory", **config)
    with pytest.raises(ConfigurationError) as asgi_error:
        SessionMiddleware(Starlette(), store=AsyncMemoryStore(), **options)
    expected = str(flask_error.value)
    for option, key in OPTION_KEYS.items():
        expected = re.sub(rf"\b{key}\b", f"{option} ({key})", expected)
    assert str(asgi_error.value) == expected


def test_middleware_options_take_what_the_flask_keys_take() -> None:
    app = starlette_app(
        AsyncMemoryStore(), max_age=dt.timedelta(hours=1), same_site="STRICT", debug=True
    )
    with TestClient(app) as client:
        header = client.get("/set/a/1").headers["set-cookie"]
    assert "Max-Age=3599" in header or "Max-Age=3600" in header
    assert "SameSite=Strict" in header
    middleware = SessionMiddleware(Starlette(), store=AsyncMemoryStore(), max_age=None)
    assert not middleware.manager.permanent  # Starlette's max_age=None: browser-session cookie


def test_middleware_warns_about_an_insecure_cookie(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sharedsession"):
        SessionMiddleware(Starlette(), store=AsyncMemoryStore())
        SessionMiddleware(Starlette(), store=AsyncMemoryStore(), https_only=True)
        SessionMiddleware(Starlette(), store=AsyncMemoryStore(), debug=True)
    assert caplog.text.count("SESSION_COOKIE_SECURE is off") == 1


def test_session_memcached_takes_an_address_or_a_pymemcache_client(tmp_path: Any) -> None:
    from pymemcache.client.base import Client
    from pymemcache.client.base import PooledClient

    app = flask_app(SESSION_MEMCACHED="127.0.0.1:1")  # alone, it means memcached
    store: Any = app.session_interface.store  # type: ignore[attr-defined]
    assert isinstance(store, MemcachedStore) and store.reach == "machine"  # loopback
    remote: Any = flask_app(SESSION_MEMCACHED="10.0.0.5:11211").session_interface
    assert remote.store.reach == "network"
    # Clients that hold one socket or wait forever are copied, with the timeout as a cap.
    classic = Client(("127.0.0.1", 1))
    app = flask_app(
        SESSION_TYPE="memcached", SESSION_MEMCACHED=classic, SESSION_MEMCACHED_TIMEOUT=0.25
    )
    store = app.session_interface.store  # type: ignore[attr-defined]
    with store._connections.client() as copied:
        assert copied is not classic and copied.server == ("127.0.0.1", 1)
        assert (copied.timeout, copied.connect_timeout) == (0.25, 0.25)
    pooled = PooledClient("127.0.0.1:1", timeout=0.1, key_prefix=b"app:")
    store = flask_app(SESSION_TYPE="memcached", SESSION_MEMCACHED=pooled).session_interface.store  # type: ignore[attr-defined]
    with store._connections.client() as copied:
        assert (copied.timeout, copied.connect_timeout, copied.key_prefix) == (0.1, 2.0, b"app:")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SESSION_MEMCACHED": "127.0.0.1:port"}, "not a memcached address"),
        ({"SESSION_MEMCACHED": object()}, "pymemcache Client or PooledClient"),
        ({"SESSION_MEMCACHED_TIMEOUT": 0}, "SESSION_MEMCACHED_TIMEOUT must be positive"),
        ({"SESSION_KEY_PREFIX": "my sessions:"}, "cannot start a memcached key"),
    ],
)
def test_memcached_settings_are_checked(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        flask_app(SESSION_TYPE="memcached", **config)


def test_one_registry_maps_session_type_to_stores() -> None:
    from sharedsession._config import STORE_TYPES

    app = flask_app(SESSION_TYPE="memory")
    assert isinstance(app.session_interface.store, MemoryStore)  # type: ignore[attr-defined]
    assert set(STORE_TYPES) == {"memory", "sqlite", "redis", "memcached", "sqlalchemy"}
    with pytest.raises(
        ConfigurationError,
        match="use one of 'sqlite', 'redis', 'memcached', 'memory', 'sqlalchemy'",
    ):
        flask_app(SESSION_TYPE="filesystem")


def test_a_store_not_shared_across_machines_is_said_at_start_up(
    caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    with caplog.at_level(logging.INFO, logger="sharedsession"):
        flask_app(SESSION_TYPE="memory")
        flask_app(SESSION_TYPE="sqlite", SESSION_SQLITE_PATH=str(tmp_path / "s.db"))
        flask_app(SESSION_TYPE="redis", SESSION_REDIS="redis://10.0.0.5:6379/0")  # shared
        flask_app(SESSION_TYPE="memory", TESTING=True)  # quiet in tests
        SessionMiddleware(Starlette(), store=AsyncMemoryStore(), https_only=True)
    memory = [r for r in caplog.records if "this process's memory" in r.message]
    machine = [r for r in caplog.records if "shared by the processes of this machine" in r.message]
    assert [r.levelno for r in memory] == [logging.WARNING, logging.WARNING]  # Flask, ASGI
    assert [r.levelno for r in machine] == [logging.INFO]  # SQLite


@pytest.mark.parametrize(
    "config",
    [
        {"SESSION_TYPE": "redis", "SESSION_REDIS": "redis://127.0.0.1:6379/0"},
        {"SESSION_TYPE": "redis", "SESSION_REDIS": "redis://localhost:6379/0"},
        {"SESSION_TYPE": "redis", "SESSION_REDIS": "unix:///run/redis.sock"},
        {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": "[::1]:11211"},
        {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": "postgresql://u@127.0.0.1/db"},
    ],
)
def test_a_server_on_a_loopback_address_is_said_to_serve_one_machine(
    caplog: pytest.LogCaptureFixture, config: dict[str, Any]
) -> None:
    """The default Redis URL works on one machine and, with several app servers each
    reaching its own local Redis, silently shares nothing: start-up says so."""
    with caplog.at_level(logging.INFO, logger="sharedsession"):
        flask_app(**config)
    assert "shared by the processes of this machine only" in caplog.text


def test_session_sqlalchemy_alone_means_the_sql_store(tmp_path: Any) -> None:
    from sharedsession.stores.sqlalchemy import SQLAlchemyStore

    app = flask_app(SESSION_SQLALCHEMY=f"sqlite:///{tmp_path / 'sessions.db'}")
    store: Any = app.session_interface.store  # type: ignore[attr-defined]
    assert isinstance(store, SQLAlchemyStore)


def test_a_flask_sqlalchemy_db_on_sqlite_is_said_to_be_one_machine_only(
    caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("config")
    app.config.update(SECRET_KEY="k", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}")
    db = SQLAlchemy(app)
    app.config.update(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=db)
    with caplog.at_level(logging.INFO, logger="sharedsession"):
        Session(app)
    assert "shared by the processes of this machine" in caplog.text


@pytest.mark.parametrize("asyncio", [False, True])
def test_the_private_copy_of_a_blocking_pool_keeps_its_wait(asyncio: bool) -> None:
    # SESSION_REDIS given as the app's client: the store gets a copy of its pool.
    module: Any = redis.asyncio if asyncio else redis
    pool = module.BlockingConnectionPool(host="127.0.0.1", port=1, max_connections=3, timeout=5)
    made = client_from_setting(module.Redis(connection_pool=pool), 2.0, 3, asyncio=asyncio)
    assert made.connection_pool is not pool
    assert type(made.connection_pool) is type(pool)
    assert made.connection_pool.timeout == 5  # not redis-py's default 20
