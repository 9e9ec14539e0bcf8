"""A small Flask app used by the adapter tests, one per "instance"."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from flask import Flask
from flask import flash
from flask import get_flashed_messages
from flask import jsonify

from sharedsession.flask import Session
from sharedsession.flask import session
from sharedsession.stores.base import SessionStore


def make_app(
    name: str = "a", store: SessionStore | None = None, **config: Any
) -> tuple[Flask, Session]:
    app = Flask(f"instance-{name}")
    app.config.update({"SECRET_KEY": "test-secret", "SESSION_TYPE": "memory", **config})
    ext = Session(app, store=store)

    @app.get("/untouched")
    def untouched() -> str:
        return f"served by {name}"

    @app.get("/get/<key>")
    def get(key: str) -> str:
        return repr(session.get(key))

    @app.get("/set/<key>/<value>")
    def set_(key: str, value: str) -> str:
        session[key] = value
        return "ok"

    @app.get("/del/<key>")
    def delete(key: str) -> str:
        session.pop(key, None)
        return "ok"

    @app.get("/append/<item>")
    def append(item: str) -> str:
        session.setdefault("cart", []).append(item)
        return repr(session["cart"])

    @app.get("/clear")
    def clear() -> str:
        session.clear()
        return "ok"

    @app.get("/sid")
    def sid() -> str:
        return str(session.sid)

    @app.get("/temporary")
    def temporary() -> str:
        session.permanent = False
        session["t"] = 1
        return "ok"

    @app.get("/flash/<message>")
    def flash_(message: str) -> str:
        flash(message)
        return "ok"

    @app.get("/flashes")
    def flashes() -> str:
        return repr(get_flashed_messages())

    @app.get("/login/<user>")
    def login(user: str) -> str:
        session.bind_user(user)
        session["user"] = user
        return "ok"

    @app.get("/logout")
    def logout() -> str:
        session.destroy()
        return "ok"

    @app.get("/regenerate")
    def regenerate() -> str:
        session.regenerate()
        return "ok"

    @app.get("/devices")
    def devices() -> list[dict[str, Any]]:
        user = session.user_id
        return [
            {"handle": i.handle, "client": dict(i.client), "created": i.created}
            for i in ext.sessions_for_user(user or "-")
        ]

    @app.get("/logout-others")
    def logout_others() -> str:
        user = session.user_id
        assert user is not None
        return str(ext.revoke_user(user, keep=session))

    @app.get("/json")
    def as_json() -> Any:
        assert isinstance(session, dict)
        return jsonify(session._get_current_object())  # type: ignore[attr-defined]

    @app.get("/json-dumps")
    def json_dumps() -> str:
        return json.dumps(session._get_current_object(), sort_keys=True)  # type: ignore[attr-defined]

    @app.get("/fail/<key>")
    def fail(key: str) -> tuple[str, int]:
        session[key] = "half-done"
        return "failed", 500

    @app.get("/many/<int:n>")
    def many(n: int) -> str:
        session.update({f"k{i}": i for i in range(n)})
        return "ok"

    @app.get("/count")
    def count() -> str:
        return str(len(session))

    @app.get("/whoami")
    def whoami() -> str:
        return repr(session.user_id)

    @app.get("/bad")
    def bad() -> str:
        session["obj"] = object()
        return "ok"

    return app, ext


def cookie_of(client: Any) -> str:
    """The session cookie a test client holds."""
    found = client.get_cookie("session")
    assert found is not None
    return str(found.value)


def visit(app: Flask, cookie: str, path: str) -> tuple[int, str, str | None]:
    """GET ``path`` from a fresh client holding ``cookie``: status, body, Set-Cookie."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    response = client.get(path)
    return response.status_code, response.text, response.headers.get("Set-Cookie")


def assert_later_expiry(created: str, refreshed: str | None) -> None:
    """``refreshed`` (a ``Set-Cookie`` header) is ``created``'s cookie, the ID
    the browser has, with a later ``Expires``."""
    assert refreshed is not None
    assert refreshed.split(";")[0] == created.split(";")[0]
    assert _expires(refreshed) > _expires(created)


def _expires(set_cookie: str) -> dt.datetime:
    found = re.search(r"Expires=([^;]+)", set_cookie)
    assert found is not None, set_cookie
    return parsedate_to_datetime(found.group(1))


def session_cookie(app: Flask, path: str = "/set/user/alice") -> str:
    """The cookie of a new session that ``path`` wrote."""
    client = app.test_client()
    client.get(path)
    return cookie_of(client)


def drained(sent: list[str]) -> Callable[[], list[str]]:
    """Take what a counting client recorded in ``sent`` since the last take."""

    def take() -> list[str]:
        taken = list(sent)
        sent.clear()
        return taken

    return take


def sent_by(app: Flask, path: str, cookie: str | None, take: Callable[[], list[str]]) -> list[str]:
    """What reached the store for one GET of ``path`` (``take`` returns what was sent
    since its last call): the round trips a request costs."""
    client = app.test_client()
    if cookie:
        client.set_cookie("session", cookie)
    take()
    assert client.get(path).status_code == 200
    return take()


def trips(sent: list[str], app: Flask, path: str, cookie: str | None = None) -> list[str]:
    """What a client recording into ``sent`` saw reach the store for one GET of ``path``."""
    return sent_by(app, path, cookie, drained(sent))
