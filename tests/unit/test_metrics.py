"""Prometheus metrics: the values move, and no ID, handle or user reaches them."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY
from prometheus_client import generate_latest
from starlette.testclient import TestClient

from sharedsession.stores.memory import AsyncMemoryStore
from tests.asgi_apps import starlette_app
from tests.flask_apps import make_app
from tests.servers import free_port


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_flask_metrics_move_and_hold_no_identifiers() -> None:
    names = {
        "created": ("sharedsession_sessions_created_total", {}),
        "regenerated": ("sharedsession_sessions_regenerated_total", {}),
        "destroyed": ("sharedsession_sessions_destroyed_total", {}),
        "revoked": ("sharedsession_sessions_revoked_total", {}),
        "found": ("sharedsession_loads_total", {"outcome": "found"}),
        "applied": ("sharedsession_saves_total", {"outcome": "applied"}),
        "loads": ("sharedsession_store_calls_total", {"operation": "load"}),
        "latency": ("sharedsession_store_latency_seconds_count", {"operation": "apply"}),
        "size": ("sharedsession_session_size_bytes_count", {}),
    }
    before = {k: value(n, **labels) for k, (n, labels) in names.items()}
    app, ext = make_app(SESSION_METRICS=True)
    laptop, phone = app.test_client(), app.test_client()
    laptop.get("/set/cart/apple")
    laptop.get("/login/mia")  # regenerates
    phone.get("/login/mia")
    laptop.get("/get/cart")
    with app.app_context():
        (other,) = [i for i in ext.sessions_for_user("mia") if i.handle != laptop_handle(ext)]
        assert ext.revoke(other.handle)
    laptop.get("/logout")
    after = {k: value(n, **labels) for k, (n, labels) in names.items()}
    moved = {k: after[k] - before[k] for k in names}
    assert moved["created"] >= 2 and moved["regenerated"] >= 1
    assert moved["destroyed"] >= 1 and moved["revoked"] == 1
    assert moved["found"] >= 2 and moved["applied"] >= 3
    assert moved["loads"] >= 3 and moved["latency"] >= 3 and moved["size"] >= 2
    exported = generate_latest().decode()
    cookies = [c.value for c in (laptop.get_cookie("session"), phone.get_cookie("session")) if c]
    assert "mia" not in exported and other.handle not in exported
    assert not any(cookie in exported for cookie in cookies)


def laptop_handle(ext: Any) -> str:
    infos = ext.sessions_for_user("mia")
    return str(min(infos, key=lambda i: i.created).handle)


def test_outages_are_counted_by_kind() -> None:
    before = value("sharedsession_store_errors_total", kind="unavailable")
    app, _ = make_app(
        SESSION_TYPE="redis",
        SESSION_REDIS=f"redis://127.0.0.1:{free_port()}/0",
        SESSION_REDIS_TIMEOUT=0.2,
        SESSION_METRICS=True,
    )
    client = app.test_client()
    client.set_cookie("session", "x" * 43)
    assert client.get("/get/a").status_code == 503
    assert value("sharedsession_store_errors_total", kind="unavailable") == before + 1


def test_asgi_metrics_and_a_custom_wrapper() -> None:
    wrapped: list[Any] = []

    def wrapper(store: Any) -> Any:
        wrapped.append(store)
        return store

    before = value("sharedsession_loads_total", outcome="found")
    app = starlette_app(AsyncMemoryStore(), metrics=True, store_wrapper=wrapper, debug=True)
    with TestClient(app) as client:
        client.get("/set/a/1")
        client.get("/get/a")
    assert wrapped and value("sharedsession_loads_total", outcome="found") == before + 1
