"""Session contents shared by every benchmark, so every variant stores the same data."""

from __future__ import annotations

from typing import Any

SMALL: dict[str, Any] = {
    "user_id": 12345,
    "user": "alice@example.com",
    "csrf_token": "5f2b0c1e9a7d4c3b8e6f1a2d3c4b5a69",
}


def cart(items: int = 20) -> list[dict[str, Any]]:
    return [
        {
            "sku": f"SKU-{i:05d}",
            "name": f"Product {i:02d}, medium",
            "qty": 1 + i % 3,
            "price": f"{9 + i}.99",
            "options": "blue/M",
        }
        for i in range(items)
    ]


#: About 2 KB of JSON: a logged-in user with a cart of 20 items.
LARGE: dict[str, Any] = {**SMALL, "cart": cart()}
