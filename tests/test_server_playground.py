"""The LangServe playground driven in headless Chromium, against a real server with an API key.

The browser gets the key the way a person's browser would: the server answers 401
with a Basic challenge, and the browser sends the key as the password. The test
fills the form, runs a task to the end, and saves two screenshots (the form, and the
end of the run) under
``tests/artifacts/`` (git-ignored) for a person to look at.

Needs Python ``playwright`` and a Chromium at ``$STARCODER_CHROMIUM`` (default
``/usr/bin/chromium``, the Debian package); never downloads a browser.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_process import PROJECT_ROOT, ServerProcess, running_server

CHROMIUM = Path(os.environ.get("STARCODER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
API_KEY = "playground-key-71c2"
TASK = "Write add(a, b) that returns the sum of a and b."

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("playground"), api_key=API_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_playground_needs_the_key(server, browser):
    context = browser.new_context()
    try:
        response = context.request.get(f"{server.url}/agent/playground/")
        assert response.status == 401
        assert response.headers["www-authenticate"].startswith("Basic")
        # Without credentials to offer, Chromium gives up on the page itself.
        with pytest.raises(sync_api.Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
            context.new_page().goto(f"{server.url}/agent/playground/")
    finally:
        context.close()


def test_the_playground_runs_a_task_to_the_end(server, browser):
    thread_id = f"playground-{uuid.uuid4().hex[:8]}"
    context = browser.new_context(
        http_credentials={"username": "api", "password": API_KEY},
        viewport={"width": 1280, "height": 1500},
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{server.url}/agent/playground/")
        page.locator('[id="#/properties/thread_id-input"]').fill(thread_id)
        page.locator('[id="#/properties/task-input"]').fill(TASK)
        start = page.get_by_role("button", name="Start")
        sync_api.expect(start).to_be_enabled(timeout=10_000)
        start.click()
        # The output panel shows one block per node; finalize is the last.
        sync_api.expect(page.get_by_text('"finalize"')).to_be_visible(timeout=90_000)
        sync_api.expect(page.get_by_text('"best_iteration"').first).to_be_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        form_shot, result_shot = (
            ARTIFACTS / "playground-form.png",
            ARTIFACTS / "playground-result.png",
        )
        page.screenshot(path=str(form_shot))
        # The end of the run: the last lines of finalize's block, under it the Start button.
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.screenshot(path=str(result_shot))
        assert form_shot.stat().st_size > 10_000 and result_shot.stat().st_size > 10_000
        assert not errors, errors
    finally:
        context.close()
    state = httpx.get(f"{server.url}/threads/{thread_id}/state", headers={"X-API-Key": API_KEY}).json()
    assert state["finished"] is True and state["values"]["passed"] is True


@pytest.mark.parametrize("agent", ["generate", "refine", "review", "coverage"])
def test_single_agent_playgrounds_draw_their_forms(server, browser, agent):
    context = browser.new_context(http_credentials={"username": "api", "password": API_KEY})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{server.url}/agents/{agent}/playground/")
        first_field = "task" if agent == "generate" else "code"
        sync_api.expect(page.locator(f'[id="#/properties/{first_field}-input"]')).to_be_visible()
        assert not errors, errors
    finally:
        context.close()
