"""What the Flask and Quart adapters share: both answer with werkzeug responses
and read cookie settings through ``get_cookie_*`` hooks of the same shape."""

from __future__ import annotations

import logging
from typing import Any
from typing import Generic
from typing import TypeVar

from ._config import Settings
from ._driver import UNAVAILABLE_MESSAGE
from ._driver import log_not_saved
from ._driver import log_unavailable
from .cookies import CookieAttributes
from .errors import StoreUnavailable
from .manager import Cookie
from .manager import SessionManager
from .session import Session

logger = logging.getLogger("sharedsession")


# Responses are werkzeug's (Flask) or werkzeug sans-IO ones (Quart): typed Any.


def mark_used(response: Any, session: Session) -> None:
    """``Vary: Cookie`` and ``Cache-Control: private`` when the session was used."""
    if not session.accessed:
        return
    headers = response.headers
    # Plain header writes when the app set none: werkzeug's parsed views cost more.
    if "Vary" in headers:
        response.vary.add("Cookie")
    else:
        headers["Vary"] = "Cookie"
    if "Cache-Control" in headers:
        # Never let a shared cache keep or serve one user's session-bearing page.
        response.cache_control.public = False
        response.cache_control.private = True
    else:
        headers["Cache-Control"] = "private"


def cookie_attributes(interface: Any, app: Any) -> CookieAttributes:
    """The session cookie's attributes from the app's ``get_cookie_*`` hooks."""
    return CookieAttributes(
        interface.get_cookie_name(app),
        path=interface.get_cookie_path(app),
        domain=interface.get_cookie_domain(app),
        secure=interface.get_cookie_secure(app),
        httponly=interface.get_cookie_httponly(app),
        samesite=interface.get_cookie_samesite(app) or "Lax",
        partitioned=interface.get_cookie_partitioned(app),
    )


def send_cookie(attributes: CookieAttributes, response: Any, cookie: Cookie) -> None:
    """Set or delete the session cookie."""
    response.headers.add("Set-Cookie", attributes.set_cookie(cookie))


def on_save_error(exc: StoreUnavailable, response: Any, degrade: bool) -> bool:
    """Fail closed or, when degrading, log and go on.

    :returns: Whether the response became a 503; the caller sets
        :data:`UNAVAILABLE_MESSAGE` as its body.
    """
    if degrade:
        log_not_saved(exc)
        return False
    log_unavailable(exc, "save")
    response.status_code = 503
    response.mimetype = "text/plain"
    response.headers.pop("Set-Cookie", None)
    response.headers["Retry-After"] = "5"
    return True


def unavailable_handler(exc: StoreUnavailable) -> tuple[str, int, dict[str, str]]:
    """The error handler for :class:`StoreUnavailable` raised while a handler ran."""
    log_unavailable(exc, "load")
    return UNAVAILABLE_MESSAGE, 503, {"Content-Type": "text/plain", "Retry-After": "5"}


StoreT = TypeVar("StoreT")


class Extension(Generic[StoreT]):
    """What the Flask and Quart extension objects share: set-up from config.

    :param app: The app to set up now; or call :meth:`init_app` later.
    :param store: A store to use instead of the one ``SESSION_TYPE`` names,
        for instance a custom store.
    """

    def __init__(self, app: Any = None, *, store: StoreT | None = None) -> None:
        self._store = store
        #: The app's session policy, set by :meth:`init_app`.
        self.manager: SessionManager | None = None
        #: The app's store, set by :meth:`init_app`.
        self.store: StoreT | None = None
        if app is not None:
            self.init_app(app)

    def _default_store(self, settings: Settings) -> StoreT:
        raise NotImplementedError

    def _interface(self, store: StoreT, settings: Settings) -> Any:
        raise NotImplementedError

    def _current_app(self) -> Any:
        """The app of the active app context, or ``None``."""
        raise NotImplementedError

    def _require_store(self) -> StoreT:
        # With one extension object and several apps, the current app's store.
        app = self._current_app()
        if app is not None and "sharedsession" in app.extensions:
            store: StoreT = app.extensions["sharedsession"].store
            return store
        if self.store is None:
            raise RuntimeError("call Session.init_app(app) before managing sessions")
        return self.store

    def init_app(self, app: Any, *, store: StoreT | None = None) -> None:
        """Install server-side sessions into ``app``.

        :raises ConfigurationError: A config key has a value that cannot work.
        """
        settings = Settings.from_mapping(app.config, instance_path=app.instance_path)
        self.manager = settings.manager()
        self.store = store or self._store or self._default_store(settings)
        interface = self._interface(self.store, settings)
        app.session_interface = interface
        app.extensions["sharedsession"] = interface
        app.register_error_handler(StoreUnavailable, unavailable_handler)
        if not app.config.get("SESSION_COOKIE_SECURE") and not (app.debug or app.testing):
            logger.warning(
                "SESSION_COOKIE_SECURE is off: the session cookie will also be sent over plain"
                " HTTP, where anyone on the network can read it and take over the session."
                " Set SESSION_COOKIE_SECURE = True when the app is served over HTTPS."
            )
