"""Error pages, security headers and upload limits: what a careless or curious visitor meets."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from tests import media_cache
from tests.base import BaseTestCase


class ErrorPageTestCase(BaseTestCase):
    def test_a_missing_page_is_the_studios_own_even_under_debug(self):
        self.login(self.alice)
        for path in ["/no/such/page/", "/renders/00000000-0000-0000-0000-000000000000/", "/media/teams/1/x"]:
            with self.subTest(path=path):
                response = self.client.get(path)
                self.assertContains(response, "<h1>We can't find that</h1>", status_code=404)
                self.assertContains(response, 'href="/static/css/studio.css"', status_code=404)

    def test_a_forbidden_action_says_why_on_a_styled_page(self):
        self.login(self.vera, self.team)
        response = self.client.get("/avatars/new/")
        self.assertContains(response, "Viewers can look but not create or change anything.", status_code=403)
        self.assertContains(response, 'href="/static/css/studio.css"', status_code=403)

    def test_a_1000_character_file_name_gets_a_page_not_a_bare_400(self):
        # Built by hand: Django's own test uploads shorten names to 255 characters, browsers don't.
        self.login(self.alice)
        boundary = "studio-boundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\nx\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="source"; filename="{"a" * 1000}.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode() + media_cache.photo().read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        response = self.client.generic(
            "POST", "/avatars/new/", body, content_type=f"multipart/form-data; boundary={boundary}"
        )
        self.assertContains(response, "a file name can be at most 255 characters", status_code=400)
        self.assertContains(response, 'href="/static/css/studio.css"', status_code=400)


class UploadLimitTestCase(BaseTestCase):
    @override_settings(AVATAR_MAX_UPLOAD_BYTES=1024 * 1024)
    def test_the_oversize_message_states_the_configured_limit_and_nothing_else(self):
        self.login(self.alice)
        big = SimpleUploadedFile("big.png", media_cache.big_photo().read_bytes())
        response = self.client.post(
            "/avatars/new/", {"name": "Big", "gender": "female", "background": "none", "consent": "on", "source": big}
        )
        self.assertContains(response, "This file is larger than 1 MB, the most this studio accepts", status_code=400)
        self.assertNotContains(response, "Choose the video or photo", status_code=400)
        self.assertNotContains(response, "2 GB", status_code=400)


class HeadersTestCase(BaseTestCase):
    def test_pages_carry_a_strict_csp_and_permissions_policy(self):
        self.login(self.alice)
        response = self.client.get("/avatars/")
        policy = response["Content-Security-Policy"]
        self.assertIn("script-src 'self'", policy)
        self.assertIn("style-src 'self'", policy)
        self.assertNotIn("unsafe-inline", policy)
        self.assertIn("frame-ancestors 'none'", policy)
        self.assertIn("camera=()", response["Permissions-Policy"])

    def test_team_pages_and_media_are_private(self):
        from tests.factories import ready_avatar

        avatar = ready_avatar(team=self.team, user=self.alice)
        self.login(self.alice)
        for path in ["/avatars/", f"/avatars/{avatar.pk}/", f"/media/{avatar.poster.name}"]:
            with self.subTest(path=path):
                self.assertIn("private", self.client.get(path)["Cache-Control"])
