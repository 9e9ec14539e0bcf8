"""The item-level steps of the memcached store: conditional writes with their
retries, the user index and the handle items.

Every multi-item step is ordered so that a crash or a race in between never
leaves a session alive that should be dead: a handle is indexed before its
session is written, and a handle item is checked for ``revoked`` (with
``cas``) after a new ID was written, ending the new one if needed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from pymemcache.exceptions import MemcacheServerError

from ..errors import StoreError
from ..errors import StoreUnavailable
from . import _memcached_layout as layout
from .base import Closing
from .base import SessionInfo

#: Index entries beyond this many are checked for dead sessions when one is added.
PRUNE_AT = 64


class ItemOps(Closing):
    """Steps shared by the operations of :class:`~.memcached.MemcachedStore`."""

    #: Writes of one item that may each meet a concurrent write before giving up (503).
    max_attempts = 64

    prefix: str
    max_per_user: int | None
    _clock: Callable[[], float]

    def _gets(self, client: Any, name: str) -> tuple[bytes | None, Any]:
        reply = client.gets(name)
        if not isinstance(reply, tuple):  # a client that swallowed a failure
            raise StoreUnavailable(f"memcached answered gets with {reply!r}, not a value")
        value, token = reply
        return as_bytes(value), token

    def _put(
        self, client: Any, name: str, value: bytes, seconds: float, token: Any = None
    ) -> bool | None:
        """``add`` (no token) or ``cas`` one item: True stored, False taken or
        changed meanwhile, None (``cas`` only) missing."""
        expire = layout.exptime(seconds)
        try:
            if token is None:
                return bool(client.add(name, value, expire, noreply=False))
            stored: bool | None = client.cas(name, value, token, expire, noreply=False)
            return stored
        except MemcacheServerError as exc:
            if "too large" not in str(exc):
                raise
            raise StoreError(
                f"memcached refused to store the session: {len(value)} bytes, over its item"
                " size limit (1 MB unless memcached runs with -I); nothing was written. Keep"
                " large data in your database and its ID in the session, and set"
                " SESSION_MAX_SIZE below the limit so such saves fail before reaching memcached.",
                exc,
            ) from exc

    def _backoff(self, attempt: int) -> None:
        # Writers that met each other retry at spread-out moments, not in lockstep.
        time.sleep(random.uniform(0, 0.0005 * min(attempt + 1, 20)))

    def _contended(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"memcached session store: {self.max_attempts} tries to write one item all"
            " met a concurrent write (compare-and-swap conflicts); nothing was written."
        )

    def _merge_index(
        self, client: Any, user_id: str, change: Callable[[layout.Index], bool], idle: float
    ) -> layout.Index:
        """Change a user's index with ``cas``; ``change`` says whether to write."""
        name = layout.user_key(self.prefix, user_id)
        for attempt in range(self.max_attempts):
            raw, token = self._gets(client, name)
            index = layout.parse_index(raw)
            index.idle = max(index.idle, idle)
            if not change(index):
                return index
            # It lives as long as any of its sessions can (see _keep_found).
            value = layout.encode_index(index)
            if self._put(client, name, value, 2 * index.idle, token if raw else None):
                return index
            self._backoff(attempt)
        raise self._contended()

    def _index(self, client: Any, user_id: str, handle: str, now: float, idle: float) -> None:
        """Add ``handle`` to the user's index (as their newest login)."""

        def add(index: layout.Index) -> bool:
            index.handles = [h for h in index.handles if h != handle] + [handle]
            return True

        index = self._merge_index(client, user_id, add, idle)
        others = [h for h in index.handles if h != handle]
        limit = self.max_per_user
        if (limit is None or len(others) < limit) and len(others) < PRUNE_AT:
            return
        # Over the cap (or long): every entry is checked, dead ones (logged out,
        # expired) are dropped, then the oldest logins beyond the cap end; the
        # one logging in now never does.
        live, dead = self._resolve_twice(client, user_id, others)
        alive = {info.handle for info in live}
        over = 0 if limit is None else max(0, len(alive) + 1 - limit)
        ending = [h for h in others if h in alive][:over]
        for old in ending:
            self._revoke(client, old, max(layout.REVOKED_SECONDS, idle))
        if dead or ending:
            self._unindex(client, user_id, {*dead, *ending})

    def _unindex(self, client: Any, user_id: str, handles: set[str]) -> None:
        def drop(index: layout.Index) -> bool:
            kept = [h for h in index.handles if h not in handles]
            changed = len(kept) != len(index.handles)
            index.handles = kept
            return changed

        self._merge_index(client, user_id, drop, 0.0)

    def _resolve(
        self, client: Any, user_id: str, handles: list[str]
    ) -> tuple[list[SessionInfo], list[str]]:
        """The live sessions of ``user_id`` among ``handles``, and the dead handles."""
        if not handles:
            return [], []
        pointers = client.get_many([layout.handle_key(self.prefix, h) for h in handles])
        keys = {}
        for handle in handles:
            moved = as_bytes(pointers.get(layout.handle_key(self.prefix, handle)))
            keys[handle] = None if moved == layout.REVOKED else (moved or handle.encode()).decode()
        names = [layout.session_key(self.prefix, k) for k in keys.values() if k is not None]
        items = client.get_many(names) if names else {}
        live: list[SessionInfo] = []
        dead: list[str] = []
        now = self._clock()
        for handle, key in keys.items():
            name = None if key is None else layout.session_key(self.prefix, key)
            found = None if name is None else layout.parse(as_bytes(items.get(name)))
            if isinstance(found, layout.Doc) and found.expires > now and found.user == user_id:
                live.append(layout.info(found, user_id))
            else:
                dead.append(handle)
        return live, dead

    def _resolve_twice(
        self, client: Any, user_id: str, handles: list[str]
    ) -> tuple[list[SessionInfo], list[str]]:
        live, dead = self._resolve(client, user_id, handles)
        if dead:
            # A session between the two steps of getting a new ID looks gone for
            # a moment: look again before dropping it from the index for good.
            time.sleep(0.05)
            more, dead = self._resolve(client, user_id, dead)
            live += more
        return live, dead

    def _sessions_for_user(self, client: Any, user_id: str) -> list[SessionInfo]:
        raw = client.get(layout.user_key(self.prefix, user_id))
        handles = layout.parse_index(as_bytes(raw)).handles
        live, dead = self._resolve_twice(client, user_id, handles)
        if dead:
            self._unindex(client, user_id, set(dead))
        return sorted(live, key=lambda found: found.created)

    def _point(self, client: Any, handle: str, key: str, seconds: float) -> bool:
        """Lead ``handle`` to ``key``; False if the handle was revoked."""
        name = layout.handle_key(self.prefix, handle)
        for attempt in range(self.max_attempts):
            raw, token = self._gets(client, name)
            if raw == layout.REVOKED:
                return False
            if self._put(client, name, key.encode(), seconds, token if raw else None):
                return True
            self._backoff(attempt)
        raise self._contended()

    def _revoke(self, client: Any, handle: str, remember: float) -> bool:
        """Mark ``handle`` revoked (nothing leads to it again for ``remember``
        seconds), then end its first item and where it led; whether a live
        session ended."""
        name = layout.handle_key(self.prefix, handle)
        for attempt in range(self.max_attempts):
            raw, token = self._gets(client, name)
            if self._put(client, name, layout.REVOKED, remember, token if raw else None):
                break
            self._backoff(attempt)
        else:
            raise self._contended()
        names = [layout.session_key(self.prefix, handle)]
        if raw and raw != layout.REVOKED:
            names.append(layout.session_key(self.prefix, raw.decode()))
        items = client.get_many(names)
        client.delete_many(names, noreply=False)
        now = self._clock()
        found = [layout.parse(as_bytes(items.get(item))) for item in names]
        return any(isinstance(doc, layout.Doc) and doc.expires > now for doc in found)

    def _keep_found(self, client: Any, key: str, doc: layout.Doc, now: float, idle: float) -> None:
        """Make what finds ``doc`` (its user's index, its handle item) live as long
        as it may. Done only when its deadline passes ``doc.found_until``: at most
        once per idle lifetime, not on every write."""
        if doc.expires <= doc.found_until or (doc.user is None and doc.handle == key):
            return
        ttl = layout.exptime(2 * idle)
        if doc.user is not None:
            found = client.touch(layout.user_key(self.prefix, doc.user), ttl, noreply=False)
            if not found:  # evicted or expired: put the entry back
                self._index(client, doc.user, doc.handle, now, idle)
        if doc.handle != key:
            pointer = layout.handle_key(self.prefix, doc.handle)
            if not client.touch(pointer, ttl, noreply=False):
                self._point(client, doc.handle, key, 2 * idle)
        doc.found_until = now + 2 * idle


def as_bytes(value: Any) -> bytes | None:
    return value.encode() if isinstance(value, str) else value
