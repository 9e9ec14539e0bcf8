"""The store's bound on operations at once: first come, first served."""

from __future__ import annotations

import threading
import time

import pytest

from sharedsession.stores import _slots
from sharedsession.stores._slots import Slots


def wait_for_waiters(slots: Slots, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(slots._waiters) < count:
        assert time.monotonic() < deadline, "the waiter never queued"
        time.sleep(0.001)


def test_a_released_slot_goes_to_the_waiter_not_back_to_the_releaser() -> None:
    slots = Slots(1)
    assert slots.acquire(0)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire(5)))
    waiter.start()
    wait_for_waiters(slots, 1)
    slots.release()
    # threading.Semaphore would let this take the slot again, ahead of the waiter.
    assert slots.acquire(0) is False
    waiter.join()
    assert got == [True]
    slots.release()
    assert slots.acquire(0) is True


def test_waiters_are_served_in_the_order_they_came() -> None:
    slots = Slots(1)
    assert slots.acquire(0)
    order: list[int] = []

    def take(n: int) -> None:
        assert slots.acquire(5)
        order.append(n)
        slots.release()

    threads = []
    for n in range(5):
        thread = threading.Thread(target=take, args=(n,))
        thread.start()
        wait_for_waiters(slots, n + 1)
        threads.append(thread)
    slots.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]


def test_a_wait_that_times_out_takes_nothing() -> None:
    slots = Slots(2)
    assert slots.acquire(0) and slots.acquire(0)
    assert slots.acquire(0.05) is False
    assert slots._waiters == type(slots._waiters)()  # the timed-out waiter left the queue
    slots.release()
    assert slots.acquire(0) is True
    assert slots.acquire(0) is False


class _InterruptedWait:
    """A waiter's lock whose wait is interrupted (a signal, ``KeyboardInterrupt``)."""

    def __init__(self) -> None:
        self.inner = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout != -1:
            raise KeyboardInterrupt
        return self.inner.acquire(blocking, timeout)

    def release(self) -> None:
        self.inner.release()


def test_an_interrupted_wait_leaves_no_waiter_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    slots = Slots(1)
    assert slots.acquire(0)
    monkeypatch.setattr(_slots, "_new_lock", _InterruptedWait)
    with pytest.raises(KeyboardInterrupt):
        slots.acquire(5)
    monkeypatch.undo()
    slots.release()
    # The slot came back, not handed to the waiter that was interrupted.
    assert slots.acquire(0) is True


def test_releasing_a_slot_never_taken_is_an_error() -> None:
    slots = Slots(1)
    with pytest.raises(ValueError, match="never taken"):
        slots.release()
    assert slots.acquire(0) is True
    assert slots.acquire(0) is False


def test_the_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)
