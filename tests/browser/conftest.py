"""Browser tests: Playwright for Python driving Debian's Chromium against pytest-django's
live server (which serves the static files too).

Chromium comes from Debian (`make test` installs it when missing); Playwright's own browser
download is never used. Without /usr/bin/chromium the browser tests skip, saying why.
Tests using these fixtures must be `django_db(transaction=True)`: the live server runs in
another thread with its own database connection and sees only committed rows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apps.accounts.models import Role, User, WidgetKey
from apps.accounts.services import user_create, widget_key_create

CHROMIUM = Path(os.environ.get("DESKPILOT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DESKTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 780}
PASSWORD = "browser-test-pw-1"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium package "
            "(apt-get install chromium); it could not be installed on this machine"
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, which Django would otherwise refuse near a running loop.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser):  # type: ignore[no-untyped-def]
    """Factory: a page in a fresh browser context (its own cookies and localStorage).

    Any JavaScript `alert`/`confirm` fails the test: nothing should ever open one.
    """
    contexts = []
    dialogs: list[str] = []

    def make(viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(viewport=viewport or DESKTOP)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        return page

    yield make
    for context in contexts:
        context.close()
    assert dialogs == [], f"a script opened a dialog: {dialogs}"


@dataclass
class Site:
    url: str
    widget_key: WidgetKey


@pytest.fixture
def site(live_server) -> Site:  # type: ignore[no-untyped-def]
    """The live server with a widget key for its own origin (the demo page finds it)."""
    widget_key = widget_key_create(site_name="Browser test", allowed_origins=[live_server.url])
    return Site(url=live_server.url, widget_key=widget_key)


@pytest.fixture
def agent_user(transactional_db) -> User:  # type: ignore[no-untyped-def]
    return user_create(username="agnes", password=PASSWORD, role=Role.AGENT)


@pytest.fixture
def admin_user(transactional_db) -> User:  # type: ignore[no-untyped-def]
    return user_create(username="adele", password=PASSWORD, role=Role.ADMIN)


def sign_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/inbox/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/inbox/$"))


def admin_sign_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/$"))


def widget_open(page: Any, base_url: str) -> Any:
    """Open the demo page and the chat panel; returns the panel locator."""
    page.goto(f"{base_url}/widget/demo/")
    page.get_by_role("button", name=re.compile("support chat")).click()
    panel = page.get_by_role("dialog", name="Fernhill support")
    panel.wait_for()
    return panel


def widget_send(page: Any, text: str) -> None:
    page.get_by_label("Your message").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()
