"""MemcachedStore and AsyncMemcachedStore over pymemcache.

Memcached has no per-key structure and no scripting, so a session is one item
(see :mod:`._memcached_layout`) and every change is a read-merge-write made
safe by memcached's compare-and-swap: ``gets`` returns the item with a token,
``cas`` stores the merged document only if nobody wrote the item since, else
the change set is merged again into what is there now. Concurrent saves of
different keys therefore all survive, and since ``cas`` never stores a missing
item, a session that was deleted, revoked or expired stays dead. New sessions
are ``add``-ed, which fails if the key exists.

A load remembers the token and the bytes it read, so the save that usually
follows in the same request is one ``cas``: a read is one round trip, a write
two. Memcached cannot list its keys: listing every session is not possible
(:meth:`MemcachedStore.sessions` says so); a user's sessions are found through
a small per-user index item, merged with ``cas`` too.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

from pymemcache.exceptions import MemcacheError
from pymemcache.exceptions import MemcacheServerError
from pymemcache.exceptions import MemcacheUnexpectedCloseError

from ..errors import ConfigurationError
from ..errors import StoreError
from ..errors import StoreUnavailable
from ..expiry import cap
from . import _memcached_layout as layout
from ._memcached_client import DEFAULT_SERVER
from ._memcached_client import DEFAULT_TIMEOUT
from ._memcached_client import Connections
from ._memcached_items import ItemOps
from ._memcached_items import as_bytes
from .base import ApplyResult
from .base import ChangeSet
from .base import Record
from .base import Refresh
from .base import SessionInfo
from .base import StoredSession
from .base import reach_of
from .offload import AsyncOffloadStore

if TYPE_CHECKING:
    from .._config import Settings

T = TypeVar("T")

logger = logging.getLogger("sharedsession")

#: A connection that died under us (memcached restarted): retried once, on a new one.
_LOST = (MemcacheUnexpectedCloseError, ConnectionResetError, BrokenPipeError)


def _mapped(exc: Exception) -> StoreError:
    """The store error for a pymemcache or socket error (raised ``from`` it by the caller)."""
    if isinstance(exc, (OSError, MemcacheUnexpectedCloseError)) or "down" in str(exc):
        return StoreUnavailable(f"memcached session store unavailable: {exc!r}", exc)
    if isinstance(exc, MemcacheServerError):  # out of memory, and other refusals
        return StoreUnavailable(f"memcached session store refused the write: {exc}", exc)
    return StoreError(f"memcached session store failed: {exc!r}", exc)


class _Recent:
    """What this process last read of each session: its bytes and ``cas`` token.

    A save right after its load then needs no second read. An entry that went
    stale costs one refused ``cas`` and a fresh read, never a wrong write.
    """

    #: Bytes kept at most (sessions over a tenth of it are not kept).
    limit = 4 * 1024 * 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: collections.OrderedDict[str, tuple[bytes, Any]] = collections.OrderedDict()
        self._size = 0

    def put(self, key: str, raw: bytes, token: Any) -> None:
        if len(raw) > self.limit // 10:
            return
        with self._lock:
            self._pop(key)
            self._items[key] = (raw, token)
            self._size += len(raw)
            while self._size > self.limit:
                self._pop(next(iter(self._items)))

    def take(self, key: str) -> tuple[bytes, Any] | None:
        with self._lock:
            return self._pop(key)

    def _pop(self, key: str) -> tuple[bytes, Any] | None:
        found = self._items.pop(key, None)
        if found is not None:
            self._size -= len(found[0])
        return found

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


class MemcachedStore(ItemOps):
    """Sessions in memcached through pymemcache.

    :param client: ``"host:port"`` (or ``"host"``, ``"unix:/path"``) or a
        pymemcache client; a ``Client`` or ``PooledClient`` is copied, not
        used (see :mod:`._memcached_client`).
    :param prefix: Prepended to every key.
    :param timeout: Seconds to connect and to wait for each reply; a down or
        frozen memcached fails within it (``StoreUnavailable``: 503).
    :param clock: Returns the time in epoch seconds; the expiry checks use it.
    :param max_per_user: End a user's oldest sessions beyond this many, at login.
    """

    def __init__(
        self,
        client: Any = DEFAULT_SERVER,
        *,
        prefix: str = "session:",
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        max_per_user: int | None = None,
    ) -> None:
        layout.check_prefix(prefix)
        self.prefix = prefix
        self.timeout = timeout
        self.max_per_user = max_per_user
        self._clock = clock
        self._connections = Connections(client, timeout)
        self._recent = _Recent()

    @property
    def reach(self) -> str:
        """Who shares these sessions: ``"network"``, or ``"machine"`` for a server
        on a loopback address or a Unix socket."""
        return reach_of(self._connections.host)

    def _run(self, operation: Callable[[Any], T]) -> T:
        for attempt in (1, 2):
            try:
                with self._connections.client() as client:
                    return operation(client)
            except _LOST as exc:
                if attempt == 2:
                    raise _mapped(exc) from exc
                self._connections.drop_idle()
            except (OSError, MemcacheError) as exc:
                raise _mapped(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        return self._run(lambda client: self._load(client, key, refresh))

    def _load(self, client: Any, key: str, refresh: Refresh | None) -> Record | None:
        name = layout.session_key(self.prefix, key)
        for attempt in range(self.max_attempts):
            raw, token = self._gets(client, name)
            found = layout.parse(raw)
            if found is None or found.expires <= self._clock():
                return None
            if isinstance(found, layout.Marker):
                return Record({}, found.created, forward=found.forward)
            deadline = 0.0 if refresh is None else cap(refresh.now + refresh.ttl, found.absolute)
            if refresh is None or deadline - found.expires <= refresh.step:
                assert raw is not None
                self._recent.put(key, raw, token)
                return layout.record(found)
            found.expires, found.seen = deadline, refresh.now
            self._keep_found(client, key, found, refresh.now, refresh.ttl)
            stored = self._put(client, name, layout.encode(found), deadline - refresh.now, token)
            if stored:
                return layout.record(found, refreshed=True)
            if stored is None:
                return None  # deleted meanwhile
            self._backoff(attempt)
        raise self._contended()

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        return self._run(lambda client: self._apply(client, key, changes))

    def _apply(self, client: Any, key: str, changes: ChangeSet) -> ApplyResult:
        if changes.bind and changes.user_id is not None:
            # Indexed before the session is written: a crash in between leaves
            # a dead handle (pruned when listed), never a session "log out
            # other devices" cannot find.
            self._index(client, changes.user_id, changes.handle or key, changes.now, _idle(changes))
        if changes.replaces is not None:
            return self._move(client, key, changes)
        if changes.created is not None:
            doc = layout.created(key, changes)
            if doc.user is not None:  # just indexed
                doc.found_until = changes.now + 2 * _idle(changes)
            return self._create(client, key, doc, changes)
        return self._update(client, key, changes)

    def _create(self, client: Any, key: str, doc: layout.Doc, changes: ChangeSet) -> ApplyResult:
        name = layout.session_key(self.prefix, key)
        writes = not layout.ends(doc) and changes.expires > self._clock()
        value = layout.encode(doc)
        for attempt in range(self.max_attempts):
            if writes and self._put(client, name, value, changes.expires - changes.now):
                return ApplyResult.APPLIED
            raw, token = self._gets(client, name)
            there = layout.parse(raw)
            if there is not None and there.expires > self._clock():
                return ApplyResult.EXISTS
            if not writes:
                return ApplyResult.APPLIED  # nothing to keep: nothing written
            if raw is not None and self._put(
                client, name, value, changes.expires - changes.now, token
            ):
                return ApplyResult.APPLIED  # over an expired leftover or a tombstone
            self._backoff(attempt)
        raise self._contended()

    def _update(self, client: Any, key: str, changes: ChangeSet) -> ApplyResult:
        name = layout.session_key(self.prefix, key)
        recent = self._recent.take(key)
        for attempt in range(self.max_attempts):
            raw, token = recent if recent is not None else self._gets(client, name)
            recent = None
            found = layout.parse(raw)
            if not isinstance(found, layout.Doc) or found.expires <= self._clock():
                return ApplyResult.GONE
            doc = layout.merged(found, changes)
            if layout.ends(doc) or changes.expires <= self._clock():
                value, ttl = layout.TOMBSTONE, layout.TOMBSTONE_SECONDS
            else:
                self._keep_found(client, key, doc, changes.now, _idle(changes))
                value, ttl = layout.encode(doc), changes.expires - changes.now
            stored = self._put(client, name, value, ttl, token)
            if stored:
                return ApplyResult.APPLIED
            if stored is None:
                return ApplyResult.GONE
            self._backoff(attempt)
        raise self._contended()

    def _move(self, client: Any, key: str, changes: ChangeSet) -> ApplyResult:
        """Regeneration: the old item becomes a tombstone or a renewal's marker
        (one ``cas``: only if it still holds the session), then the new one is
        added. The old ID is dead before the new one exists; a crash in between
        logs the user out, never leaves both alive."""
        assert changes.replaces is not None
        old_name = layout.session_key(self.prefix, changes.replaces)
        recent = self._recent.take(changes.replaces)
        for attempt in range(self.max_attempts):
            raw, token = recent if recent is not None else self._gets(client, old_name)
            recent = None
            old = layout.parse(raw)
            if not isinstance(old, layout.Doc) or old.expires <= self._clock():
                return ApplyResult.GONE
            value, ttl = layout.TOMBSTONE, layout.TOMBSTONE_SECONDS
            if changes.forward is not None:
                marker = layout.Marker(changes.forward, old.created, changes.forward_until)
                value, ttl = layout.encode_marker(marker), changes.forward_until - changes.now
            stored = self._put(client, old_name, value, ttl, token)
            if stored is None:
                return ApplyResult.GONE
            if stored:
                break
            self._backoff(attempt)
        else:
            raise self._contended()
        doc = layout.merged(old, changes)
        doc.issued = changes.now
        # Its handle item is written below; its user's index only if bound just now.
        doc.found_until = changes.now + 2 * _idle(changes)
        if doc.user is not None and not changes.bind:
            doc.found_until = min(old.found_until, doc.found_until)
        try:
            result = self._create(client, key, doc, changes)
        except StoreError:  # refused (too large): the old ID lives on, as it was
            assert raw is not None
            self._restore(client, old_name, raw, old.expires - self._clock())
            raise
        if result is not ApplyResult.APPLIED or doc.handle == key:
            return result
        # The handle now leads here, unless it was revoked meanwhile: then this ends.
        if not self._point(client, doc.handle, key, 2 * _idle(changes)):
            client.delete(layout.session_key(self.prefix, key), noreply=False)
            return ApplyResult.GONE
        return result

    def _restore(self, client: Any, name: str, raw: bytes, seconds: float) -> None:
        """Put a session back over the tombstone or marker its failed move left."""
        there, token = self._gets(client, name)
        if there is not None and not isinstance(layout.parse(there), layout.Doc):
            self._put(client, name, raw, seconds, token)

    def delete(self, key: str) -> None:
        self._recent.take(key)
        name = layout.session_key(self.prefix, key)
        self._run(lambda client: client.delete(name, noreply=False))

    def sessions(self) -> Iterator[StoredSession]:
        """Not possible: memcached cannot list its keys.

        :raises ConfigurationError: Always; the message says what works instead.
        """
        raise ConfigurationError(
            "The memcached store cannot list every session: memcached has no way to"
            " enumerate its keys, so counts, stats and listings of all sessions need the"
            " SQLite or Redis store. A user's sessions are listed with"
            " sessions_for_user(user_id), one session with its handle."
        )

    def session(self, handle: str) -> tuple[StoredSession, Record] | None:
        return self._run(lambda client: self._session(client, handle))

    def _session(self, client: Any, handle: str) -> tuple[StoredSession, Record] | None:
        moved = as_bytes(client.get(layout.handle_key(self.prefix, handle)))
        if moved == layout.REVOKED:
            return None
        key = moved.decode() if moved else handle
        found = layout.parse(as_bytes(client.get(layout.session_key(self.prefix, key))))
        if not isinstance(found, layout.Doc) or found.expires <= self._clock():
            return None
        return layout.stored(key, found), layout.record(found)

    def revoke(self, handle: str) -> bool:
        return self._run(lambda client: self._revoke(client, handle, layout.REVOKED_SECONDS))

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        return self._run(lambda client: self._sessions_for_user(client, user_id))

    def purge(self) -> int:
        return 0  # memcached expires items itself

    def close(self) -> None:
        self._recent.clear()
        self._connections.close()


def _idle(changes: ChangeSet) -> float:
    return changes.idle or max(0.0, changes.expires - changes.now)


class AsyncMemcachedStore(AsyncOffloadStore):
    """The async twin of :class:`MemcachedStore`: the same store, each call in a worker
    thread (pymemcache has no asyncio API).

    :param client: See :class:`MemcachedStore`.
    :param options: Passed on to :class:`MemcachedStore`.
    """

    def __init__(self, client: Any = DEFAULT_SERVER, **options: Any) -> None:
        super().__init__(MemcachedStore(client, **options))


def from_settings(settings: Settings, *, asyncio: bool) -> MemcachedStore | AsyncMemcachedStore:
    """The store for ``SESSION_TYPE = "memcached"`` from ``SESSION_MEMCACHED``."""
    options: dict[str, Any] = {
        "prefix": settings.key_prefix,
        "timeout": settings.memcached_timeout,
        "max_per_user": settings.max_per_user,
    }
    if asyncio:
        return AsyncMemcachedStore(settings.memcached, **options)
    return MemcachedStore(settings.memcached, **options)
