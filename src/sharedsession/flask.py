"""Flask adapter: ``Session(app)`` with Flask-Session's config keys.

Flask calls ``open_session`` and ``save_session`` synchronously, so this
adapter always uses a blocking store. ``flask.session`` is typed as Flask's
``SessionMixin``; import :data:`session` from here for the same object typed
with this library's methods::

    from sharedsession.flask import session

    session.bind_user(user.id)
"""

from __future__ import annotations

import functools
from typing import cast

from flask import Flask
from flask import Request
from flask import Response
from flask import current_app
from flask import has_app_context
from flask import session as _flask_session
from flask.sessions import SessionInterface as FlaskSessionInterface
from flask.sessions import SessionMixin

from . import _flask_login
from . import session as _session
from ._config import Settings
from ._driver import degrades
from ._driver import loader
from ._driver import save
from ._werkzeug import Extension
from ._werkzeug import cookie_attributes
from ._werkzeug import mark_used
from ._werkzeug import on_save_error
from ._werkzeug import send_cookie
from .admin import SessionAdmin
from .cookies import UNAVAILABLE_MESSAGE
from .cookies import client_info
from .cookies import read_cookie
from .errors import StoreUnavailable
from .manager import SessionManager
from .stores.base import SessionInfo
from .stores.base import SessionStore
from .stores.base import writes_keys


class FlaskSession(_session.Session, SessionMixin):  # type: ignore[override]
    """``flask.session`` when this extension is active: a ``dict`` plus ``sid``,
    ``regenerate()``, ``destroy()``, ``bind_user()`` and ``user_id``."""


#: ``flask.session``, typed as :class:`FlaskSession` (the same proxy object).
session = cast(FlaskSession, _flask_session)


class SessionInterface(FlaskSessionInterface):
    """Connects Flask's session hooks to a :class:`SessionManager` and a store.

    Cookie attributes are read through Flask's ``get_cookie_*`` hooks on every
    request, so a subclass or a config change behaves as with Flask's own
    interface.

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
        self._loader = loader(manager, store)
        self._unread = writes_keys(store)

    def open_session(self, app: Flask, request: Request) -> FlaskSession:
        cookie = functools.partial(
            read_cookie, request.environ.get("HTTP_COOKIE"), self.get_cookie_name(app)
        )
        client = None
        if self.track_client:
            client = client_info(request.user_agent.string, request.remote_addr)
        return self.manager.open(
            cookie, self._loader, session_class=FlaskSession, client=client, unread=self._unread
        )

    def regenerate(self, session: SessionMixin) -> None:
        """Give ``session`` a new ID at the end of this request (Flask-Session's API)."""
        assert isinstance(session, _session.Session)
        session.regenerate()

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, FlaskSession)
        if _session.untouched(session):
            return
        mark_used(response, session)
        if not _session.state(session).used:
            return
        try:
            cookie = save(self.store, self.manager, session, status=response.status_code)
        except StoreUnavailable as exc:
            if on_save_error(exc, response, degrades(self.manager, session)):
                response.set_data(UNAVAILABLE_MESSAGE)
            cookie = self.manager.cookie_unsaved(session)
        if cookie is not None:
            send_cookie(cookie_attributes(self, app), response, cookie)


class Session(Extension[SessionStore]):
    """Server-side sessions for a Flask app, configured like Flask-Session.

    After ``init_app``, ``app.extensions["sharedsession"]`` is this object.

    :param app: The app to set up now; or call :meth:`init_app` later.
    :param store: A store to use instead of the one ``SESSION_TYPE`` names,
        for instance a custom store.
    """

    def _default_store(self, settings: Settings) -> SessionStore:
        return settings.store()

    def _interface(self, store: SessionStore, settings: Settings) -> SessionInterface:
        assert self.manager is not None
        return SessionInterface(self.manager, store, track_client=settings.track_client)

    def init_app(self, app: Flask, *, store: SessionStore | None = None) -> None:
        """Install server-side sessions into ``app`` (and bind Flask-Login's logins).

        :raises ConfigurationError: A config key has a value that cannot work.
        """
        super().init_app(app, store=store)
        if app.config.get("SESSION_FLASK_LOGIN", True):
            _flask_login.connect(app)
        try:
            from .cli import flask_commands
        except ImportError:  # click comes with Flask; this is for stripped installs
            return
        if "sessions" not in app.cli.commands:
            app.cli.add_command(flask_commands())

    def _current_app(self) -> Flask | None:
        return current_app if has_app_context() else None

    @property
    def admin(self) -> SessionAdmin:
        """Administration of the current app's sessions (see :mod:`sharedsession.admin`)."""
        interface: SessionInterface = self._require_interface()
        return SessionAdmin(interface.store, interface.manager)

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        """The live sessions bound to ``user_id`` ("your devices"), oldest first.

        Each has an ID-free ``handle`` for :meth:`revoke`, which keeps naming
        the device when its session gets a new ID.
        """
        return self.admin.sessions_for_user(user_id)

    def revoke(self, handle: str) -> bool:
        """End the session with this handle at once, wherever it is in use;
        whether there was one to end."""
        return self.admin.revoke(handle)

    def revoke_user(self, user_id: str, *, keep: _session.Session | str | None = None) -> int:
        """End every session of ``user_id`` ("log out everywhere").

        :param keep: A session (e.g. ``flask.session``, "log out other devices")
            or a handle that stays.
        :returns: How many sessions were ended.
        """
        return self.admin.revoke_user(user_id, keep=keep)
