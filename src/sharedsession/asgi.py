"""ASGI middleware: server-side sessions for Starlette, FastAPI and any ASGI app.

``request.session`` (``scope["session"]``) is a :class:`~sharedsession.Session`:
a dict plus ``sid``, ``regenerate()``, ``destroy()`` and ``bind_user()``, with
the semantics of the Flask adapter. Handlers use it synchronously, so an
async store cannot be reached on first use from an ``async def`` handler:

- ``autoload=True`` (the default) loads the session before the app runs when
  the request carries a session cookie: one round trip, even for a route that
  never touches the session. If the store is down then, only a handler that
  uses the session fails (503).
- ``autoload=False`` (or a list of path prefixes to autoload) loads nothing up
  front: ``await load_session(request)`` or the FastAPI dependency loads it,
  and sync (``def``) handlers, which run in a worker thread, load it on first
  use. Routes that never touch the session cost no round trip.

The middleware is pure ASGI. HTTP responses get the cookie, ``Vary: Cookie``
and ``Cache-Control: private`` when the session was used; websocket scopes
get the session (loaded as above) to read on connect, and it is not saved.
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import MutableMapping
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from . import _flows as flows
from ._config import DEFAULT_LIFETIME
from ._config import Settings
from ._driver import aload
from ._driver import arun
from ._driver import asave
from ._driver import degrades
from ._driver import log_not_saved
from ._driver import log_unavailable
from ._flows import Loaded
from .admin import AsyncSessionAdmin
from .cookies import UNAVAILABLE_HEADERS
from .cookies import UNAVAILABLE_MESSAGE
from .cookies import UNAVAILABLE_STATUS
from .cookies import client_info
from .cookies import private_cache_control
from .cookies import read_cookie
from .cookies import vary_cookie
from .errors import SessionNotLoaded
from .errors import StoreUnavailable
from .ids import MIN_ID_BYTES
from .manager import DEFAULT_MAX_KEYS
from .manager import DEFAULT_RENEWAL_GRACE
from .manager import Cookie
from .session import Session
from .stores.base import AsyncSessionStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_STATE = "sharedsession"


class SessionMiddleware:
    """Server-side sessions for an ASGI app.

    The options keep Starlette's names; each takes what its Flask key takes
    (the README's config table) and is checked the same way, with the same
    messages: ``max_age`` is a ``timedelta`` or seconds, ``same_site`` is
    case-insensitive, and so on.

    :param app: The ASGI app.
    :param store: An async store: ``AsyncRedisStore``, ``AsyncSQLiteStore``,
        ``AsyncMemoryStore`` or your own.
    :param secret_key: Sign cookie values with this key (a list: the current
        key first, then older ones still accepted); ``None`` sends bare IDs.
        (``SECRET_KEY``, ``SECRET_KEY_FALLBACKS``, ``SESSION_USE_SIGNER``)
    :param session_cookie: The cookie's name (``SESSION_COOKIE_NAME``).
    :param max_age: Idle timeout; also the cookie's lifetime
        (``PERMANENT_SESSION_LIFETIME``). ``None``: browser-session cookies,
        with the default idle timeout.
    :param path: The cookie's ``Path`` (``SESSION_COOKIE_PATH``).
    :param domain: The cookie's ``Domain`` (``SESSION_COOKIE_DOMAIN``).
    :param same_site: ``"lax"``, ``"strict"`` or ``"none"`` (``SESSION_COOKIE_SAMESITE``).
    :param https_only: Send the cookie with ``Secure`` (``SESSION_COOKIE_SECURE``).
    :param partitioned: Send ``Partitioned`` (``SESSION_COOKIE_PARTITIONED``).
    :param permanent: Send ``Expires`` (``SESSION_PERMANENT``).
    :param refresh_each_request: ``SESSION_REFRESH_EACH_REQUEST``.
    :param absolute_lifetime: Hard cap from creation (``SESSION_ABSOLUTE_LIFETIME``).
    :param renewal: Rotate a live session's ID this often (``SESSION_RENEWAL_INTERVAL``).
    :param renewal_grace: How long a renewed ID still leads to its successor
        (``SESSION_RENEWAL_GRACE``).
    :param max_size: Refuse to save sessions over this many bytes (``SESSION_MAX_SIZE``).
    :param max_keys: Refuse to save sessions with more keys (``SESSION_MAX_KEYS``).
    :param encryption_keys: Encrypt stored values (``SESSION_ENCRYPTION_KEYS``).
    :param on_store_error: ``"fail"`` (503) or ``"degrade"`` (``SESSION_ON_STORE_ERROR``).
    :param track_client: Remember user agent and IP of sessions bound to a
        user (``SESSION_TRACK_CLIENT``).
    :param id_length: Bytes of randomness in new IDs (``SESSION_ID_LENGTH``).
    :param migrate_from: ``"flask-session"`` adopts Flask-Session's sessions
        from the same Redis (``SESSION_MIGRATE_FROM``; off by default here).
    :param migrate_rolling: Keep Flask-Session's copies current during a
        rolling deploy (``SESSION_MIGRATE_ROLLING``).
    :param metrics: Export Prometheus metrics (``SESSION_METRICS``).
    :param store_wrapper: Wrap the store (``SESSION_STORE_WRAPPER``), e.g. for tracing.
    :param autoload: ``True``, ``False``, or path prefixes to load up front.
    :param debug: Do not log deployment warnings (an insecure cookie).
    :raises ConfigurationError: An option has a value that cannot work.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: AsyncSessionStore,
        secret_key: str | bytes | Sequence[str | bytes] | None = None,
        session_cookie: str = "session",
        max_age: float | timedelta | None = DEFAULT_LIFETIME,
        path: str = "/",
        domain: str | None = None,
        same_site: str = "lax",
        https_only: bool = False,
        partitioned: bool = False,
        permanent: bool = True,
        refresh_each_request: bool = True,
        absolute_lifetime: float | timedelta | None = None,
        renewal: float | timedelta | None = None,
        renewal_grace: float | timedelta = DEFAULT_RENEWAL_GRACE,
        max_size: int | None = None,
        max_keys: int | None = DEFAULT_MAX_KEYS,
        encryption_keys: Sequence[str | bytes] = (),
        on_store_error: str = "fail",
        track_client: bool = False,
        id_length: int = MIN_ID_BYTES,
        migrate_from: str | None = None,
        migrate_rolling: bool = False,
        metrics: bool = False,
        store_wrapper: Callable[[Any], Any] | None = None,
        autoload: bool | Collection[str] = True,
        debug: bool = False,
    ) -> None:
        settings = Settings.from_options(
            {
                "secret_key": secret_key,
                "session_cookie": session_cookie,
                "max_age": max_age,
                "path": path,
                "domain": domain,
                "same_site": same_site,
                "https_only": https_only,
                "partitioned": partitioned,
                "permanent": permanent,
                "refresh_each_request": refresh_each_request,
                "absolute_lifetime": absolute_lifetime,
                "renewal": renewal,
                "renewal_grace": renewal_grace,
                "max_size": max_size,
                "max_keys": max_keys,
                "encryption_keys": encryption_keys,
                "on_store_error": on_store_error,
                "track_client": track_client,
                "id_length": id_length,
                "migrate_from": migrate_from,
                "migrate_rolling": migrate_rolling,
                "metrics": metrics,
                "store_wrapper": store_wrapper,
            }
        )
        self.app = app
        self.manager = settings.manager()
        self.manager.migration = settings.migration(store)
        self.store = settings.wrap(store)
        #: Administration of these sessions (see :mod:`sharedsession.admin`).
        self.admin = AsyncSessionAdmin(self.store, self.manager)
        self.cookie = settings.cookie
        self.autoload = autoload
        self.track_client = settings.track_client
        settings.log_warnings(debug=debug, store=store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        session = self._open(scope)
        scope["session"] = session
        scope.setdefault("state", {})[_STATE] = self
        if self._autoloads(scope["path"]):
            # A store outage fails only the requests that use the session.
            await aload(self.manager, self.store, session, defer=True)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self._respond(scope, receive, send, session)

    def _open(self, scope: Scope) -> Session:
        headers = scope.get("headers", ())
        fields = [value.decode("latin-1") for key, value in headers if key == b"cookie"]
        cookie = read_cookie(fields, self.cookie.name)
        client = None
        if self.track_client:
            agent = next((v for k, v in headers if k == b"user-agent"), b"")
            address = (scope.get("client") or ("",))[0]
            client = client_info(agent.decode("latin-1"), address)
        # Sync handlers run in a worker thread: they may load on first use.
        session: Session = self.manager.open(cookie, self._load_from_thread, client=client)
        return session

    def _load_from_thread(self, sid: str) -> Loaded:
        import anyio.from_thread

        try:
            loaded: Loaded = anyio.from_thread.run(arun, self.store, flows.load(self.manager, sid))
        except RuntimeError as exc:  # on the event loop's own thread: cannot block it
            raise SessionNotLoaded() from exc
        return loaded

    def _autoloads(self, path: str) -> bool:
        if isinstance(self.autoload, bool):
            return self.autoload
        return any(path.startswith(prefix) for prefix in self.autoload)

    async def load(self, session: Session) -> None:
        """Load ``session`` if it is not loaded yet.

        :raises StoreUnavailable: The store is down and ``on_store_error`` is ``"fail"``.
        """
        await aload(self.manager, self.store, session, defer=False)

    async def _respond(self, scope: Scope, receive: Receive, send: Send, session: Session) -> None:
        """Run the app, saving the session when its response starts."""
        started = dropped = False

        async def send_with_session(message: Message) -> None:
            nonlocal started, dropped
            started = True
            if dropped:
                return
            if message["type"] == "http.response.start":
                try:
                    cookie = await asave(
                        self.store, self.manager, session, status=message["status"]
                    )
                except StoreUnavailable as exc:
                    cookie = self.manager.cookie_unsaved(session)
                    if not degrades(self.manager, session):
                        log_unavailable(exc, "save")
                        dropped = True
                        cookies = [] if cookie is None else [self._set_cookie(cookie)]
                        await _send_unavailable(send, cookies)
                        return
                    log_not_saved(exc)
                headers = list(message.get("headers", ()))
                if session.accessed:
                    headers = _used(headers)
                if cookie is not None:
                    headers.append(self._set_cookie(cookie))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except StoreUnavailable as exc:
            # The handler used a session whose load found the store down.
            if started:
                raise
            log_unavailable(exc, "load")
            await _send_unavailable(send)

    def _set_cookie(self, cookie: Cookie) -> tuple[bytes, bytes]:
        return (b"set-cookie", self.cookie.set_cookie(cookie).encode("latin-1"))


async def load_session(connection: Any) -> Session:
    """Load the session of a request or websocket (a FastAPI dependency too).

    :param connection: A Starlette ``Request``/``WebSocket``, or an ASGI scope.
    :raises RuntimeError: :class:`SessionMiddleware` is not installed.
    """
    scope = connection if isinstance(connection, MutableMapping) else connection.scope
    middleware = scope.get("state", {}).get(_STATE)
    if middleware is None:
        raise RuntimeError("load_session needs sharedsession.asgi.SessionMiddleware installed")
    session: Session = scope["session"]
    await middleware.load(session)
    return session


def admin(connection: Any) -> AsyncSessionAdmin:
    """The sessions' administration, from a request, websocket or scope
    ("log out other devices" in a Starlette or FastAPI handler).

    :raises RuntimeError: :class:`SessionMiddleware` is not installed.
    """
    scope = connection if isinstance(connection, MutableMapping) else connection.scope
    middleware = scope.get("state", {}).get(_STATE)
    if middleware is None:
        raise RuntimeError("admin needs sharedsession.asgi.SessionMiddleware installed")
    found: AsyncSessionAdmin = middleware.admin
    return found


def _used(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with ``Vary`` and ``Cache-Control`` of a response that used the session."""
    out: list[tuple[bytes, bytes]] = []
    found: dict[bytes, list[str]] = {}
    for key, value in headers:
        name = key.lower()
        if name in _MERGED:
            found.setdefault(name, []).append(value.decode("latin-1"))
        else:
            out.append((key, value))
    if not found:  # the app set neither (the usual case): what they become is known
        out += _USED
        return out
    cache_control = private_cache_control(", ".join(found.get(b"cache-control", ())) or None)
    vary = vary_cookie(", ".join(found.get(b"vary", ())) or None)
    out.append((b"cache-control", cache_control.encode("latin-1")))
    out.append((b"vary", vary.encode("latin-1")))
    return out


_MERGED = frozenset((b"vary", b"cache-control"))
_USED = (
    (b"cache-control", private_cache_control(None).encode("latin-1")),
    (b"vary", vary_cookie(None).encode("latin-1")),
)


async def _send_unavailable(send: Send, cookies: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = UNAVAILABLE_MESSAGE.encode()
    headers = [(k.lower().encode(), v.encode()) for k, v in UNAVAILABLE_HEADERS]
    headers.append((b"content-length", str(len(body)).encode()))
    if cookies:  # never stored by a shared cache
        headers = _used(headers) + list(cookies)
    await send({"type": "http.response.start", "status": UNAVAILABLE_STATUS, "headers": headers})
    await send({"type": "http.response.body", "body": body})
