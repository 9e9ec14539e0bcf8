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

import functools
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import MutableMapping
from collections.abc import Sequence
from typing import Any

from ._driver import UNAVAILABLE_MESSAGE
from ._driver import aload
from ._driver import asave
from ._driver import log_not_saved
from ._driver import log_unavailable
from .cookies import CookieAttributes
from .cookies import read_cookie
from .crypto import Encryptor
from .errors import SessionNotLoaded
from .errors import StoreUnavailable
from .expiry import ExpiryPolicy
from .ids import CookieSigner
from .manager import SessionManager
from .session import Session
from .stores.base import AsyncSessionStore
from .stores.base import Record
from .stores.base import Refresh

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

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
            # A store outage fails only the requests that use the session.
            await aload(self.manager, self.store, session, defer=True)
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
            # The handler used a session whose load found the store down.
            if started:
                raise
            log_unavailable(exc, "load")
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

    async def load(self, session: Session) -> None:
        """Load ``session`` if it is not loaded yet.

        :raises StoreUnavailable: The store is down and ``on_store_error`` is ``"fail"``.
        """
        await aload(self.manager, self.store, session, defer=False)

    def _saving(self, session: Session, send: Send) -> Send:
        dropped = False

        async def send_with_session(message: Message) -> None:
            nonlocal dropped
            if dropped:
                return
            if message["type"] == "http.response.start":
                try:
                    cookie = await asave(self.store, self.manager.save_plan(session))
                except StoreUnavailable as exc:
                    if not self.manager.degrade:
                        log_unavailable(exc, "save")
                        dropped = True
                        await _send_unavailable(send)
                        return
                    log_not_saved(exc)
                    cookie = None
                headers = list(message.get("headers", ()))
                if session.accessed:
                    headers = _private(headers)
                if cookie is not None:
                    header = self.cookie.set_cookie(cookie).encode("latin-1")
                    headers.append((b"set-cookie", header))
                message["headers"] = headers
            await send(message)

        return send_with_session


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


def _private(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Add ``Vary: Cookie``; make ``Cache-Control`` private, whatever the app set."""
    out = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
    directives = [
        d.strip()
        for k, v in headers
        if k.lower() == b"cache-control"
        for d in v.split(b",")
        if d.strip() and d.strip().lower() not in (b"public", b"private")
    ]
    # Never let a shared cache keep or serve one user's session-bearing page.
    out.append((b"cache-control", b", ".join([b"private", *directives])))
    out.append((b"vary", b"Cookie"))
    return out


async def _send_unavailable(send: Send) -> None:
    body = UNAVAILABLE_MESSAGE.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
