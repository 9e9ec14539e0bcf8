"""Sync/async twin pairs expose the same public methods with the same parameters."""

from __future__ import annotations

import inspect

from sharedsession.stores.redis import AsyncRedisStore
from sharedsession.stores.redis import RedisStore


def test_sync_and_async_twins_have_the_same_public_methods() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")
        }

    sync, async_ = public(RedisStore), public(AsyncRedisStore)
    assert sync.pop("close") and async_.pop("aclose")
    assert sync.keys() == async_.keys()
    for name in sync:
        assert list(sync[name].parameters) == list(async_[name].parameters), name
