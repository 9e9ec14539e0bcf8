"""What an async store keeps for each event loop it runs on.

An asyncio connection, and a pool's lock or queue once a caller waited on it,
work only on the loop that made them; one store may serve several loops: a
``TestClient`` used without ``with`` runs each request on a loop of its own,
and so do ``asyncio.run`` and pytest-asyncio's tests, and loops may run at
once in threads of their own. :class:`PerLoop` makes each loop's state on
first use there and ends it as that loop shuts down: ``asyncio.run``,
``asyncio.Runner`` and anyio finalize async generators before they close a
loop, and a generator started for the state waits for that in ``finally``. A
loop closed without that step (``loop.close()`` alone) is let go when the
next loop starts, and the collector takes what it held.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncGenerator
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any
from typing import Generic
from typing import TypeVar

T = TypeVar("T")

logger = logging.getLogger("sharedsession")


class PerLoop(Generic[T]):
    """Each event loop's ``T``.

    :param make: Makes the state of a loop; its argument tells whether the
        loop is the first one the store ran on (which uses what the store was
        given; any other loop needs a state of its own).
    :param end: Closes a state as its loop shuts down; what it raises is
        logged (the shutdown goes on).
    """

    def __init__(self, make: Callable[[bool], T], end: Callable[[T], Awaitable[None]]) -> None:
        self._make = make
        self._end = end
        self._entries: weakref.WeakKeyDictionary[Any, _Entry[T]] = weakref.WeakKeyDictionary()
        self._first: weakref.ref[Any] | None = None
        self._lock = threading.Lock()  # loops in threads of their own start and end at once
        self._warned = False

    @property
    def started(self) -> bool:
        """Whether the store ran on some loop already."""
        return self._first is not None

    def get(self) -> T | None:
        """The running loop's state, if it has one (the hot path; else :meth:`here`)."""
        entry = self._entries.get(asyncio.get_running_loop())
        return None if entry is None else entry.state

    async def here(self) -> T:
        """The running loop's state, made on first use."""
        loop = asyncio.get_running_loop()
        entry = self._entries.get(loop)
        if entry is None:
            with self._lock:
                for ended in [each for each in self._entries if each.is_closed()]:
                    del self._entries[ended]
                if self._first is None:
                    self._first = weakref.ref(loop)
                entry = _Entry(self._make(self._first() is loop), self)
                self._entries[loop] = entry
            await entry.start()
        return entry.state

    async def take(self) -> T | None:
        """The running loop's state, no longer kept nor ended with the loop:
        the caller closes it (``aclose``); a later use makes a new one."""
        with self._lock:
            entry = self._entries.pop(asyncio.get_running_loop(), None)
        if entry is None:
            return None
        await entry.forget()
        return entry.state

    def warn_once(self, message: str) -> None:
        """Log ``message`` the first time only (a store on many loops would repeat it)."""
        if not self._warned:
            self._warned = True
            logger.warning(message)

    async def _ended(self, entry: _Entry[T]) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._entries.get(loop) is entry:
                # The entry holds the loop (its generator names the loop's
                # finalizer, its connections the loop's streams): kept, every
                # loop and its state would stay alive as long as the store.
                del self._entries[loop]
        try:
            await self._end(entry.state)
        except Exception as exc:  # a shutdown goes on; the reason is logged
            logger.warning("closing store connections at the end of an event loop: %s", exc)


class _Entry(Generic[T]):
    __slots__ = ("state", "_ended", "_ender", "_owner")

    def __init__(self, state: T, owner: PerLoop[T]) -> None:
        self.state = state
        self._owner = owner
        self._ender: AsyncGenerator[None, None] | None = None
        self._ended = False

    async def start(self) -> None:
        self._ender = self._until_the_loop_ends()
        await anext(self._ender)

    async def forget(self) -> None:
        self._ended = True
        if self._ender is not None:
            await self._ender.aclose()

    async def _until_the_loop_ends(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if not self._ended:
                self._ended = True
                await self._owner._ended(self)
