"""A bare Redis session for Flask: the least a Redis-backed session can do (bench only).

A session that makes the fewest round trips with the least Python around
them, and keeps none of the promises a real one must: the cookie is the bare
ID, unsigned; a read never moves the deadline; concurrent requests overwrite each other's
writes and a write after logout brings a session back. Per request:

- loaded only when read: one raw ``HGETALL`` on a kept connection (hiredis,
  no redis-py command layers), each value a JSON text;
- written only when set: the set keys with one ``HSET`` and a ``PEXPIRE``,
  sent together (one round trip);
- ``Vary: Cookie`` when used, and the cookie only when the ID is new.

A minimal reference: its ratio to Flask-Session shows how far a Redis
session gets on the machine once every promise is dropped (on the untouched
route it does more than sharedsession: werkzeug parses the whole Cookie
header). ``make bench`` measures it beside the others.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import redis
from flask import Flask
from flask import Request
from flask import Response
from flask.sessions import SessionInterface
from flask.sessions import SessionMixin

COOKIE = "session"
PREFIX = "bare:"
TTL_MS = 31 * 24 * 3600 * 1000


class BareSession(dict[str, Any], SessionMixin):
    """A dict that loads on its first read and remembers what was set."""

    def __init__(self, sid: str | None, interface: BareInterface) -> None:
        super().__init__()
        self.sid = sid
        self.interface = interface
        self.loaded = sid is None
        self.set_keys: dict[str, Any] = {}
        self.used = False

    def _load(self) -> None:
        self.used = True
        if not self.loaded:
            self.loaded = True
            assert self.sid is not None
            dict.update(self, self.interface.load(self.sid))
            dict.update(self, self.set_keys)

    def __getitem__(self, key: str) -> Any:
        self._load()
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        self._load()
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self._load()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._load()
        return dict.__len__(self)

    def __setitem__(self, key: str, value: Any) -> None:
        self.used = True
        self.set_keys[key] = value
        dict.__setitem__(self, key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


class BareInterface(SessionInterface):
    """See the module: never for use, it keeps none of a session's promises."""

    def __init__(self, url: str) -> None:
        self.pool = redis.Redis.from_url(url).connection_pool
        self.local = threading.local()

    def _connection(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = self.pool.get_connection()
        return conn

    def load(self, sid: str) -> dict[str, Any]:
        conn = self._connection()
        conn.send_command("HGETALL", PREFIX + sid)
        reply = conn.read_response()
        if isinstance(reply, list):  # RESP2: a flat list
            reply = dict(zip(reply[::2], reply[1::2], strict=True))
        return {k.decode(): json.loads(v) for k, v in reply.items()}

    def open_session(self, app: Flask, request: Request) -> BareSession:
        return BareSession(request.cookies.get(COOKIE), self)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, BareSession)
        if not session.used:
            return
        response.vary.add("Cookie")
        if not session.set_keys:
            return
        new = session.sid is None
        sid = session.sid or secrets.token_urlsafe(32)
        fields = [part for k, v in session.set_keys.items() for part in (k, json.dumps(v))]
        conn = self._connection()
        key = PREFIX + sid
        conn.send_packed_command(
            conn.pack_commands([("HSET", key, *fields), ("PEXPIRE", key, TTL_MS)])
        )
        conn.read_response()
        conn.read_response()
        if new:
            response.set_cookie(COOKIE, sid, httponly=True, samesite="Lax")
