"""The time limit of an async Redis exchange: asyncio.timeout's contract, one timer."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from sharedsession.stores._deadline import Deadline

#: Python 3.10 has no cancellation count: a cancellation at the moment of
#: expiry becomes a timeout there, as with async_timeout.
counted = pytest.mark.skipif(sys.version_info < (3, 11), reason="needs Task.cancelling()")


@counted
def test_a_block_past_its_limit_leaves_with_a_timeout_and_no_cancellation_left() -> None:
    async def scenario() -> tuple[str, int]:
        task = asyncio.current_task()
        assert task is not None
        try:
            with Deadline(0.05):
                await asyncio.sleep(5)
        except asyncio.TimeoutError:
            outcome = "timed out"
        else:
            outcome = "finished"
        await asyncio.sleep(0.01)  # the task goes on: nothing cancels it later
        return outcome, task.cancelling()  # type: ignore[attr-defined,unused-ignore]

    assert asyncio.run(scenario()) == ("timed out", 0)


def test_a_block_within_its_limit_is_never_cancelled_later() -> None:
    async def scenario() -> str:
        with Deadline(0.05):
            await asyncio.sleep(0)
        await asyncio.sleep(0.15)  # past the limit: the timer was cancelled on the way out
        return "finished"

    assert asyncio.run(scenario()) == "finished"


def test_no_limit_sets_no_timer() -> None:
    async def scenario() -> str:
        with Deadline(None):
            await asyncio.sleep(0.05)
        return "finished"

    assert asyncio.run(scenario()) == "finished"


def test_a_cancellation_from_elsewhere_passes_through() -> None:
    async def limited() -> None:
        with Deadline(5):
            await asyncio.sleep(5)

    async def scenario() -> None:
        task = asyncio.create_task(limited())
        await asyncio.sleep(0.01)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())


def test_an_outer_limit_that_ends_first_is_the_one_reported() -> None:
    async def scenario() -> str:
        try:
            await asyncio.wait_for(_limited(5), 0.05)
        except asyncio.TimeoutError:
            return "outer timed out"
        return "finished"

    assert asyncio.run(scenario()) == "outer timed out"


@counted
def test_a_cancellation_at_the_moment_of_expiry_is_not_swallowed() -> None:
    # The limit ends and a cancellation from elsewhere arrives before the task
    # runs again: the block must not turn both into a timeout, which a caller
    # would take for a slow server.
    async def scenario() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        with Deadline(0.01):
            loop.call_later(0.02, task.cancel)  # from elsewhere, just after the limit
            time.sleep(0.05)  # holds the loop: both timers run in its next pass
            await asyncio.sleep(5)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())


def test_a_limit_already_due_ends_a_block_that_would_finish_at_once() -> None:
    async def scenario() -> str:
        try:
            with Deadline(0):
                await asyncio.sleep(0)
        except asyncio.TimeoutError:
            return "timed out"
        return "finished"

    assert asyncio.run(scenario()) == "timed out"


@counted
def test_used_again_it_starts_afresh() -> None:
    async def scenario() -> str:
        deadline = Deadline(0.01)
        with pytest.raises(asyncio.TimeoutError), deadline:
            await asyncio.sleep(5)
        task = asyncio.current_task()
        assert task is not None
        try:
            with deadline:  # a cancellation from elsewhere is not this limit's
                task.cancel()
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            return f"cancelled, {task.cancelling()} pending"  # type: ignore[attr-defined,unused-ignore]
        return "finished"

    assert asyncio.run(scenario()) == "cancelled, 1 pending"


def test_outside_a_task_it_says_so() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def callback() -> None:  # on the loop, in no task
            try:
                with Deadline(1):
                    pass
            except RuntimeError as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

        loop.call_soon(callback)
        await done

    with pytest.raises(RuntimeError, match="inside a task"):
        asyncio.run(scenario())


async def _limited(seconds: float) -> None:
    with Deadline(seconds):
        await asyncio.sleep(seconds)
