"""Flask adapter: ``Session(app)`` with Flask-Session's config keys.

Flask calls ``open_session`` and ``save_session`` synchronously, so this
adapter always uses a blocking store.
"""

from __future__ import annotations

from flask import Flask
from flask import Request
from flask import Response
from flask import current_app
from flask import has_app_context
from flask.sessions import SessionInterface as FlaskSessionInterface
from flask.sessions import SessionMixin

from . import session as _session
from ._config import Settings
from ._driver import UNAVAILABLE_MESSAGE
from ._driver import save
from ._werkzeug import Extension
from ._werkzeug import cookie_attributes
from ._werkzeug import mark_used
from ._werkzeug import on_save_error
from ._werkzeug import send_cookie
from .cookies import read_cookie
from .errors import StoreUnavailable
from .manager import SessionManager
from .manager import check_user_id
from .manager import to_revoke
from .stores.base import Record
from .stores.base import Refresh
from .stores.base import SessionInfo
from .stores.base import SessionStore


class FlaskSession(_session.Session, SessionMixin):  # type: ignore[override]
    """``flask.session`` when this extension is active: a dict plus ``sid``,
    ``regenerate()``, ``destroy()``, ``bind_user()`` and ``user_id``."""


class SessionInterface(FlaskSessionInterface):
    """Connects Flask's session hooks to a :class:`SessionManager` and a store.

    :param manager: Session policy.
    :param store: Where sessions live.
    :param track_client: Remember the user agent and IP address of sessions
        bound to a user, for :meth:`Session.sessions_for_user`.
    """

    def __init__(
        self, manager: SessionManager, store: SessionStore, *, track_client: bool = False
    ) -> None:
        self.manager = manager
        self.store = store
        self.track_client = track_client

    def _load(self, key: str, refresh: Refresh | None) -> Record | None:
        return self.store.load(key, refresh=refresh)

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        cookie = read_cookie(request.environ.get("HTTP_COOKIE"), self.get_cookie_name(app))
        client = None
        if self.track_client:
            client = {
                "agent": request.user_agent.string[:256],
                "ip": request.remote_addr or "",
            }
        return self.manager.open(cookie, self._load, session_class=FlaskSession, client=client)

    def get_cookie_samesite(self, app: Flask) -> str | None:
        """``SESSION_COOKIE_SAMESITE``, with Flask's default ``None`` made ``"Lax"``."""
        return super().get_cookie_samesite(app) or "Lax"

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, FlaskSession)
        mark_used(response, session)
        if not session.used:
            return
        try:
            cookie = save(self.store, self.manager.save_plan(session))
        except StoreUnavailable as exc:
            if on_save_error(exc, response, self.manager.degrade):
                response.set_data(UNAVAILABLE_MESSAGE)
            return
        if cookie is not None:
            send_cookie(cookie_attributes(self, app), response, cookie)


class Session(Extension[SessionStore]):
    """Server-side sessions for a Flask app, configured like Flask-Session.

    :param app: The app to set up now; or call :meth:`init_app` later.
    :param store: A store to use instead of the one ``SESSION_TYPE`` names,
        for instance a custom store.
    """

    def _default_store(self, settings: Settings) -> SessionStore:
        return settings.store()

    def _interface(self, store: SessionStore, settings: Settings) -> SessionInterface:
        assert self.manager is not None
        return SessionInterface(self.manager, store, track_client=settings.track_client)

    def _current_app(self) -> Flask | None:
        return current_app if has_app_context() else None

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        """The live sessions bound to ``user_id`` ("your devices"), oldest first.

        Each has an ID-free ``handle`` for :meth:`revoke`.
        """
        return self._require_store().sessions_for_user(check_user_id(user_id))

    def revoke(self, handle: str) -> None:
        """End the session with this handle at once, wherever it is in use."""
        self._require_store().delete(handle)

    def revoke_user(self, user_id: str, *, keep: _session.Session | str | None = None) -> int:
        """End every session of ``user_id`` ("log out everywhere").

        :param keep: A session (e.g. ``flask.session``, "log out other devices")
            or a handle that stays.
        :returns: How many sessions were ended.
        """
        store = self._require_store()
        doomed = to_revoke(store.sessions_for_user(check_user_id(user_id)), keep)
        for handle in doomed:
            store.delete(handle)
        return len(doomed)
