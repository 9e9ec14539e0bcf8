"""Test helpers that wrap real stores; they never stand in for one."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import Counter
from collections.abc import Coroutine
from typing import Any
from typing import TypeVar

from sharedsession.stores.base import ApplyResult
from sharedsession.stores.base import AsyncSessionStore
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.base import KeyWrites
from sharedsession.stores.base import Record
from sharedsession.stores.base import Refresh
from sharedsession.stores.base import SessionInfo
from sharedsession.stores.base import SessionStore
from sharedsession.stores.base import Written
from sharedsession.stores.base import user_index

T = TypeVar("T")


class CountingStore:
    """Counts the calls made to a real store, to check the round-trip budget."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        self.calls["load"] += 1
        return self.store.load(key, refresh=refresh)

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        self.calls["apply"] += 1
        return self.store.apply(key, changes)

    def write_keys(self, key: str, writes: KeyWrites) -> Written | None:
        self.calls["write_keys"] += 1
        write = getattr(self.store, "write_keys", None)
        written: Written | None = None if write is None else write(key, writes)
        return written

    def delete(self, key: str) -> None:
        self.calls["delete"] += 1
        self.store.delete(key)

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        self.calls["sessions_for_user"] += 1
        infos: list[SessionInfo] = user_index(self.store).sessions_for_user(user_id)
        return infos

    def __getattr__(self, name: str) -> Any:
        # Administration and the rest go to the store, uncounted.
        return getattr(self.store, name)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> CountingStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BlockingFacade:
    """Drives an async store from blocking test code on a private event loop.

    The contract suite is written once, against the blocking protocol; this
    runs it unchanged against the async twins.
    """

    def __init__(self, store: AsyncSessionStore) -> None:
        self.store = store
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            return self._loop.run_until_complete(coro)

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        return self._run(self.store.load(key, refresh=refresh))

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        return self._run(self.store.apply(key, changes))

    def delete(self, key: str) -> None:
        self._run(self.store.delete(key))

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        infos: list[SessionInfo] = self._run(user_index(self.store).sessions_for_user(user_id))
        return infos

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        def blocking(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.isasyncgen(result):
                return iter(self._run(_collect(result)))
            return self._run(result) if inspect.iscoroutine(result) else result

        return blocking

    def close(self) -> None:
        self._run(self.store.aclose())
        self._loop.close()

    def __enter__(self) -> BlockingFacade:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncCountingStore:
    """Counts the calls made to a real async store, to check the round-trip budget."""

    def __init__(self, store: AsyncSessionStore) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    async def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        self.calls["load"] += 1
        return await self.store.load(key, refresh=refresh)

    async def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        self.calls["apply"] += 1
        return await self.store.apply(key, changes)

    async def delete(self, key: str) -> None:
        self.calls["delete"] += 1
        await self.store.delete(key)

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        self.calls["sessions_for_user"] += 1
        infos: list[SessionInfo] = await user_index(self.store).sessions_for_user(user_id)
        return infos

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def aclose(self) -> None:
        await self.store.aclose()

    async def __aenter__(self) -> AsyncCountingStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def _collect(items: Any) -> list[Any]:
    return [item async for item in items]
