"""A bare Redis session for ASGI: the least an async Redis-backed session can do (bench only).

The ASGI twin of :mod:`bench.bare`, and like it a reference that keeps none
of a session's promises (unsigned bare ID, no deadline moves on reads, lost
updates, writes after logout bring a session back). An ASGI app reads
``request.session`` as a plain dict, which cannot wait for Redis, so a
request with a cookie loads the session before the app runs, as
starsessions and sharedsession's middleware do. Per request:

- with a cookie: one raw ``HGETALL`` on a kept connection (no redis-py
  command layers), each value a JSON text;
- when keys were set: one ``HSET`` and a ``PEXPIRE``, sent together (one
  round trip), and the cookie only when the ID is new;
- ``Vary: Cookie`` when it had a cookie or set keys.

``make bench`` measures it beside the ASGI products, so each ASGI target is
printed next to what a session that does nothing but its round trips reaches.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis.asyncio

COOKIE = "session"
PREFIX = "bare:"
TTL_MS = 31 * 24 * 3600 * 1000


class BareSession(dict[str, Any]):
    """A dict that remembers which keys were set."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.set_keys: dict[str, Any] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.set_keys[key] = value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def _cookie(scope: dict[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, sid = part.strip().partition("=")
                if key == COOKIE and sid:
                    return str(sid)
    return None


class BareMiddleware:
    """See the module: never for use, it keeps none of a session's promises."""

    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.pool: Any = redis.asyncio.Redis.from_url(url).connection_pool
        self._idle: list[Any] = []

    async def _ask(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        conn = self._idle.pop() if self._idle else await self.pool.get_connection()
        await conn.send_packed_command(conn.pack_commands(commands))
        replies = [await conn.read_response() for _ in commands]
        self._idle.append(conn)
        return replies

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sid = _cookie(scope)
        data: dict[str, Any] = {}
        if sid is not None:
            (reply,) = await self._ask([("HGETALL", PREFIX + sid)])
            if isinstance(reply, list):  # RESP2: a flat list
                reply = dict(zip(reply[::2], reply[1::2], strict=True))
            data = {k.decode(): json.loads(v) for k, v in reply.items()}
        session = scope["session"] = BareSession(data)

        async def send_with_session(message: dict[str, Any]) -> None:
            if message["type"] != "http.response.start" or (sid is None and not session.set_keys):
                await send(message)
                return
            headers = [*message.get("headers", []), (b"vary", b"Cookie")]
            if session.set_keys:
                key = PREFIX + (sid or secrets.token_urlsafe(32))
                fields = [p for k, v in session.set_keys.items() for p in (k, json.dumps(v))]
                await self._ask([("HSET", key, *fields), ("PEXPIRE", key, TTL_MS)])
                if sid is None:
                    cookie = f"{COOKIE}={key[len(PREFIX) :]}; Path=/; HttpOnly; SameSite=Lax"
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
            await send({**message, "headers": headers})

        await self.app(scope, receive, send_with_session)
