"""A first-come, first-served bound on the operations a store runs at once.

``threading.Semaphore`` lets a thread that releases a slot take it again at
once, ahead of threads already waiting (they must wake and win the GIL
first). With every slot busy, a request that keeps calling the store can hold
one indefinitely while another waits out its whole timeout and answers 503.
Here a released slot goes straight to the longest waiter.
"""

from __future__ import annotations

import threading
from collections import deque

#: Makes the lock a waiter blocks on (a test interrupts that wait).
_new_lock = threading.Lock


class Slots:
    """At most ``size`` holders; waiters are served in the order they came.

    :param size: How many may hold a slot at once (at least 1).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size!r}")
        self._size = size
        self._free = size
        self._lock = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds; whether one was taken."""
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            handed = _new_lock()
            handed.acquire()
            self._waiters.append(handed)
        try:
            if handed.acquire(timeout=max(0.0, timeout)):
                return True  # release() handed its slot over
        except BaseException:
            # Interrupted while waiting: leave the queue, and pass on a slot
            # handed over meanwhile, or a later release would hand it to nobody.
            with self._lock:
                if not self._leave(handed):
                    self._pass_on()
            raise
        with self._lock:
            return not self._leave(handed)  # handed over just as the wait ended: keep it

    def release(self) -> None:
        """Give the slot back: to the longest waiter, if any."""
        with self._lock:
            self._pass_on()

    def _leave(self, handed: threading.Lock) -> bool:
        """Take ``handed`` out of the queue; ``False`` if a slot was handed to it."""
        try:
            self._waiters.remove(handed)
        except ValueError:
            return False
        return True

    def _pass_on(self) -> None:
        if self._waiters:
            self._waiters.popleft().release()
        elif self._free < self._size:
            self._free += 1
        else:
            raise ValueError("a slot was released that was never taken")
