"""Headless Chromium for the gallery tests: Debian's ``/usr/bin/chromium`` driven by PyPI ``playwright``
(``playwright install`` downloads cannot work here, so the browser is never downloaded)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = os.environ.get("LUMA_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def require_chromium() -> None:
    """Fail (never skip) when the browser the tests launch is missing: a suite that silently skips proves nothing.

    The check and :func:`chromium` look at the same path, ``$LUMA_CHROMIUM`` or ``/usr/bin/chromium``.
    """
    import pytest

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's package (apt-get install chromium; `make test` "
            "does it when run as root) or point LUMA_CHROMIUM at a Chromium binary",
            pytrace=False,
        )


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium (``playwright.sync_api.Browser``)."""
    from playwright.sync_api import sync_playwright

    require_chromium()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def wait_for(what: str, probe: Any, timeout: float = 60.0) -> Any:
    """``probe()`` once it is neither ``None`` nor ``False``, polled every 0.5 s; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while (value := probe()) is None or value is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)
    return value


def login(page: Any, base_url: str, username: str, password: str) -> None:
    """Sign in through SimpleAuthManager's login page (sets the ``_token`` cookie)."""
    page.goto(f"{base_url}/auth/login", wait_until="networkidle")
    page.locator("input[type=text], input[name=username]").first.fill(username)
    page.locator("input[type=password]").first.fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_function("document.cookie !== undefined")
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)
