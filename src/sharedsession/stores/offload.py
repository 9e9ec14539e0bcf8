"""AsyncOffloadStore: any blocking store as an async one.

For stores whose client library has no async API (SQLite) and for the memory
store, one generic wrapper serves the async adapters, instead of a second
implementation of each store. Blocking calls run in a worker thread, so the
event loop never waits on a disk or a lock.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from collections.abc import Callable
from typing import Any
from typing import TypeVar

from .base import ApplyResult
from .base import AsyncClosing
from .base import ChangeSet
from .base import Record
from .base import Refresh
from .base import SessionInfo
from .base import SessionStore
from .base import StoredSession
from .base import user_index

T = TypeVar("T")


class AsyncOffloadStore(AsyncClosing):
    """Expose a blocking :class:`SessionStore` as an :class:`AsyncSessionStore`.

    :param store: The blocking store; its calls must be thread-safe.
    :param thread: Run each call in a worker thread; ``False`` runs it inline,
        for stores that never block (memory).
    """

    def __init__(self, store: SessionStore, *, thread: bool = True) -> None:
        self.store = store
        self.thread = thread

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self.thread:
            return function(*args, **kwargs)
        return await asyncio.to_thread(functools.partial(function, *args, **kwargs))

    async def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        return await self._call(self.store.load, key, refresh=refresh)

    async def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        return await self._call(self.store.apply, key, changes)

    async def delete(self, key: str) -> None:
        await self._call(self.store.delete, key)

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        infos: list[SessionInfo] = await self._call(
            user_index(self.store).sessions_for_user, user_id
        )
        return infos

    async def sessions(self) -> AsyncIterator[StoredSession]:
        store: Any = self.store
        for stored in await self._call(lambda: list(store.sessions())):
            yield stored

    async def session(self, handle: str) -> tuple[StoredSession, Record] | None:
        store: Any = self.store
        found: tuple[StoredSession, Record] | None = await self._call(
            store.session,
            handle,
        )
        return found

    async def revoke(self, handle: str) -> bool:
        store: Any = self.store
        ended: bool = await self._call(store.revoke, handle)
        return ended

    async def purge(self) -> int:
        store: Any = self.store
        count: int = await self._call(store.purge)
        return count

    async def aclose(self) -> None:
        await self._call(self.store.close)
