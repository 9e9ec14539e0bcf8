"""The core promise: app instances configured with one store share one session."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.flask_apps import make_app
from tests.integration.conftest import store_config
from tests.servers import RedisServer

STORES = [
    "sqlite",
    pytest.param("redis", marks=pytest.mark.integration),
    pytest.param("sqlalchemy", marks=pytest.mark.integration),
    pytest.param("memcached", marks=pytest.mark.integration),
]


@pytest.fixture(params=STORES)
def config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return store_config(request.param, request, tmp_path)


@pytest.fixture
def instances(config: dict[str, Any]) -> Iterator[tuple[Flask, Flask]]:
    """Two separate app objects, as two servers behind a load balancer would be."""
    a, ext_a = make_app("a", **config)
    b, ext_b = make_app("b", **config)
    try:
        yield a, b
    finally:
        for ext in (ext_a, ext_b):
            assert ext.store is not None
            ext.store.close()


def follow(session_of: FlaskClient, app: Flask) -> FlaskClient:
    """A client of ``app`` carrying the session cookie ``session_of`` got elsewhere."""
    found = session_of.get_cookie("session")
    assert found is not None
    client = app.test_client()
    client.set_cookie("session", found.value)
    return client


def test_login_on_a_is_seen_on_b(instances: tuple[Flask, Flask]) -> None:
    a, b = instances
    on_a = a.test_client()
    on_a.get("/set/user/alice")
    assert follow(on_a, b).get("/get/user").text == "'alice'"


def test_changes_flow_both_ways_and_clear_ends_it(instances: tuple[Flask, Flask]) -> None:
    a, b = instances
    on_a = a.test_client()
    on_a.get("/append/apple")
    on_b = follow(on_a, b)
    assert on_b.get("/append/pear").text == "['apple', 'pear']"
    assert on_a.get("/get/cart").text == "['apple', 'pear']"
    on_a.get("/clear")
    assert on_b.get("/get/cart").text == "None"


def test_concurrent_requests_changing_different_keys_lose_nothing(
    instances: tuple[Flask, Flask],
) -> None:
    a, b = instances
    first = a.test_client()
    first.get("/set/seed/0")
    found = first.get_cookie("session")
    assert found is not None
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def request(i: int) -> None:
        client = (a if i % 2 else b).test_client()
        client.set_cookie("session", found.value)
        barrier.wait()
        statuses.append(client.get(f"/set/k{i}/{i}").status_code)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 20
    for i in range(20):
        assert first.get(f"/get/k{i}").text == f"'{i}'"
    assert first.get("/get/seed").text == "'0'"


def test_logout_wins_over_a_slow_request(instances: tuple[Flask, Flask]) -> None:
    a, b = instances
    started = threading.Event()
    release = threading.Event()

    @b.get("/slow")
    def slow() -> str:
        from flask import session

        session["late"] = "write"
        started.set()
        release.wait(10)
        return "ok"

    on_a = a.test_client()
    on_a.get("/set/user/alice")
    found = on_a.get_cookie("session")
    assert found is not None
    on_b = b.test_client()
    on_b.set_cookie("session", found.value)
    thread = threading.Thread(target=on_b.get, args=("/slow",))
    thread.start()
    assert started.wait(10)
    on_a.get("/clear")  # logout on instance A while B's request is in flight
    release.set()
    thread.join()
    probe = a.test_client()
    probe.set_cookie("session", found.value)
    assert probe.get("/get/late").text == "None"
    assert probe.get("/get/user").text == "None"


@pytest.mark.integration
def test_redis_client_object_is_accepted(redis_server: RedisServer, redis_client: Any) -> None:
    a, ext = make_app("a", SESSION_TYPE="redis", SESSION_REDIS=redis.Redis(port=redis_server.port))
    client = a.test_client()
    client.get("/set/user/dave")
    assert client.get("/get/user").text == "'dave'"
    assert len(redis_client.keys("session:*")) == 1
