"""A Flask app and a FastAPI app on one Redis share one session."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from sharedsession.stores.redis import AsyncRedisStore
from tests.asgi_apps import fastapi_app
from tests.flask_apps import make_app
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


def test_flask_and_fastapi_share_a_session(redis_server: RedisServer, redis_client: object) -> None:
    shared = {"secret": "fleet-secret", "lifetime": 3600, "prefix": "shop:"}
    flask_app, _ = make_app(
        "flask",
        SESSION_TYPE="redis",
        SESSION_REDIS=redis_server.url,
        SESSION_KEY_PREFIX=shared["prefix"],
        SESSION_USE_SIGNER=True,
        SECRET_KEY=shared["secret"],
        PERMANENT_SESSION_LIFETIME=shared["lifetime"],
    )
    store = AsyncRedisStore.from_url(redis_server.url, prefix=str(shared["prefix"]))
    api = fastapi_app(store, secret_key=shared["secret"], max_age=shared["lifetime"])

    on_flask = flask_app.test_client()
    on_flask.get("/login/alice")
    found = on_flask.get_cookie("session")
    assert found is not None
    with TestClient(api) as on_api:
        on_api.cookies.set("session", found.value)
        assert on_api.get("/me").json() == {"user": "alice", "cart": []}  # logged in on Flask
        assert on_api.get("/add/apple").json() == ["apple"]  # changed on FastAPI ...
        assert on_flask.get("/get/cart").text == "['apple']"  # ... seen on Flask
        on_flask.get("/append/pear")  # changed on Flask ...
        assert on_api.get("/me").json() == {"user": "alice", "cart": ["apple", "pear"]}
        on_flask.get("/logout")  # logout on Flask ends it for FastAPI
        assert on_api.get("/me").json() == {"user": None, "cart": []}
        assert on_api.portal is not None
        on_api.portal.call(store.aclose)
