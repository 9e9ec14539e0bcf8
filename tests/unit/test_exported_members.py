from __future__ import annotations

import importlib
import types

import pytest


@pytest.mark.parametrize("module_name", ["sharedsession", "sharedsession.stores"])
def test_all_lists_exactly_the_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(module.__all__) == public
    assert sorted(module.__all__) == module.__all__


def test_optional_backends_are_not_imported_by_the_stores_package() -> None:
    import sharedsession.stores as stores

    assert not hasattr(stores, "RedisStore") and not hasattr(stores, "SQLiteStore")
