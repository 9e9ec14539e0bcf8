"""Quart adapter: ``Session(app)`` with the same config keys as the Flask adapter.

Quart opens the session before the handler runs and the handler then uses it
synchronously, so a request that carries a session cookie loads it (one round
trip) even when the handler never touches it. A store outage during that load
does not fail the request up front: the session raises ``StoreUnavailable``
(a 503) only if the handler uses it.
"""

from __future__ import annotations

import inspect
from typing import Any
from typing import cast

from flask.sessions import SessionMixin
from quart import Quart
from quart import Response
from quart import current_app
from quart import has_app_context
from quart import session as _quart_session
from quart.sessions import SessionInterface as QuartSessionInterface

from . import session as _session
from ._config import Settings
from ._driver import aload
from ._driver import asave
from ._driver import degrades
from ._werkzeug import Extension
from ._werkzeug import cookie_attributes
from ._werkzeug import mark_used
from ._werkzeug import on_save_error
from ._werkzeug import send_cookie
from .admin import AsyncSessionAdmin
from .cookies import UNAVAILABLE_MESSAGE
from .cookies import client_info
from .cookies import read_cookie
from .errors import StoreUnavailable
from .manager import SessionManager
from .stores.base import AsyncSessionStore
from .stores.base import SessionInfo


class QuartSession(_session.Session, SessionMixin):  # type: ignore[override]
    """``quart.session`` when this extension is active (see ``FlaskSession``)."""


#: ``quart.session``, typed as :class:`QuartSession` (the same proxy object).
session = cast(QuartSession, _quart_session)


class SessionInterface(QuartSessionInterface):
    """Connects Quart's session hooks to a :class:`SessionManager` and an async store."""

    def __init__(
        self, manager: SessionManager, store: AsyncSessionStore, *, track_client: bool = False
    ) -> None:
        self.manager = manager
        self.store = store
        self.track_client = track_client

    async def open_session(self, app: Quart, request: Any) -> QuartSession:
        # HTTP/2 may split the Cookie header into several fields: read them all.
        cookie = read_cookie(request.headers.getlist("Cookie"), self.get_cookie_name(app))
        client = None
        if self.track_client:
            client = client_info(request.headers.get("User-Agent"), request.remote_addr)
        session = self.manager.open(cookie, session_class=QuartSession, client=client)
        # Quart hands the handler a session it uses synchronously: load it now.
        await aload(self.manager, self.store, session, defer=True)
        return session

    def regenerate(self, session: SessionMixin) -> None:
        """Give ``session`` a new ID at the end of this request (Flask-Session's API)."""
        assert isinstance(session, _session.Session)
        session.regenerate()

    async def save_session(
        self, app: Quart, session: SessionMixin, response: Response | Any | None
    ) -> None:
        assert isinstance(session, QuartSession)
        if response is None:  # a websocket: no cookie can be set
            return
        mark_used(response, session)
        try:
            cookie = await asave(self.store, self.manager, session, status=response.status_code)
        except StoreUnavailable as exc:
            if on_save_error(exc, response, degrades(self.manager, session)):
                done = response.set_data(UNAVAILABLE_MESSAGE)  # Quart's is async, werkzeug's not
                if inspect.isawaitable(done):
                    await done
            cookie = self.manager.cookie_unsaved(session)
        if cookie is not None:
            send_cookie(cookie_attributes(self, app), response, cookie)


class Session(Extension[AsyncSessionStore]):
    """Server-side sessions for a Quart app, configured like the Flask adapter.

    :param app: The app to set up now; or call :meth:`init_app` later.
    :param store: An async store to use instead of the one ``SESSION_TYPE`` names.
    """

    def _default_store(self, settings: Settings) -> AsyncSessionStore:
        return settings.async_store()

    def _interface(self, store: AsyncSessionStore, settings: Settings) -> SessionInterface:
        assert self.manager is not None
        return SessionInterface(self.manager, store, track_client=settings.track_client)

    def _current_app(self) -> Quart | None:
        return current_app if has_app_context() else None

    @property
    def admin(self) -> AsyncSessionAdmin:
        """Administration of the current app's sessions (coroutines)."""
        interface: SessionInterface = self._require_interface()
        return AsyncSessionAdmin(interface.store, interface.manager)

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        """The live sessions bound to ``user_id``, oldest first."""
        return await self.admin.sessions_for_user(user_id)

    async def revoke(self, handle: str) -> bool:
        """End the session with this handle at once; whether there was one."""
        return await self.admin.revoke(handle)

    async def revoke_user(self, user_id: str, *, keep: _session.Session | str | None = None) -> int:
        """End every session of ``user_id`` but ``keep``; return how many ended."""
        return await self.admin.revoke_user(user_id, keep=keep)
