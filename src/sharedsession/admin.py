"""Session administration, framework-free, for apps, the command line and operators.

:class:`SessionAdmin` (blocking stores) and :class:`AsyncSessionAdmin` (async
stores) offer the same methods: a user's sessions, one session's details,
revoking one or all of a user's ("log out other devices"), counting, walking
every session, statistics and purging. Handles name a session without its
ID and keep naming it when its ID changes (renewal, login), so a handle an
app or the command line showed still ends the right device.

Reach it from Flask and Quart as ``Session(app).admin`` (or
``current_app.extensions["sharedsession"].admin``), from ASGI apps as
``sharedsession.asgi.admin(request)`` or ``SessionMiddleware.admin``.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from ._state import state
from .ids import store_key
from .manager import SessionManager
from .manager import index_ids
from .manager import shown
from .manager import to_revoke
from .session import Session
from .stores.base import Record
from .stores.base import SessionInfo
from .stores.base import StoredSession
from .stores.base import revoke_handle
from .stores.base import user_index

_HANDLE = re.compile(r"[A-Za-z0-9_-]{43}")


def is_handle(handle: object) -> bool:
    """Whether ``handle`` could name a session (anything else names none)."""
    return isinstance(handle, str) and _HANDLE.fullmatch(handle) is not None


#: Upper bounds of the age buckets in :class:`Stats` (seconds), then "older".
AGE_BUCKETS = ((3600, "<1h"), (86400, "<1d"), (7 * 86400, "<7d"), (30 * 86400, "<30d"))


@dataclass(frozen=True)
class SessionDetails:
    """One session as an operator inspects it (never its ID).

    :param handle: Its handle.
    :param created: When it was created.
    :param last_seen: When it was last used (to the refresh step).
    :param user_id: The user it is bound to, or ``None``.
    :param client: What was recorded about the client.
    :param data: Its keys and decoded values (``None`` if they do not decode).
    :param size: Bytes of stored values.
    """

    handle: str
    created: float
    last_seen: float
    user_id: str | None
    client: dict[str, str]
    data: dict[str, Any] | None
    size: int


@dataclass
class Stats:
    """Counts over every live session.

    :param count: How many.
    :param bytes: Bytes of stored values in all.
    :param bound: How many are bound to a user.
    :param by_age: How many by age since creation (``<1h``, ``<1d``, ...).
    """

    count: int = 0
    bytes: int = 0
    bound: int = 0
    by_age: dict[str, int] = field(default_factory=dict)

    def add(self, stored: StoredSession, now: float) -> None:
        self.count += 1
        self.bytes += stored.size
        self.bound += stored.user_id is not None
        age = now - stored.created
        label = next((name for limit, name in AGE_BUCKETS if age < limit), "older")
        self.by_age[label] = self.by_age.get(label, 0) + 1


def _details(manager: SessionManager, found: tuple[StoredSession, Record] | None) -> Any:
    if found is None:
        return None
    stored, record = found
    opened, _ = manager.prepare(stored.key, record)
    user = stored.user_id if opened is None else opened.user_id
    data = None if opened is None else manager.values(opened)
    client = dict(stored.client)
    if manager.encryptor is not None and user is not None:
        client = dict(shown(manager, [_info(stored, user)], user)[0].client)
    return SessionDetails(
        stored.handle, stored.created, stored.last_seen, user, client, data, stored.size
    )


def _info(stored: StoredSession, user: str) -> SessionInfo:
    return SessionInfo(stored.handle, user, stored.created, stored.last_seen, stored.client)


class SessionAdmin:
    """Administration over a blocking store.

    :param store: The store (every built-in one supports all methods).
    :param manager: The session policy (for decryption and user handles).
    """

    def __init__(self, store: Any, manager: SessionManager) -> None:
        self.store = store
        self.manager = manager

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        """The live sessions bound to ``user_id``, oldest first."""
        store = user_index(self.store)
        infos: list[SessionInfo] = []
        for index_id in index_ids(self.manager, user_id):
            infos += store.sessions_for_user(index_id)
        return shown(self.manager, infos, user_id)

    def details(self, handle: str) -> SessionDetails | None:
        """One session's details, or ``None`` if no live session has this handle."""
        if not is_handle(handle):
            return None
        result: SessionDetails | None = _details(self.manager, self.store.session(handle))
        return result

    def revoke(self, handle: str) -> bool:
        """End the session with this handle; whether there was one to end."""
        return is_handle(handle) and bool(revoke_handle(self.store, handle))

    def revoke_user(self, user_id: str, *, keep: Session | str | None = None) -> int:
        """End every session of ``user_id`` but ``keep`` (a session or a handle)."""
        doomed = to_revoke(self.sessions_for_user(user_id), keep)
        return sum(self.revoke(handle) for handle in doomed)

    def sessions(self) -> Iterator[StoredSession]:
        """Every live session, in no order (SCAN on Redis, on every Cluster master)."""
        sessions: Iterator[StoredSession] = self.store.sessions()
        return sessions

    def count(self) -> int:
        """How many live sessions there are."""
        return sum(1 for _ in self.sessions())

    def stats(self) -> Stats:
        """Counts, bytes and ages over every live session."""
        stats, now = Stats(), time.time()
        for stored in self.sessions():
            stats.add(stored, now)
        return stats

    def purge(self) -> int:
        """Delete expired sessions a store keeps until purged (SQLite); how many."""
        return int(self.store.purge())


def handle_of(session: Session) -> str:
    """The handle of ``session`` (e.g. to mark "this device" in a list)."""
    st = state(session)
    if st.record is not None and st.record.handle is not None:
        return st.record.handle
    return store_key(session.sid)


class AsyncSessionAdmin:
    """The async twin of :class:`SessionAdmin`, over an async store."""

    def __init__(self, store: Any, manager: SessionManager) -> None:
        self.store = store
        self.manager = manager

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        store = user_index(self.store)
        infos: list[SessionInfo] = []
        for index_id in index_ids(self.manager, user_id):
            infos += await store.sessions_for_user(index_id)
        return shown(self.manager, infos, user_id)

    async def details(self, handle: str) -> SessionDetails | None:
        if not is_handle(handle):
            return None
        result: SessionDetails | None = _details(self.manager, await self.store.session(handle))
        return result

    async def revoke(self, handle: str) -> bool:
        return is_handle(handle) and bool(await revoke_handle(self.store, handle))

    async def revoke_user(self, user_id: str, *, keep: Session | str | None = None) -> int:
        doomed = to_revoke(await self.sessions_for_user(user_id), keep)
        return sum([await self.revoke(handle) for handle in doomed])

    async def sessions(self) -> AsyncIterator[StoredSession]:
        async for stored in self.store.sessions():
            yield stored

    async def count(self) -> int:
        return sum([1 async for _ in self.sessions()])

    async def stats(self) -> Stats:
        stats, now = Stats(), time.time()
        async for stored in self.sessions():
            stats.add(stored, now)
        return stats

    async def purge(self) -> int:
        return int(await self.store.purge())
