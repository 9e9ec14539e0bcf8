"""A real browser through nginx to two shop instances: what a visitor sees.

Chromium from Debian's packages, driven by Playwright; no browser is
downloaded. Screenshots go to ``artifacts/e2e/`` (kept by CI). Skipped
locally without Chromium, a failure in CI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.fleet import ROOT
from examples.fleet import Fleet
from tests.servers import RedisServer
from tests.servers import require_binary

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ARTIFACTS = ROOT / "artifacts" / "e2e"
SHOP = "examples.shop.app:create_app('{name}')"
# Without the background-networking flags Chromium keeps calling out, and a
# closed network refuses it; root needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = require_binary("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(params=["sqlite", pytest.param("redis")])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two shop instances (A and B) behind nginx; yields (url, store kind)."""
    require_binary("nginx")
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        request.getfixturevalue("redis_client")
        env = {"SESSION_REDIS_URL": server.url}
    else:
        env = {"SESSION_REDIS_URL": "", "SHOP_SQLITE_PATH": str(tmp_path / "shop.sqlite3")}
    with Fleet(SHOP, ["A", "B"], tmp_path / "fleet", env=env, workers=1) as fleet:
        yield fleet.url, request.param


def instances(page: Any) -> tuple[str, str | None]:
    """(who rendered the page, who made the last change) as the page says."""
    rendered = page.locator("#rendered b").inner_text()
    changed = page.locator("#changed b")
    return rendered, changed.inner_text() if changed.count() else None


def click(page: Any, text: str) -> None:
    """Click a form's button and wait for the page after its redirect."""
    with page.expect_navigation():
        page.click(f"text={text}")


def text(page: Any) -> str:
    """What the page shows, as one line."""
    return " ".join(page.locator("body").inner_text().split())


def cart(page: Any) -> list[str]:
    items = page.locator("h2:has-text('Cart') + ul li").all_inner_texts()
    return [] if items == ["empty"] else items


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_login_cart_reload_logout_across_instances(chromium: Any, shop: tuple[str, str]) -> None:
    url, kind = shop
    context = chromium.new_context(viewport={"width": 900, "height": 800})
    page = context.new_page()
    page.goto(url)
    assert page.locator("input[name=user]").is_visible()
    assert cart(page) == []
    where = page.locator("small").inner_text()
    assert ("Redis at redis://127.0.0.1:" if kind == "redis" else "the SQLite file") in where

    page.fill("input[name=user]", "ann")
    click(page, "Log in")
    assert "Logged in as ann" in text(page)

    # One click: the POST lands on one instance, the page after the redirect on the other.
    click(page, "Add Apple")
    rendered, changed = instances(page)
    assert {rendered, changed} == {"A", "B"}, (rendered, changed)
    assert f"The last change (added Apple) was made by instance {changed}" in text(page)
    assert cart(page) == ["Apple"]
    shot(page, f"after-one-click-{kind}")

    seen = {rendered}
    for item in ("Bread", "Cheese"):
        click(page, f"Add {item}")
        seen.add(instances(page)[0])
    assert cart(page) == ["Apple", "Bread", "Cheese"]
    for _ in range(3):
        page.reload()
        seen.add(instances(page)[0])
        assert cart(page) == ["Apple", "Bread", "Cheese"]
        assert "Logged in as ann" in text(page)
    assert seen == {"A", "B"}

    # A second tab shares the session: its change shows in the first tab.
    tab = context.new_page()
    tab.goto(url)
    click(tab, "Add Dates")
    page.reload()
    assert cart(page) == ["Apple", "Bread", "Cheese", "Dates"]

    click(page, "Log out")
    notice = page.locator("#notice").inner_text()
    assert re.fullmatch(r"You are logged out \(by instance [AB]\); your cart is gone\.", notice)
    assert cart(page) == [] and page.locator("input[name=user]").is_visible()
    shot(page, f"logged-out-{kind}")
    page.reload()
    assert page.locator("#notice").count() == 0
    tab.reload()
    assert cart(tab) == [] and "Logged in" not in text(tab)
    context.close()


def test_the_page_fits_a_phone(chromium: Any, shop: tuple[str, str]) -> None:
    url, kind = shop
    context = chromium.new_context(viewport={"width": 375, "height": 667}, is_mobile=True)
    page = context.new_page()
    page.goto(url)
    page.fill("input[name=user]", "bo")
    click(page, "Log in")
    click(page, "Add Bread")
    assert cart(page) == ["Bread"]
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the phone's screen"
    shot(page, f"phone-{kind}")
    context.close()
