"""Two requests on one session held at a barrier, in each order, on every store:
overlapping requests never log the user out and never lose each other's changes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask import request as flask_request

from sharedsession.flask import session
from tests.flask_apps import make_app
from tests.flask_apps import session_cookie
from tests.integration.conftest import KINDS
from tests.integration.conftest import store_config


class Gate:
    """Holds a request after it loaded its session until the test lets it go."""

    def __init__(self) -> None:
        self.loaded: dict[str, threading.Event] = {}
        self.go: dict[str, threading.Event] = {}

    def arm(self, tag: str) -> None:
        self.loaded[tag], self.go[tag] = threading.Event(), threading.Event()

    def hold(self) -> None:
        tag = flask_request.args.get("tag")
        if tag in self.loaded:
            self.loaded[tag].set()
            assert self.go[tag].wait(10)


def gated_app(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **config: Any) -> Flask:
    app, _ = make_app(**store_config(kind, request, tmp_path), **config)
    gate = Gate()

    @app.get("/hold/set/<key>/<value>")
    def hold_set(key: str, value: str) -> str:
        session.get("user")  # load
        gate.hold()
        session[key] = value
        return "ok"

    @app.get("/hold/get/<key>")
    def hold_get(key: str) -> str:
        value = session.get(key)
        gate.hold()
        return repr(value)

    app.config["gate"] = gate
    return app


class Call(threading.Thread):
    def __init__(self, app: Flask, cookie: str, path: str) -> None:
        super().__init__()
        self.app, self.cookie, self.path = app, cookie, path
        self.status = 0
        self.set_cookie: str | None = None

    def run(self) -> None:
        client = self.app.test_client()
        client.set_cookie("session", self.cookie)
        response = client.get(self.path)
        self.status = response.status_code
        self.set_cookie = response.headers.get("Set-Cookie")


def value(set_cookie: str | None) -> str | None:
    """The session cookie value a Set-Cookie header sends ('' when it deletes it)."""
    if set_cookie is None:
        return None
    return set_cookie.split(";")[0].split("=", 1)[1]


def read(app: Flask, cookie: str, key: str) -> tuple[str, str | None]:
    client = app.test_client()
    client.set_cookie("session", cookie)
    response = client.get(f"/get/{key}")
    return response.text, value(response.headers.get("Set-Cookie"))


def login(app: Flask, user: str) -> str:
    client = app.test_client()
    client.get(f"/login/{user}")
    found = client.get_cookie("session")
    assert found is not None
    return str(found.value)


def held(app: Flask, cookie: str, paths: dict[str, str], order: list[str]) -> dict[str, Call]:
    """Start each request, wait until all loaded, then let them finish in ``order``."""
    gate: Gate = app.config["gate"]
    calls = {}
    for tag, path in paths.items():
        gate.arm(tag)
        calls[tag] = Call(app, cookie, f"{path}?tag={tag}")
        calls[tag].start()
    for tag in paths:
        assert gate.loaded[tag].wait(10)
    for tag in order:
        gate.go[tag].set()
        calls[tag].join()
    return calls


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", [["A", "B"], ["B", "A"]])
def test_renewal_race_keeps_both_writes_and_one_new_id(
    kind: str, order: list[str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app = gated_app(kind, request, tmp_path, SESSION_RENEWAL_INTERVAL=0.3)
    old = login(app, "ann")
    time.sleep(0.35)  # both requests find the renewal due
    calls = held(app, old, {"A": "/hold/set/a/1", "B": "/hold/set/b/2"}, order)
    assert [c.status for c in calls.values()] == [200, 200]
    sent = {tag: value(c.set_cookie) for tag, c in calls.items()}
    assert sent["A"] == sent["B"] and sent["A"] not in (None, "", old)  # nobody logged out
    new = sent["A"]
    assert new is not None
    assert read(app, new, "a")[0] == "'1'" and read(app, new, "b")[0] == "'2'"
    assert read(app, new, "user")[0] == "'ann'"
    # A request still carrying the old ID (in flight at the renewal) is served too.
    assert read(app, old, "b") == ("'2'", new)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", [["W", "R"], ["R", "W"]])
def test_renewal_race_with_a_read_sends_the_new_id(
    kind: str, order: list[str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app = gated_app(kind, request, tmp_path, SESSION_RENEWAL_INTERVAL=0.3)
    old = login(app, "ann")
    time.sleep(0.35)
    calls = held(app, old, {"W": "/hold/set/a/1", "R": "/hold/get/user"}, order)
    new = value(calls["W"].set_cookie)
    assert new not in (None, "", old)
    assert value(calls["R"].set_cookie) == new
    assert new is not None and read(app, new, "a")[0] == "'1'"


@pytest.mark.parametrize("kind", KINDS)
def test_a_read_overlapping_a_login_does_not_resend_the_old_id(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app = gated_app(kind, request, tmp_path)
    client = app.test_client()
    client.get("/set/cart/apple")  # a visitor's session before login
    found = client.get_cookie("session")
    assert found is not None
    before = found.value
    gate: Gate = app.config["gate"]
    gate.arm("R")
    reader = Call(app, before, "/hold/get/cart?tag=R")
    reader.start()
    assert gate.loaded["R"].wait(10)
    client.get("/login/bob")  # completes while the read is in flight
    after = client.get_cookie("session")
    assert after is not None and after.value != before
    gate.go["R"].set()
    reader.join()
    assert reader.status == 200 and reader.set_cookie is None  # arriving last, it changes nothing
    assert read(app, after.value, "user")[0] == "'bob'"
    assert read(app, before, "user")[0] == "None"  # the login killed the old ID at once


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order", [["W", "L"], ["L", "W"]])
def test_a_write_overlapping_a_logout_never_brings_it_back(
    kind: str, order: list[str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app = gated_app(kind, request, tmp_path)
    app.config["gate"].arm("L")

    @app.get("/hold/logout")
    def hold_logout() -> str:
        session.get("user")
        app.config["gate"].hold()
        session.destroy()
        return "bye"

    cookie = login(app, "cy")
    calls = held(app, cookie, {"W": "/hold/set/x/1", "L": "/hold/logout"}, order)
    assert value(calls["L"].set_cookie) == ""  # the logout expires the cookie
    assert calls["W"].status == 200
    assert read(app, cookie, "user")[0] == "None" and read(app, cookie, "x")[0] == "None"


@pytest.mark.parametrize("kind", KINDS)
def test_overlapping_writes_that_never_read_keep_every_key(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # Where the store writes keys unread (Redis, memory), each request is one
    # script setting its key; elsewhere a load and an apply of the changed key.
    config = store_config(kind, request, tmp_path)
    first, ext = make_app("a", **config)
    second, _ = make_app("b", store=ext.store if kind == "memory" else None, **config)
    cookie = session_cookie(first)
    statuses: list[int] = []
    cookies: set[str | None] = set()

    def writer(app: Flask, n: int) -> None:
        client = app.test_client()
        client.set_cookie("session", cookie)
        for i in range(15):
            statuses.append(client.get(f"/set/k{n}.{i}/{i}").status_code)
        found = client.get_cookie("session")
        cookies.add(None if found is None else found.value)

    threads = [
        threading.Thread(target=writer, args=(app, n)) for n, app in enumerate([first, second] * 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) == {200} and cookies == {cookie}
    reader = first.test_client()
    reader.set_cookie("session", cookie)
    assert reader.get("/count").text == str(1 + 4 * 15)  # "user", and every key set
    assert reader.get("/get/k3.14").text == "'14'"
