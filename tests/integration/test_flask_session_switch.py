"""Switching from Flask-Session 0.8 (the real one) on Redis: nobody is logged out."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import flask_session
import pytest
import redis
from flask import Flask
from flask import jsonify
from flask import session

from sharedsession.flask import Session
from sharedsession.flask import session as our_session
from tests.servers import RedisServer

pytestmark = [
    pytest.mark.integration,
    # Flask-Session 0.8 deprecates its own SESSION_USE_SIGNER; apps still use it.
    pytest.mark.filterwarnings("ignore:The 'use_signer' option:DeprecationWarning"),
]

PREFIX = "myapp:sess:"


def routes(app: Flask, *, ours: bool) -> None:
    @app.get("/login/<user>")
    def login(user: str) -> str:
        if ours:
            our_session.bind_user(user)
        else:
            session["_user_id"] = user  # what Flask-Login's login_user stores
        session["user"] = user
        return "ok"

    @app.get("/cart/<item>")
    def cart(item: str) -> str:
        session.setdefault("cart", []).append(item)
        session.modified = True  # Flask-Session does not see nested changes
        return "ok"

    @app.get("/show")
    def show() -> Any:
        return jsonify(user=session.get("user"), cart=session.get("cart", []))

    @app.get("/logout")
    def logout() -> str:
        session.clear()
        return "bye"


def config(client: redis.Redis, **extra: Any) -> dict[str, Any]:
    return {
        "SECRET_KEY": "shared secret",
        "SESSION_TYPE": "redis",
        "SESSION_REDIS": client,
        "SESSION_KEY_PREFIX": PREFIX,
        **extra,
    }


def old_app(client: redis.Redis, **extra: Any) -> Flask:
    app = Flask("flask-session-app")
    app.config.update(config(client, **extra))
    flask_session.Session(app)
    routes(app, ours=False)
    return app


def new_app(client: redis.Redis, **extra: Any) -> Flask:
    app = Flask("sharedsession-app")
    app.config.update(config(client, **extra))
    Session(app)
    routes(app, ours=True)
    return app


@pytest.fixture
def client(redis_server: RedisServer, redis_client: Any) -> Iterator[redis.Redis]:
    made = redis_server.client()
    yield made
    made.close()


def cookie_of(test_client: Any) -> str:
    found = test_client.get_cookie("session")
    assert found is not None
    return str(found.value)


def visit(app: Flask, cookie: str, path: str) -> tuple[Any, str | None]:
    test_client = app.test_client()
    test_client.set_cookie("session", cookie)
    response = test_client.get(path)
    assert response.status_code == 200, response.text
    found = test_client.get_cookie("session")
    return response, None if found is None else str(found.value)


@pytest.mark.parametrize("signer", [False, True])
@pytest.mark.parametrize("serialization", ["msgpack", "json"])
@pytest.mark.parametrize("permanent", [True, False])
def test_flask_session_sessions_are_adopted_with_equal_data(
    client: redis.Redis, signer: bool, serialization: str, permanent: bool
) -> None:
    options = {
        "SESSION_USE_SIGNER": signer,
        "SESSION_SERIALIZATION_FORMAT": serialization,
        "SESSION_PERMANENT": permanent,
    }
    old = old_app(client, **options)
    browser = old.test_client()
    browser.get("/login/ann")
    browser.get("/cart/apple")
    browser.get("/cart/pear")
    cookie = cookie_of(browser)
    sid = cookie.split(".")[0]
    assert client.exists(PREFIX + sid) == 1
    ttl = client.pttl(PREFIX + sid)

    new = new_app(client, **options)
    response, after = visit(new, cookie, "/show")
    assert response.get_json() == {"user": "ann", "cart": ["apple", "pear"]}
    assert after == cookie  # the same cookie stays valid, and is not deleted
    assert "session=;" not in response.headers.get("Set-Cookie", "")
    assert client.exists(PREFIX + sid) == 0  # moved: one copy, nothing to resurrect
    stored = client.pttl(f"{PREFIX}{{{_digest(sid)}}}")
    assert 0 < stored <= ttl + 1000  # its remaining lifetime, not a fresh one
    visit(new, cookie, "/cart/fig")
    assert visit(new, cookie, "/show")[0].get_json()["cart"] == ["apple", "pear", "fig"]


def _digest(sid: str) -> str:
    from sharedsession.ids import store_key

    return store_key(sid)


def test_a_logout_on_the_new_side_is_a_logout_on_the_old_side(client: redis.Redis) -> None:
    old = old_app(client)
    browser = old.test_client()
    browser.get("/login/bo")
    cookie = cookie_of(browser)
    sid = cookie.split(".")[0]
    blob = client.get(PREFIX + sid)
    new = new_app(client)
    assert visit(new, cookie, "/show")[0].get_json()["user"] == "bo"
    # An old instance's request that was in flight writes its copy back ...
    client.set(PREFIX + sid, blob, ex=3600)  # type: ignore[arg-type]
    visit(new, cookie, "/logout")
    # ... and the logout removes it too: neither side brings the user back.
    assert client.exists(PREFIX + sid) == 0
    assert visit(old, cookie, "/show")[0].get_json()["user"] is None
    assert visit(new, cookie, "/show")[0].get_json()["user"] is None


def test_a_pickled_payload_is_never_unpickled_by_default(
    client: redis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            return (os.mkdir, (str(marker),))

    sid = "p" * 43
    client.set(PREFIX + sid, pickle.dumps({"user": Exploit()}), ex=3600)
    new = new_app(client)
    assert visit(new, sid, "/show")[0].get_json()["user"] is None
    assert not marker.exists()
    assert "pickled" in caplog.text
    # With the operator's explicit opt-in, old pickled data is adopted.
    client.set(PREFIX + sid, pickle.dumps({"user": "old-timer"}), ex=3600)
    trusting = new_app(client, SESSION_MIGRATE_ALLOW_PICKLE=True)
    assert visit(trusting, sid, "/show")[0].get_json()["user"] == "old-timer"


def test_rolling_deploy_old_and_new_instances_agree_at_every_step(client: redis.Redis) -> None:
    old = old_app(client, SESSION_USE_SIGNER=True)
    new = new_app(client, SESSION_USE_SIGNER=True, SESSION_MIGRATE_ROLLING=True)
    browser = {"cookie": ""}

    def step(app: Flask, path: str) -> Any:
        test_client = app.test_client()
        if browser["cookie"]:
            test_client.set_cookie("session", browser["cookie"])
        response = test_client.get(path)
        assert response.status_code == 200
        found = test_client.get_cookie("session")
        browser["cookie"] = "" if found is None else found.value
        return response

    def seen(expected_user: str | None, expected_cart: list[str]) -> None:
        for app in (old, new):
            assert step(app, "/show").get_json() == {"user": expected_user, "cart": expected_cart}

    step(old, "/login/ann")  # login on an old instance
    seen("ann", [])
    step(new, "/cart/apple")  # cart changes on each side
    seen("ann", ["apple"])
    step(old, "/cart/pear")
    seen("ann", ["apple", "pear"])
    step(new, "/login/ann")  # a login on a new instance regenerates the ID
    seen("ann", ["apple", "pear"])
    step(new, "/logout")
    seen(None, [])
    step(old, "/login/cy")  # a fresh login on an old instance
    step(old, "/cart/fig")
    seen("cy", ["fig"])
    step(new, "/login/dee")  # and on a new one
    seen("dee", ["fig"])
    step(old, "/logout")  # logged out on an old instance: out on the new ones too
    seen(None, [])


def login_old(client: redis.Redis, user: str = "ann", **extra: Any) -> tuple[Flask, str]:
    old = old_app(client, **extra)
    browser = old.test_client()
    browser.get(f"/login/{user}")
    return old, cookie_of(browser)


def test_a_revoked_adopted_session_is_never_adopted_again(client: redis.Redis) -> None:
    from sharedsession.cli import main

    old, cookie = login_old(client)
    from click.testing import CliRunner

    url = f"redis://127.0.0.1:{client.connection_pool.connection_kwargs['port']}/0"
    args = ["--store", url, "--prefix", PREFIX, "migrate", "--from", "flask-session"]
    assert CliRunner().invoke(main, args).exit_code == 0  # copied, source kept
    new = new_app(client)
    ext = new.extensions["sharedsession"]
    with new.app_context():
        assert ext.revoke_user("ann") == 1  # adopted sessions are bound to their user
    assert visit(new, cookie, "/show")[0].get_json()["user"] is None


def test_rolling_sessions_are_cleaned_up_after_rolling_mode_ends(client: redis.Redis) -> None:
    rolling = new_app(client, SESSION_MIGRATE_ROLLING=True)
    browser = rolling.test_client()
    browser.get("/login/eve")
    cookie = cookie_of(browser)
    sid = cookie
    data = flask_session_data(client, sid)
    assert data["user"] == "eve" and data["_permanent"] is True  # old instances keep it
    after = new_app(client)  # the deploy is done: rolling mode off
    visit(after, cookie, "/logout")
    assert client.exists(PREFIX + sid) == 0
    assert visit(after, cookie, "/show")[0].get_json()["user"] is None


def flask_session_data(client: redis.Redis, sid: str) -> dict[str, Any]:
    import msgspec

    blob = client.get(PREFIX + sid)
    assert blob is not None
    decoded: dict[str, Any] = msgspec.msgpack.decode(blob)  # type: ignore[arg-type]
    return decoded


def test_rolling_reads_keep_the_old_copy_alive(client: redis.Redis) -> None:
    import time

    old, cookie = login_old(client, PERMANENT_SESSION_LIFETIME=2)
    new = new_app(client, PERMANENT_SESSION_LIFETIME=2, SESSION_MIGRATE_ROLLING=True)
    for _ in range(4):  # read-only browsing on new instances for longer than the lifetime
        assert visit(new, cookie, "/show")[0].get_json()["user"] == "ann"
        time.sleep(0.7)
    assert visit(old, cookie, "/show")[0].get_json()["user"] == "ann"


def test_rolling_keeps_concurrent_changes_and_rich_types(client: redis.Redis) -> None:
    from sharedsession import _driver
    from sharedsession.flask import FlaskSession

    old, cookie = login_old(client)
    new = new_app(client, SESSION_MIGRATE_ROLLING=True)
    interface: Any = new.session_interface
    first, second = (
        interface.manager.open(cookie, interface._loader, session_class=FlaskSession)
        for _ in range(2)
    )
    first["cart"] = ["apple"]  # two overlapping requests change different keys
    second["theme"] = ("dark", 2)
    _driver.save(interface.store, interface.manager, first)
    _driver.save(interface.store, interface.manager, second)
    copy = flask_session_data(client, cookie)
    assert copy["cart"] == ["apple"] and copy["theme"] == ["dark", 2]  # both kept
    reread = interface.manager.open(cookie, interface._loader, session_class=FlaskSession)
    assert reread["theme"] == ("dark", 2)  # still a tuple here
    assert visit(old, cookie, "/show")[0].get_json()["cart"] == ["apple"]


def test_encryption_turns_adoption_off_by_default(client: redis.Redis) -> None:
    from sharedsession.crypto import generate_key

    old, cookie = login_old(client, SESSION_USE_SIGNER=False)
    new = new_app(client, SESSION_ENCRYPTION_KEYS=[generate_key()])
    assert (
        visit(new, cookie, "/show")[0].get_json()["user"] is None
    )  # a planted copy is not adopted


def test_the_adopting_request_slides_the_idle_deadline(client: redis.Redis) -> None:
    old, cookie = login_old(client)
    client.pexpire(PREFIX + cookie, 2000)  # nearly expired in Flask-Session
    new = new_app(client)
    response, _ = visit(new, cookie, "/show")
    name = f"{PREFIX}{{{_digest(cookie)}}}"
    assert client.pttl(name) > 3600 * 1000  # a full lifetime
    # The browser holds Flask-Session's nearly expired cookie: ours goes out
    # with the deadline the adoption set, also from a read.
    set_cookie = response.headers.get("Set-Cookie")
    assert set_cookie is not None
    sent = parsedate_to_datetime(set_cookie.split("Expires=")[1].split(";")[0])
    stored = client.hget(name, ":expires")
    assert isinstance(stored, bytes)
    assert sent.timestamp() == int(float(stored))


def test_a_request_racing_an_adoption_is_served_not_logged_out(client: redis.Redis) -> None:
    from sharedsession import _flows
    from sharedsession._driver import run

    old, cookie = login_old(client)
    new = new_app(client)
    interface: Any = new.session_interface
    flow = _flows.load(interface.manager, cookie)
    first = flow.send(None)
    assert isinstance(first, _flows.Load)
    # Request B found nothing here; request A now adopts the session (and deletes
    # Flask-Session's key) before B looks at Flask-Session's copy.
    assert visit(new, cookie, "/show")[0].get_json()["user"] == "ann"

    def rest(reply: Any) -> Any:
        op = flow.send(reply)

        def replay() -> Any:
            answer = yield op
            return (yield from _continue(flow, answer))

        return run(interface.store, replay())

    record, _, sid = rest(None)
    assert record is not None and sid == cookie


def _continue(flow: Any, reply: Any) -> Any:
    while True:
        try:
            op = flow.send(reply)
        except StopIteration as stop:
            return stop.value
        reply = yield op


def test_rolling_mode_keeps_the_renewal_grace_window(client: redis.Redis) -> None:
    import time

    new = new_app(client, SESSION_MIGRATE_ROLLING=True, SESSION_RENEWAL_INTERVAL=0.3)
    browser = new.test_client()
    browser.get("/login/ann")
    before = cookie_of(browser)
    time.sleep(0.35)
    browser.get("/show")  # renews the ID
    after = cookie_of(browser)
    assert after != before
    response, sent = visit(new, before, "/show")  # a tab that raced the renewal
    assert response.get_json()["user"] == "ann" and sent == after
    assert flask_session_data(client, after)["user"] == "ann"  # old instances follow too
