"""A real ``autopilot serve`` process and Debian's Chromium driven by Playwright.

Skipped, with the reason, when Playwright or ``/usr/bin/chromium`` is missing (``./dev test``
installs both where it can). Every page load is checked: no request may leave 127.0.0.1 and no
script error may happen."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from api.tokens import TokenService
from tests.api.conftest import exception_body
from tests.e2e.server import SECRET, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
EXPECT_MS = 5000


def missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (it is in the 'test' extra: pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (./dev test installs Debian's chromium with apt-get when it runs as root)"
    return None


class Dashboard:
    """The server, its tokens, and one browser page with the dashboard's user signed in or not."""

    def __init__(self, server: ServerProcess, page: Any, session: aiohttp.ClientSession) -> None:
        self.server, self.page, self.session = server, page, session
        self.base = server.base
        tokens, hour = TokenService(SECRET), timedelta(hours=1)  # the server process's signing key
        self.user = tokens.mint(tenant="acme", subject="reviewer", roles=["admin"], ttl=hour,
                                queues=["trade-compliance"])
        self.ingester = tokens.mint(tenant="acme", subject="ingester", roles=["operator"], ttl=hour)
        self.approver = tokens.mint(tenant="acme", subject="lee", roles=["approver"], ttl=hour)

    async def call(self, method: str, path: str, bearer: str, json: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {bearer}"}
        async with self.session.request(method, self.base + path, json=json, headers=headers) as response:
            return response.status, await response.json()

    async def ingest(self, **overrides: Any) -> dict[str, Any]:
        """An exception sent by someone other than the page's user (who may then approve it)."""
        status, body = await self.call("POST", "/api/v1/exceptions", self.ingester, exception_body(**overrides))
        assert status == 202, body
        return body

    async def sign_in(self, route: str = "#/runs") -> None:
        from playwright.async_api import expect

        await self.page.goto(f"{self.base}/{route}")
        await self.page.get_by_label("Bearer token").fill(self.user)
        await self.page.get_by_role("button", name="Sign in").click()
        await expect(self.page.get_by_role("button", name="Log out")).to_be_visible(timeout=EXPECT_MS)

    async def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    server = ServerProcess(tmp_path / "data")
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def dashboard(server: ServerProcess) -> AsyncIterator[Dashboard]:
    from playwright.async_api import async_playwright

    outside: list[str] = []
    script_errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1360, "height": 900})

            async def only_this_server(route: Any) -> None:
                url = route.request.url
                if urlsplit(url).scheme in ("data", "blob") or url.startswith(server.base + "/"):
                    await route.continue_()
                else:
                    outside.append(url)
                    await route.abort()

            await context.route("**/*", only_this_server)
            page = await context.new_page()
            page.on("pageerror", lambda error: script_errors.append(str(error)))
            async with aiohttp.ClientSession() as session:
                yield Dashboard(server, page, session)
            await context.close()
        finally:
            await browser.close()
    assert outside == [], f"the page tried to load from elsewhere: {outside}"
    assert script_errors == [], f"script errors on the page: {script_errors}"
