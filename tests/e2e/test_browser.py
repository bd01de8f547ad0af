"""A creator's first session, in headless Chromium against a live server and a real worker."""

import os
import re
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from studio.services import user_create
from tests import media_cache

# Long enough (about a minute of speech) that the render is still running while we watch.
SCRIPT = " ".join(
    [
        "Hello! I am an astronaut, and this studio made me talk in a browser test.",
        "Every second the page asks the server how far the render has come,",
        "and the bar grows until the video is ready to play.",
    ]
    * 4
)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def browser_page():
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        yield page
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_creator_signs_in_makes_an_avatar_and_plays_a_render(live_server, embedded_worker, browser_page, tmp_path):
    page = browser_page
    user_create(username="alice", password="correct horse battery")
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="No avatars yet")).to_be_visible()

    page.click("text=Create your first avatar")
    page.set_input_files("#id_source", str(media_cache.photo("astronaut", "png")))
    page.fill("#id_name", "Astronaut")
    page.check("input[name=gender][value=female]")
    page.check("#id_consent")
    page.click("#avatar-form button[type=submit]")
    expect(page.locator("#avatar-status .badge")).to_have_text("Ready", timeout=90_000)
    page.screenshot(path=str(tmp_path / "avatar.png"), full_page=True)

    page.click("text=Render a video")
    page.fill("#id_title", "Hello from the browser")
    page.fill("#id_script", SCRIPT)
    page.click("#render-form button[type=submit]")

    expect(page.locator("#render-status .progress")).to_be_visible(timeout=30_000)
    widths = set()
    for _ in range(480):
        state = page.evaluate(
            """() => ({
                video: !!document.querySelector('video.player'),
                width: document.querySelector('#render-status .progress > div')?.style.width || null,
            })"""
        )
        if state["video"]:
            break
        widths.add(state["width"])
        page.wait_for_timeout(200)
    video = page.locator("video.player")
    expect(video).to_be_visible(timeout=60_000)
    assert any(re.fullmatch(r"[1-9]\d*%", width or "") for width in widths), widths

    page.evaluate("document.querySelector('video.player').muted = true")
    page.evaluate("document.querySelector('video.player').play()")
    page.wait_for_function("document.querySelector('video.player').currentTime > 0.5", timeout=20_000)
    duration = page.evaluate("document.querySelector('video.player').duration")
    assert duration > 2
    page.evaluate("document.querySelector('video.player').currentTime = 1.0")  # seeking needs Range
    page.wait_for_function("Math.abs(document.querySelector('video.player').currentTime - 1.0) < 0.5")
    expect(page.get_by_role("link", name="Download MP4")).to_be_visible()
    page.screenshot(path=str(tmp_path / "render.png"), full_page=True)
