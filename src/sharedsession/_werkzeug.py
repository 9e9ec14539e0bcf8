"""What the Flask and Quart adapters share: both answer with werkzeug responses,
read cookie settings through ``get_cookie_*`` hooks of the same shape and set
up from the same config keys."""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any
from typing import Generic
from typing import TypeVar

from ._config import Settings
from ._driver import log_not_saved
from ._driver import log_unavailable
from .cookies import UNAVAILABLE_HEADERS
from .cookies import UNAVAILABLE_MESSAGE
from .cookies import UNAVAILABLE_STATUS
from .cookies import CookieAttributes
from .cookies import make_attributes
from .cookies import private_cache_control
from .cookies import vary_cookie
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
    # One pass over the headers (werkzeug's get() and set() each scan them
    # all): every Vary and Cache-Control line is merged, as the ASGI adapter does.
    vary: list[str] = []
    cache: list[str] = []
    for name, value in headers.items():
        low = name.lower()
        if low == "vary":
            vary.append(value)
        elif low == "cache-control":
            cache.append(value)
    if vary:
        headers["Vary"] = vary_cookie(", ".join(vary))
    else:
        headers.add("Vary", "Cookie")
    if cache:
        headers["Cache-Control"] = private_cache_control(", ".join(cache))
    else:
        headers.add("Cache-Control", "private")


def cookie_attributes(interface: Any, app: Any) -> CookieAttributes:
    """The session cookie's attributes from the app's ``get_cookie_*`` hooks, read
    per request as Flask does, normalised and checked as at start-up."""
    return _attributes(
        interface.get_cookie_name(app),
        interface.get_cookie_path(app),
        interface.get_cookie_domain(app),
        interface.get_cookie_secure(app),
        interface.get_cookie_httponly(app),
        interface.get_cookie_samesite(app),
        interface.get_cookie_partitioned(app),
    )


@functools.lru_cache(maxsize=64)
def _attributes(
    name: str,
    path: str,
    domain: str | None,
    secure: bool,
    httponly: bool,
    samesite: str | None,
    partitioned: bool,
) -> CookieAttributes:
    # Hook values rarely change: check and normalise each combination once.
    return make_attributes(
        name,
        path=path,
        domain=domain,
        secure=secure,
        httponly=httponly,
        samesite=samesite,
        partitioned=partitioned,
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
    response.status_code = UNAVAILABLE_STATUS
    response.headers.pop("Set-Cookie", None)
    for name, value in UNAVAILABLE_HEADERS:
        response.headers[name] = value
    return True


def unavailable_handler(exc: StoreUnavailable) -> tuple[str, int, dict[str, str]]:
    """The error handler for :class:`StoreUnavailable` raised while a handler ran."""
    log_unavailable(exc, "load")
    return UNAVAILABLE_MESSAGE, UNAVAILABLE_STATUS, dict(UNAVAILABLE_HEADERS)


StoreT = TypeVar("StoreT")


class Extension(Generic[StoreT]):
    """What the Flask and Quart extension objects share: set-up from config.

    After :meth:`init_app`, ``app.extensions["sharedsession"]`` is this object.

    :param app: The app to set up now; or call :meth:`init_app` later.
    :param store: A store to use instead of the one ``SESSION_TYPE`` names,
        for instance a custom store.
    """

    def __init__(self, app: Any = None, *, store: StoreT | None = None) -> None:
        self._store = store
        #: The session policy of the app set up last; see :meth:`_require_interface`.
        self.manager: SessionManager | None = None
        #: The store of the app set up last.
        self.store: StoreT | None = None
        self._last: Any = None
        if app is not None:
            self.init_app(app)

    def _default_store(self, settings: Settings) -> StoreT:
        raise NotImplementedError

    def _interface(self, store: StoreT, settings: Settings) -> Any:
        raise NotImplementedError

    def _current_app(self) -> Any:
        """The app of the active app context, or ``None``."""
        raise NotImplementedError

    def _require_interface(self) -> Any:
        # With one extension object and several apps, the current app's interface.
        app = self._current_app()
        if app is not None and app.extensions.get("sharedsession") is self:
            return app.session_interface
        if self._last is None:
            raise RuntimeError("call Session.init_app(app) before managing sessions")
        return self._last

    def init_app(self, app: Any, *, store: StoreT | None = None) -> None:
        """Install server-side sessions into ``app``.

        :raises ConfigurationError: A config key has a value that cannot work.
        """
        settings = Settings.from_mapping(app.config, instance_path=app.instance_path)
        self.manager = settings.manager()
        # ``is None``, not truthiness: an empty store is falsy (it has a length).
        chosen = store if store is not None else self._store
        built = chosen if chosen is not None else self._default_store(settings)
        self.manager.migration = settings.migration(built)
        self.store = settings.wrap(built)
        self._last = app.session_interface = self._interface(self.store, settings)
        app.extensions["sharedsession"] = self
        app.register_error_handler(StoreUnavailable, unavailable_handler)
        # In an app context where it is a plain one (Flask): a store on a
        # Flask-SQLAlchemy db finds its engine, and so who shares its sessions.
        context = app.app_context()
        with context if hasattr(context, "__enter__") else contextlib.nullcontext():
            settings.log_warnings(debug=bool(app.debug or app.testing), store=self.store)
