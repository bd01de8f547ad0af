"""Media given by URL goes through the address guard, then the same checks as an upload.

A real HTTP server on 127.0.0.1 stands in for a public host (NETGUARD_ALLOW_PRIVATE lets
loopback through, and nothing else).
"""

from avatars.models import Avatar
from renders.models import Render
from tests import media_cache
from tests.api.base import ApiTestCase
from tests.factories import FIXTURES, ready_avatar
from tests.studio import local_http


class MediaUrlTestCase(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.server = local_http.start()
        self.addCleanup(local_http.stop, self.server)
        self.enterContext(self.settings(NETGUARD_ALLOW_PRIVATE=True))

    def test_an_avatar_and_its_background_come_from_urls(self):
        self.server.routes["/people/me.png"] = local_http.body(media_cache.photo().read_bytes(), content_type="image/png")
        self.server.routes["/bg"] = local_http.body((FIXTURES / "poster.jpg").read_bytes(), content_type="image/jpeg")
        response = self.call("POST", "/avatars", {
            "name": "Host", "gender": "female", "consent": True,
            "image_url": self.server.url("/people/me.png"), "background_image_url": self.server.url("/bg"),
        })
        self.assertEqual(response.status_code, 201, response.content)
        avatar = Avatar.objects.get()
        self.assertEqual((avatar.kind, avatar.source_name, avatar.background), ("photo", "me.png", "image"))
        self.assertEqual(avatar.source.read(), media_cache.photo().read_bytes())

    def test_a_voice_track_comes_from_a_url(self):
        avatar = ready_avatar(team=self.team, user=self.alice)
        self.server.routes["/voice.wav"] = local_http.body(media_cache.audio(3.0, "wav").read_bytes(), content_type="audio/wav")
        response = self.call("POST", "/renders", {"avatar_id": str(avatar.pk), "audio_url": self.server.url("/voice.wav")})
        self.assertEqual(response.status_code, 201, response.content)
        self.assertAlmostEqual(Render.objects.get().audio_duration, 3.0, delta=0.05)

    def test_an_html_page_where_a_video_was_expected_is_refused(self):
        self.server.routes["/talk.mp4"] = local_http.body(b"<!doctype html><title>Sign in</title>", content_type="video/mp4")
        response = self.call("POST", "/avatars", {"name": "Host", "gender": "female", "consent": True,
                                                  "video_url": self.server.url("/talk.mp4")})
        self.assertEqual(response.status_code, 422, response.content)
        self.assertEqual(response.json()["error"]["field"], "video_url")
        self.assertFalse(Avatar.objects.exists())
        self.assertEqual(self.stored_files(), [])

    def test_a_url_and_a_file_id_together_are_refused(self):
        file_id = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        response = self.call("POST", "/avatars", {"name": "Host", "gender": "female", "consent": True,
                                                  "file_id": file_id, "image_url": self.server.url("/x.png")})
        self.assertError(response, 422, "ambiguous_source", field="image_url")
        self.assertEqual(self.server.seen, [], "nothing is fetched for a refused request")
