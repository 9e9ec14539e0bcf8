"""Flask-Login (the real one): login regenerates and binds, logout destroys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_login import LoginManager  # type: ignore[import-untyped]
from flask_login import UserMixin
from flask_login import login_user
from flask_login import logout_user

from sharedsession.flask import Session
from sharedsession.flask import session
from tests.integration.conftest import KINDS
from tests.integration.conftest import store_config


class User(UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def login_app(config: dict[str, Any]) -> tuple[Flask, Session]:
    app = Flask("login-app")
    app.config.update({"SECRET_KEY": "s", **config})
    ext = Session(app)  # before LoginManager, as app factories often do
    manager = LoginManager(app)
    manager.user_loader(User)

    @app.get("/login/<user_id>")
    def login(user_id: str) -> str:
        login_user(User(user_id), remember=True)
        return "ok"

    @app.get("/logout")
    def logout() -> str:
        logout_user()
        return "bye"

    @app.get("/me")
    def me() -> str:
        return repr((session.get("_user_id"), session.user_id))

    @app.get("/others")
    def others() -> str:
        user = session.user_id
        assert user is not None
        return str(ext.revoke_user(user, keep=session))

    return app, ext


@pytest.mark.parametrize("kind", KINDS)
def test_login_regenerates_and_binds_logout_destroys(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    app, ext = login_app(store_config(kind, request, tmp_path))
    laptop, phone = app.test_client(), app.test_client()
    laptop.get("/me")  # a visitor's session, before login
    laptop.get("/login/7")
    phone.get("/login/7")
    before_login = app.test_client()
    assert laptop.get("/me").text == "('7', '7')"
    with app.app_context():
        assert len(ext.sessions_for_user("7")) == 2
    # "Log out other devices" works with no change to the app.
    assert laptop.get("/others").text == "1"
    assert phone.get("/me").text == "(None, None)"
    old = laptop.get_cookie("session")
    assert old is not None
    response = laptop.get("/logout")
    cleared = response.headers.get_all("Set-Cookie")
    assert any(c.startswith("remember_token=;") for c in cleared)  # remember-me cleared too
    stale = app.test_client()
    stale.set_cookie("session", old.value)
    assert stale.get("/me").text == "(None, None)"  # destroyed, not just emptied
    assert before_login.get("/me").text == "(None, None)"


def test_login_changes_the_session_id(tmp_path: Path) -> None:
    app, _ = login_app({"SESSION_TYPE": "memory"})
    client = app.test_client()
    client.get("/me")
    client.get("/login/8")  # needs a session cookie first: fixation defence
    planted = client.get_cookie("session")
    assert planted is not None
    client.get("/login/8")
    after = client.get_cookie("session")
    assert after is not None and after.value != planted.value


def test_flask_login_hooks_can_be_turned_off() -> None:
    app, _ = login_app({"SESSION_TYPE": "memory", "SESSION_FLASK_LOGIN": False})
    client = app.test_client()
    client.get("/login/9")
    assert client.get("/me").text == "('9', None)"  # not bound
