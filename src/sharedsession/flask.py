"""Flask adapter: ``Session(app)`` with Flask-Session's config keys.

Flask calls ``open_session`` and ``save_session`` synchronously, so this
adapter always uses a blocking store.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask import Request
from flask import Response
from flask import current_app
from flask import has_app_context
from flask.sessions import SessionInterface as FlaskSessionInterface
from flask.sessions import SessionMixin

from . import session as _session
from ._config import Settings
from .errors import StoreUnavailable
from .ids import store_key
from .manager import Cookie
from .manager import SessionManager
from .stores.base import Record
from .stores.base import Refresh
from .stores.base import SessionInfo
from .stores.base import SessionStore

logger = logging.getLogger("sharedsession")

#: The body of the 503 response sent when the store cannot be reached.
UNAVAILABLE_MESSAGE = "Sessions are unavailable right now; please try again shortly."


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
        cookie = request.cookies.get(self.get_cookie_name(app))
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
        if session.accessed:
            response.vary.add("Cookie")
            # Never let a shared cache keep or serve one user's session-bearing page.
            response.cache_control.public = False
            response.cache_control.private = True
        if not session.loaded:
            return
        plan = self.manager.save_plan(session)
        result = None
        try:
            if plan.delete is not None:
                self.store.delete(plan.delete)
            if plan.changes is not None and plan.key is not None:
                result = self.store.apply(plan.key, plan.changes)
        except StoreUnavailable as exc:
            if self.manager.degrade:
                logger.warning("session store unavailable, session not saved: %s", _cause(exc))
                return
            _log_unavailable(exc, "save")
            _make_unavailable(response)
            return
        self._send_cookie(app, response, plan.cookie_after(result))

    def _send_cookie(self, app: Flask, response: Response, cookie: Cookie | None) -> None:
        if cookie is None:
            return
        name = self.get_cookie_name(app)
        options: dict[str, Any] = {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app),
            "samesite": self.get_cookie_samesite(app),
            "httponly": self.get_cookie_httponly(app),
            "partitioned": self.get_cookie_partitioned(app),
        }
        if cookie.value is None:
            response.delete_cookie(name, **options)
        else:
            response.set_cookie(name, cookie.value, expires=cookie.expires, **options)


def _cause(exc: StoreUnavailable) -> BaseException:
    # The backend's error says what failed (refused, timed out) and never holds a session ID.
    return exc.original_error or exc


def _log_unavailable(exc: StoreUnavailable, stage: str) -> None:
    logger.error("session store unavailable during %s: %s", stage, _cause(exc))


def _make_unavailable(response: Response) -> None:
    response.status_code = 503
    response.set_data(UNAVAILABLE_MESSAGE)
    response.mimetype = "text/plain"
    response.headers.pop("Set-Cookie", None)
    response.headers["Retry-After"] = "5"


def _unavailable_handler(exc: StoreUnavailable) -> tuple[str, int, dict[str, str]]:
    _log_unavailable(exc, "load")
    return UNAVAILABLE_MESSAGE, 503, {"Content-Type": "text/plain", "Retry-After": "5"}


class Session:
    """Server-side sessions for a Flask app, configured like Flask-Session.

    :param app: The app to set up now; or call :meth:`init_app` later.
    :param store: A store to use instead of the one ``SESSION_TYPE`` names,
        for instance a custom store.
    """

    def __init__(self, app: Flask | None = None, *, store: SessionStore | None = None) -> None:
        self._store = store
        #: The app's session policy, set by :meth:`init_app`.
        self.manager: SessionManager | None = None
        #: The app's store, set by :meth:`init_app`.
        self.store: SessionStore | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, store: SessionStore | None = None) -> None:
        """Install server-side sessions into ``app``.

        :raises ConfigurationError: A config key has a value that cannot work.
        """
        settings = Settings.from_mapping(app.config, instance_path=app.instance_path)
        self.manager = settings.manager()
        self.store = store or self._store or settings.store()
        interface = SessionInterface(self.manager, self.store, track_client=settings.track_client)
        app.session_interface = interface
        app.extensions["sharedsession"] = interface
        app.register_error_handler(StoreUnavailable, _unavailable_handler)
        if not app.config.get("SESSION_COOKIE_SECURE") and not (app.debug or app.testing):
            logger.warning(
                "SESSION_COOKIE_SECURE is off: the session cookie will also be sent over plain"
                " HTTP, where anyone on the network can read it and take over the session."
                " Set SESSION_COOKIE_SECURE = True when the app is served over HTTPS."
            )

    def _require_store(self) -> SessionStore:
        # With one extension object and several apps, the current app's store.
        if has_app_context() and "sharedsession" in current_app.extensions:
            store: SessionStore = current_app.extensions["sharedsession"].store
            return store
        if self.store is None:
            raise RuntimeError("call Session.init_app(app) before managing sessions")
        return self.store

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        """The live sessions bound to ``user_id`` ("your devices"), oldest first.

        Each has an ID-free ``handle`` for :meth:`revoke`.
        """
        return self._require_store().sessions_for_user(_user(user_id))

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
        kept = handles_of(keep)
        ended = [info.handle for info in store.sessions_for_user(_user(user_id))]
        for handle in ended:
            if handle not in kept:
                store.delete(handle)
        return len([handle for handle in ended if handle not in kept])


def _user(user_id: str) -> str:
    if type(user_id) is not str or not user_id:
        raise TypeError(f"user_id must be a non-empty str, got {user_id!r}")
    return user_id


def handles_of(keep: _session.Session | str | None) -> set[str]:
    """The handles that name ``keep``: before and after a regeneration in this request."""
    if keep is None:
        return set()
    if isinstance(keep, str):
        return {keep}
    return {store_key(sid) for sid in (keep.sid, keep.stored_sid) if sid is not None}
