"""A time limit on part of a task, at the cost of one timer.

``asyncio.timeout`` is an async context manager: entering and leaving it
costs two coroutines and a state machine, about as much as a Redis command's
own client work on the async hot path. :class:`Deadline` keeps its contract
as a plain context manager (usable inside a coroutine, where the task's
cancellation arrives at an ``await``): when the time is up the task is
cancelled, and that cancellation leaves the block as ``TimeoutError``; a
cancellation that came from elsewhere (even at the same moment) leaves it as
it came.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadline:
    """Cancel the current task if the block runs longer than ``delay`` seconds.

    :param delay: Seconds, or ``None`` for no limit.
    :raises asyncio.TimeoutError: On leaving the block, if the limit cancelled it.
    """

    __slots__ = ("_cancelling", "_delay", "_expired", "_handle", "_task")

    def __init__(self, delay: float | None) -> None:
        self._delay = delay
        self._expired = False
        self._handle: asyncio.Handle | None = None
        self._cancelling = 0

    def __enter__(self) -> Deadline:
        if self._delay is None:
            return self
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadline is for use inside a task")
        self._task = task
        self._expired = False
        # Python 3.11+ counts cancellations: one from elsewhere is told apart.
        count = getattr(task, "cancelling", None)
        self._cancelling = count() if count is not None else 0
        loop = asyncio.get_running_loop()
        if self._delay <= 0:  # already due: before anything else can finish the block
            self._handle = loop.call_soon(self._expire)
        else:
            self._handle = loop.call_later(self._delay, self._expire)
        return self

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is None:
            return
        self._handle.cancel()
        if not self._expired:
            return
        uncancel = getattr(self._task, "uncancel", None)
        if uncancel is not None and uncancel() > self._cancelling:
            return  # cancelled from elsewhere too: that one goes on
        if kind is asyncio.CancelledError:
            raise asyncio.TimeoutError from exc
