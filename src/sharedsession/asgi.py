"""ASGI middleware: server-side sessions for Starlette, FastAPI and any ASGI app.

``request.session`` (``scope["session"]``) is a :class:`~sharedsession.Session`:
a dict plus ``sid``, ``regenerate()``, ``destroy()`` and ``bind_user()``, with
the semantics of the Flask adapter. Handlers use it synchronously, so an
async store cannot be reached on first use from an ``async def`` handler:

- ``autoload=True`` (the default) loads the session before the app runs when
  the request carries a session cookie: one round trip, even for a route that
  never touches the session.
- ``autoload=False`` (or a list of path prefixes to autoload) loads nothing up
  front: ``await load_session(request)`` or the FastAPI dependency loads it,
  and sync (``def``) handlers, which run in a worker thread, load it on first
  use. Routes that never touch the session cost no round trip.

The middleware is pure ASGI. HTTP responses get the cookie, ``Vary: Cookie``
and ``Cache-Control: private`` when the session was used; websocket scopes
get the session (loaded as above) to read on connect, and it is not saved.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import MutableMapping
from collections.abc import Sequence
from typing import Any

from .cookies import CookieAttributes
from .cookies import read_cookie
from .crypto import Encryptor
from .errors import SessionNotLoaded
from .errors import StoreUnavailable
from .expiry import ExpiryPolicy
from .ids import CookieSigner
from .ids import store_key
from .manager import Cookie
from .manager import SessionManager
from .session import Session
from .stores.base import AsyncSessionStore
from .stores.base import Record
from .stores.base import Refresh

logger = logging.getLogger("sharedsession")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The body of the 503 response sent when the store cannot be reached.
UNAVAILABLE_MESSAGE = b"Sessions are unavailable right now; please try again shortly."
_STATE = "sharedsession"


class SessionMiddleware:
    """Server-side sessions for an ASGI app.

    :param app: The ASGI app.
    :param store: An async store: ``AsyncRedisStore``, ``AsyncSQLiteStore``,
        ``AsyncMemoryStore`` or your own.
    :param secret_key: Sign cookie values with this key (a list: the current
        key first, then older ones still accepted); ``None`` sends bare IDs.
    :param session_cookie: The cookie's name.
    :param max_age: Idle timeout in seconds; also the cookie's lifetime.
    :param path: The cookie's ``Path``.
    :param domain: The cookie's ``Domain``.
    :param same_site: The cookie's ``SameSite``: ``"lax"``, ``"strict"`` or ``"none"``.
    :param https_only: Send the cookie with ``Secure``.
    :param partitioned: Send the cookie with ``Partitioned``.
    :param permanent: Send ``Expires`` (else the cookie ends with the browser session).
    :param refresh_each_request: Slide the idle deadline on each request that
        uses the session, and send the cookie again.
    :param absolute_lifetime: Hard cap in seconds from creation, or ``None``.
    :param renewal: Rotate a live session's ID when it is this many seconds old.
    :param max_size: Refuse to save sessions over this many bytes.
    :param encryption_keys: Encrypt stored values (see ``SESSION_ENCRYPTION_KEYS``).
    :param on_store_error: ``"fail"`` (503) or ``"degrade"`` (empty unsaved session).
    :param autoload: ``True``, ``False``, or path prefixes to load up front.
    :param track_client: Remember user agent and IP of sessions bound to a user.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: AsyncSessionStore,
        secret_key: str | bytes | Sequence[str | bytes] | None = None,
        session_cookie: str = "session",
        max_age: float = 31 * 24 * 3600,
        path: str = "/",
        domain: str | None = None,
        same_site: str = "lax",
        https_only: bool = False,
        partitioned: bool = False,
        permanent: bool = True,
        refresh_each_request: bool = True,
        absolute_lifetime: float | None = None,
        renewal: float | None = None,
        max_size: int | None = None,
        encryption_keys: Sequence[str | bytes] = (),
        on_store_error: str = "fail",
        autoload: bool | Collection[str] = True,
        track_client: bool = False,
    ) -> None:
        if on_store_error not in ("fail", "degrade"):
            raise ValueError(f"on_store_error must be 'fail' or 'degrade', got {on_store_error!r}")
        if same_site.lower() not in ("lax", "strict", "none"):
            raise ValueError(f"same_site must be 'lax', 'strict' or 'none', got {same_site!r}")
        keys = [secret_key] if isinstance(secret_key, (str, bytes)) else list(secret_key or ())
        self.app = app
        self.store = store
        self.manager = SessionManager(
            ExpiryPolicy(max_age, absolute_lifetime),
            permanent=permanent,
            refresh_each_request=refresh_each_request,
            signer=CookieSigner(keys) if keys else None,
            max_size=max_size,
            degrade=on_store_error == "degrade",
            renewal=renewal,
            encryptor=Encryptor(encryption_keys) if encryption_keys else None,
        )
        self.cookie = CookieAttributes(
            session_cookie,
            path=path,
            domain=domain,
            secure=https_only,
            samesite=same_site.capitalize(),
            partitioned=partitioned,
        )
        self.autoload = autoload
        self.track_client = track_client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        session = self._open(scope)
        scope["session"] = session
        scope.setdefault("state", {})[_STATE] = self
        if self._autoloads(scope["path"]):
            try:
                await self.load(session)
            except StoreUnavailable as exc:
                if scope["type"] == "websocket":
                    raise
                _log_unavailable(exc, "load")
                await _send_unavailable(send)
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_started(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, self._saving(session, send_started))
        except StoreUnavailable as exc:
            # A sync handler's first use of the session found the store down.
            if started:
                raise
            _log_unavailable(exc, "load")
            await _send_unavailable(send)

    def _open(self, scope: Scope) -> Session:
        headers = scope.get("headers", ())
        raw = b"; ".join(value for key, value in headers if key == b"cookie")
        cookie = read_cookie(raw.decode("latin-1"), self.cookie.name)
        client = None
        if self.track_client:
            agent = next((v for k, v in headers if k == b"user-agent"), b"")
            address = (scope.get("client") or ("",))[0]
            client = {"agent": agent.decode("latin-1")[:256], "ip": address or ""}
        # Sync handlers run in a worker thread: they may load on first use.
        session: Session = self.manager.open(cookie, self._load_from_thread, client=client)
        return session

    def _load_from_thread(self, key: str, refresh: Refresh | None) -> Record | None:
        import anyio.from_thread

        try:
            record: Record | None = anyio.from_thread.run(
                functools.partial(self.store.load, key, refresh=refresh)
            )
        except RuntimeError as exc:  # on the event loop's own thread: cannot block it
            raise SessionNotLoaded() from exc
        return record

    def _autoloads(self, path: str) -> bool:
        if isinstance(self.autoload, bool):
            return self.autoload
        return any(path.startswith(prefix) for prefix in self.autoload)

    async def fetch(self, sid: str) -> tuple[Record | None, frozenset[str]]:
        """Load and prepare the record of ``sid`` (one round trip)."""
        key = store_key(sid)
        return self.manager.prepare(key, await self.store.load(key, refresh=self.manager.refresh()))

    async def load(self, session: Session) -> None:
        """Load ``session`` if it is not loaded yet.

        :raises StoreUnavailable: The store is down and ``on_store_error`` is ``"fail"``.
        """
        if session.loaded:
            return
        if session.incoming_sid is None:
            session.preload(None)
            return
        try:
            record, stale = await self.fetch(session.incoming_sid)
        except StoreUnavailable as exc:
            if not self.manager.degrade:
                raise
            session.degrade(exc)
            return
        session.preload(record, stale=stale)

    def _saving(self, session: Session, send: Send) -> Send:
        dropped = False

        async def send_with_session(message: Message) -> None:
            nonlocal dropped
            if dropped:
                return
            if message["type"] == "http.response.start":
                try:
                    cookie = await self._save(session)
                except StoreUnavailable as exc:
                    if not self.manager.degrade:
                        _log_unavailable(exc, "save")
                        dropped = True
                        await _send_unavailable(send)
                        return
                    logger.warning("session store unavailable, session not saved: %s", _cause(exc))
                    cookie = None
                headers = list(message.get("headers", ()))
                if session.accessed:
                    headers += [(b"vary", b"Cookie"), (b"cache-control", b"private")]
                if cookie is not None:
                    header = self.cookie.set_cookie(cookie).encode("latin-1")
                    headers.append((b"set-cookie", header))
                message["headers"] = headers
            await send(message)

        return send_with_session

    async def _save(self, session: Session) -> Cookie | None:
        plan = self.manager.save_plan(session)
        if plan.delete is not None:
            await self.store.delete(plan.delete)
        result = None
        if plan.changes is not None and plan.key is not None:
            result = await self.store.apply(plan.key, plan.changes)
        return plan.cookie_after(result)


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


def _cause(exc: StoreUnavailable) -> BaseException:
    return exc.original_error or exc


def _log_unavailable(exc: StoreUnavailable, stage: str) -> None:
    logger.error("session store unavailable during %s: %s", stage, _cause(exc))


async def _send_unavailable(send: Send) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(UNAVAILABLE_MESSAGE)).encode()),
        (b"retry-after", b"5"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": UNAVAILABLE_MESSAGE})
