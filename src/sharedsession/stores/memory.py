"""MemoryStore: an in-process store for tests and single-process apps.

It is also the reference implementation of the store contract: every other
store must behave the same way in ``tests/integration/test_store_contract.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import TYPE_CHECKING

from ..expiry import cap
from ..expiry import kept
from .base import ApplyResult
from .base import ChangeSet
from .base import Closing
from .base import KeyWrites
from .base import Record
from .base import Refresh
from .base import SessionInfo
from .base import StoredSession
from .base import Written
from .offload import AsyncOffloadStore

if TYPE_CHECKING:
    from .._config import Settings


@dataclass
class _Entry:
    data: dict[str, str]
    created: float
    absolute: float | None
    expires: float
    issued: float
    seen: float
    user_id: str | None = None
    client: dict[str, str] = field(default_factory=dict)
    forward: str | None = None  # a renewal's forwarding marker, not a session
    handle: str = ""  # its first key, kept across new IDs


def _stored(key: str, entry: _Entry) -> StoredSession:
    size = sum(len(k) + len(v.encode()) for k, v in entry.data.items())
    client = dict(entry.client)
    return StoredSession(entry.handle, key, entry.created, entry.seen, entry.user_id, client, size)


def _readable(entry: _Entry) -> bool:
    """Whether the entry's times are numbers (a test may damage them; the load says more)."""
    times = [entry.created, entry.issued] + ([] if entry.absolute is None else [entry.absolute])
    return all(type(t) in (int, float) for t in times)


def _marker(old: _Entry, changes: ChangeSet) -> _Entry:
    """A renewal's forwarding marker at the old key."""
    until = changes.forward_until
    return _Entry({}, old.created, None, until, old.issued, old.seen, forward=changes.forward)


class MemoryStore(Closing):
    """A dict behind a lock; data is lost when the process ends.

    :param clock: Returns the time in epoch seconds; the expiry checks use it.
    """

    #: Who shares these sessions: this process only.
    reach = "process"

    def __init__(
        self, *, clock: Callable[[], float] = time.time, max_per_user: int | None = None
    ) -> None:
        self._clock = clock
        self.max_per_user = max_per_user
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= self._clock():
            del self._entries[key]
            return None
        return entry

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return None
            if entry.forward is not None:
                return Record({}, entry.created, forward=entry.forward)
            refreshed = False
            if refresh is not None:
                deadline = cap(refresh.now + refresh.ttl, entry.absolute)
                if deadline - entry.expires > refresh.step:
                    entry.expires = deadline
                    entry.seen = refresh.now
                    refreshed = True
            data = dict(entry.data)
            return Record(
                data,
                entry.created,
                entry.absolute,
                entry.issued,
                entry.user_id,
                refreshed=refreshed,
                handle=entry.handle,
                expires=entry.expires,
            )

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        with self._lock:
            entry = self._live(key)
            if changes.created is not None or changes.replaces is not None:
                if entry is not None:
                    return ApplyResult.EXISTS
                if changes.replaces is not None:
                    old = self._live(changes.replaces)
                    if old is None or old.forward is not None:
                        return ApplyResult.GONE
                    del self._entries[changes.replaces]
                    if changes.forward is not None:
                        self._entries[changes.replaces] = _marker(old, changes)
                    entry = replace(old, data=dict(old.data), issued=changes.now)
                else:
                    assert changes.created is not None
                    entry = _Entry(
                        {}, changes.created, changes.absolute, 0.0, changes.now, changes.now
                    )
                    entry.handle = key
            elif entry is None or entry.forward is not None:
                return ApplyResult.GONE
            data = {} if changes.clear else dict(entry.data)
            for name in changes.delete:
                data.pop(name, None)
            data.update(changes.set)
            # A kept deadline stays as it is (a concurrent move included).
            expires = entry.expires if changes.keeps_deadline else changes.expires
            updated = replace(entry, data=data, expires=expires, seen=changes.now)
            if changes.bind:
                updated.user_id = changes.user_id
                updated.client = dict(changes.client)
            if (not data and updated.user_id is None) or expires <= self._clock():
                self._entries.pop(key, None)
            else:
                self._entries[key] = updated
            if changes.bind and changes.user_id is not None and self.max_per_user:
                self._cap(changes.user_id, key, self.max_per_user)
            return ApplyResult.APPLIED

    def write_keys(self, key: str, writes: KeyWrites) -> Written | None:
        with self._lock:
            entry = self._live(key)
            if entry is None or entry.forward is not None or not _readable(entry):
                return None
            deadline = cap(writes.now + writes.idle, entry.absolute)
            if writes.lifetime is not None:
                deadline = min(deadline, entry.created + writes.lifetime)
            if deadline <= writes.now:
                return None
            if writes.max_keys is not None and len(entry.data.keys() | writes.set.keys()) > (
                writes.max_keys
            ):
                return None
            value = None if writes.read is None else entry.data.get(writes.read)
            entry.data = {**entry.data, **writes.set}
            entry.seen = writes.now
            if kept(entry.expires, deadline, writes.step):
                return Written(entry.expires, value, moved=False)
            entry.expires = deadline
            return Written(deadline, value)

    def _cap(self, user_id: str, current: str, limit: int) -> None:
        # The sessions bound longest ago go; the one logging in now stays.
        others = [
            (entry.issued, key)
            for key in list(self._entries)
            if key != current
            and (entry := self._live(key)) is not None
            and entry.user_id == user_id
        ]
        for _, key in sorted(others)[: max(0, len(others) + 1 - limit)]:
            del self._entries[key]

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        found = [
            SessionInfo(s.handle, user_id, s.created, s.last_seen, s.client)
            for s in self.sessions()
            if s.user_id == user_id
        ]
        return sorted(found, key=lambda info: info.created)

    def sessions(self) -> Iterator[StoredSession]:
        with self._lock:
            live = [(key, e) for key in list(self._entries) if (e := self._live(key)) is not None]
        for key, entry in live:
            if entry.forward is None:
                yield _stored(key, entry)

    def session(self, handle: str) -> tuple[StoredSession, Record] | None:
        with self._lock:
            for key in list(self._entries):
                entry = self._live(key)
                if entry is not None and entry.forward is None and entry.handle == handle:
                    record = Record(
                        dict(entry.data), entry.created, entry.absolute, entry.issued,
                        entry.user_id, handle=entry.handle,
                    )  # fmt: skip
                    return _stored(key, entry), record
        return None

    def revoke(self, handle: str) -> bool:
        with self._lock:
            doomed = [
                key
                for key in list(self._entries)
                if (entry := self._live(key)) is not None
                and entry.handle == handle
                and not entry.forward
            ]
            for key in doomed:
                del self._entries[key]
        return bool(doomed)

    def purge(self) -> int:
        with self._lock:
            before = len(self._entries)
            for key in list(self._entries):
                self._live(key)
            return before - len(self._entries)

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for key in list(self._entries) if self._live(key) is not None)


class AsyncMemoryStore(AsyncOffloadStore):
    """The async twin of :class:`MemoryStore`, for ASGI tests and single-process apps.

    :param clock: Returns the time in epoch seconds; the expiry checks use it.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.time, max_per_user: int | None = None
    ) -> None:
        # Memory operations never block: no thread hop needed.
        self._memory = MemoryStore(clock=clock, max_per_user=max_per_user)
        super().__init__(self._memory, thread=False)

    async def write_keys(self, key: str, writes: KeyWrites) -> Written | None:
        return self._memory.write_keys(key, writes)


def from_settings(settings: Settings, *, asyncio: bool) -> MemoryStore | AsyncMemoryStore:
    """The store for ``SESSION_TYPE = "memory"`` (one process only: for tests)."""
    limit = settings.max_per_user
    return AsyncMemoryStore(max_per_user=limit) if asyncio else MemoryStore(max_per_user=limit)
