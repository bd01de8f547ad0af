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


# Every Content-Security-Policy violation a page reports, kept where the test can read it.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""
SHOTS = os.environ.get("STUDIO_SCREENSHOTS")  # a folder to keep the screenshots in, to look at


@pytest.fixture(autouse=True)
def _studio_serves_media(monkeypatch):
    """Let /media/ reach the studio's own view (authorisation, byte ranges, download names).

    Django's live server would otherwise answer it with a plain file handler of its own.
    """
    from django.test.testcases import _MediaFilesHandler

    monkeypatch.setattr(_MediaFilesHandler, "_should_handle", lambda self, path: False)


@pytest.fixture
def browser_page():
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.add_init_script(RECORD_CSP_VIOLATIONS)
        page.console_errors = []
        page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
        yield page
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def assert_policy_kept(page, where: str) -> None:
    violations = page.evaluate("window.__cspViolations")
    csp_errors = [text for text in page.console_errors if "Content Security Policy" in text]
    assert not violations and not csp_errors, f"{where}: {violations} {csp_errors}"


def screenshot(page, tmp_path, name: str) -> None:
    folder = SHOTS or str(tmp_path)
    os.makedirs(folder, exist_ok=True)
    page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_creator_signs_in_makes_an_avatar_and_plays_a_render(live_server, embedded_worker, browser_page, tmp_path):
    page = browser_page
    user_create(username="alice", password="correct horse battery")
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "correct horse battery")
    assert_policy_kept(page, "login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="No avatars yet")).to_be_visible()
    assert_policy_kept(page, "empty avatar list")

    page.click("text=Create your first avatar")
    page.set_input_files("#id_source", str(media_cache.photo("astronaut", "png")))
    page.fill("#id_name", "Astronaut")
    page.check("input[name=gender][value=female]")
    page.check("#id_consent")
    assert_policy_kept(page, "avatar form")
    page.click("#avatar-form button[type=submit]")
    expect(page.locator("#avatar-status .badge")).to_have_text("Ready", timeout=90_000)
    assert_policy_kept(page, "avatar page")
    screenshot(page, tmp_path, "avatar")

    page.click("text=Render a video")
    page.fill("#id_title", "Hello from the browser")
    page.fill("#id_script", SCRIPT)
    expect(page.locator(".script-counter")).to_have_text(f"{len(SCRIPT):,} / 2,000 characters")
    assert_policy_kept(page, "render form")
    screenshot(page, tmp_path, "render-form")
    page.click("#render-form button[type=submit]")

    expect(page.locator("#render-status progress")).to_be_visible(timeout=30_000)
    cancel = page.get_by_role("button", name="Cancel")
    cancel.focus()
    values = set()
    for _ in range(480):
        state = page.evaluate(
            """() => ({
                video: !!document.querySelector('video.player'),
                value: document.querySelector('#render-status progress')?.value ?? null,
                focused: document.activeElement?.textContent,
            })"""
        )
        if state["video"]:
            break
        values.add(state["value"])
        # The polls replace only the live part: the Cancel button keeps the keyboard focus.
        assert state["focused"] == "Cancel", state
        if len(values) == 3:
            screenshot(page, tmp_path, "render-running")
        page.wait_for_timeout(200)
    video = page.locator("video.player")
    expect(video).to_be_visible(timeout=60_000)
    assert any(value and 0 < value < 100 for value in values), values
    assert_policy_kept(page, "render page")

    page.evaluate("document.querySelector('video.player').muted = true")
    page.evaluate("document.querySelector('video.player').play()")
    page.wait_for_function("() => document.querySelector('video.player').currentTime > 0.5", timeout=20_000)
    duration = page.evaluate("document.querySelector('video.player').duration")
    assert duration > 2
    page.evaluate("document.querySelector('video.player').currentTime = 1.0")  # seeking needs Range
    page.wait_for_function("() => Math.abs(document.querySelector('video.player').currentTime - 1.0) < 0.5")
    # The captions track loads (past the Content-Security-Policy) and shows the script's words.
    page.wait_for_function("() => document.querySelector('video.player').textTracks[0]?.cues?.length > 0")
    first_cue = page.evaluate("document.querySelector('video.player').textTracks[0].cues[0].text")
    assert first_cue.replace("\n", " ") in SCRIPT, first_cue
    # The photo talks: the lower face differs between moments of speech (a still photo: not at all).
    changes = page.evaluate(
        """async () => {
            const video = document.querySelector('video.player');
            const canvas = document.createElement('canvas');
            canvas.width = video.videoWidth; canvas.height = video.videoHeight;
            const context = canvas.getContext('2d', {willReadFrequently: true});
            const grab = async (t) => {
                video.currentTime = t;
                await new Promise((done) => video.addEventListener('seeked', done, {once: true}));
                context.drawImage(video, 0, 0);
                // the middle of the frame's lower half: where a centred portrait's mouth is
                return context.getImageData(canvas.width * 0.3, canvas.height * 0.35,
                                            canvas.width * 0.4, canvas.height * 0.3).data;
            };
            video.pause();
            const frames = [];
            for (const t of [0.6, 0.9, 1.2, 1.5, 1.8]) frames.push(await grab(t));
            const differences = [];
            for (let i = 1; i < frames.length; i++) {
                let total = 0;
                for (let j = 0; j < frames[i].length; j += 4) total += Math.abs(frames[i][j] - frames[0][j]);
                differences.push(total / (frames[i].length / 4));
            }
            return differences;
        }"""
    )
    assert max(changes) > 1.0, changes
    download = page.get_by_role("link", name="Download MP4")
    expect(download).to_be_visible()
    saved = page.request.get(live_server.url + download.get_attribute("href"))
    assert saved.headers["content-disposition"] == 'attachment; filename="Hello from the browser.mp4"'
    assert saved.headers["content-type"] == "video/mp4" and len(saved.body()) > 10_000
    screenshot(page, tmp_path, "render")
    render_path = page.url.removeprefix(live_server.url)

    for path in ["/renders/", "/team/", "/avatars/", "/renders/nothing-here/"]:
        page.goto(f"{live_server.url}{path}")
        assert_policy_kept(page, path)
        if path == "/team/":  # the owner's sections: members, API keys, webhook secret, providers
            screenshot(page, tmp_path, "team")
    page.set_viewport_size({"width": 390, "height": 844})
    for path, name in [("/renders/", "renders-390"), (render_path, "render-390"), ("/team/", "team-390")]:
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path  # nothing sticks out sideways
        screenshot(page, tmp_path, name)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_in_s3_mode_the_avatar_form_uploads_straight_to_the_bucket(live_server, s3_server, settings, embedded_worker,
                                                                   browser_page, tmp_path):
    from api.models import Upload
    from avatars.models import Avatar
    from tests.conftest import BUCKET

    endpoint, client = s3_server
    settings.AWS_STORAGE_BUCKET_NAME = BUCKET
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": BUCKET, "endpoint_url": endpoint, "region_name": "us-east-1",
                        "access_key": "testing", "secret_key": "testing", "signature_version": "s3v4"},
        },
    }
    # the page may use the bucket as it would its real one (settings computed the origins at import)
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {**directives, **{name: [*directives[name], endpoint]
                                        for name in ("connect-src", "img-src", "media-src")}},
    }
    page = browser_page
    user_create(username="alice", password="correct horse battery")
    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/avatars/new/")
    page.set_input_files("#id_source", str(media_cache.photo("astronaut", "png")))
    page.fill("#id_name", "Straight to the bucket")
    page.check("input[name=gender][value=female]")
    page.check("#id_consent")
    with page.expect_request(lambda request: request.url.startswith(endpoint) and request.method == "POST"):
        page.click("#avatar-form button[type=submit]")
    # the avatar's own page (not /avatars/new/, which a glob would match at once)
    page.wait_for_url(re.compile(r"/avatars/[0-9a-f-]{36}/$"), timeout=60_000)
    expect(page.locator("h1")).to_have_text("Straight to the bucket")
    assert_policy_kept(page, "direct upload")
    screenshot(page, tmp_path, "direct-upload")
    avatar = Avatar.objects.get()
    assert avatar.source_name == "astronaut.png"
    assert Upload.objects.get().status == Upload.Status.USED
    stored = [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert avatar.source.name in stored
