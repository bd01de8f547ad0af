"""Avatars through the web form and the real engine (tasks run inline when the form commits)."""

import pytest
from django.utils.html import escape

from avatars.models import Avatar
from tests import media_cache
from tests.avatars.test_avatars import AvatarTestCase

pytestmark = pytest.mark.slow


class PreparedAvatarTestCase(AvatarTestCase):
    def create(self, *args, **kwargs):
        with self.captureOnCommitCallbacks(execute=True):
            return super().create(*args, **kwargs)

    def test_it_makes_a_video_avatar_ready_with_poster_preview_and_library(self):
        response = self.create(media_cache.talking_video(12.0))
        avatar = Avatar.objects.get()
        self.assertRedirects(response, f"/avatars/{avatar.pk}/")
        self.assertEqual(avatar.status, Avatar.Status.READY, avatar.error or avatar.problems)
        self.assertEqual(avatar.kind, "video")
        self.assertEqual(avatar.source.name, f"teams/{self.team.pk}/avatars/{avatar.pk}/source.mp4")
        self.assertTrue(avatar.poster.name.endswith(".jpg"))
        self.assertTrue(avatar.preview.name.endswith("preview.mp4"))
        self.assertAlmostEqual(avatar.duration, 12.0, delta=0.2)
        for field in (avatar.source, avatar.media, avatar.poster, avatar.preview, avatar.library):
            self.assertTrue(field.storage.exists(field.name), field.name)
        self.assertTrue(avatar.library.name.endswith("library.npz"))
        self.assertGreater(avatar.report["usable_frames"], 0.8 * avatar.report["total_frames"])
        page = self.client.get(f"/avatars/{avatar.pk}/")
        self.assertContains(page, "<video")
        self.assertContains(page, "Render a video")

    def test_it_makes_a_photo_avatar_ready_on_a_colour_background(self):
        self.create(media_cache.photo("astronaut", "png"), background="colour", background_colour="#10ff20")
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.status, Avatar.Status.READY, avatar.error or avatar.problems)
        self.assertEqual(avatar.kind, "photo")
        self.assertTrue(avatar.preview and avatar.poster)


class AvatarRefusalTestCase(PreparedAvatarTestCase):
    def assert_rejected(self, sentence: str) -> Avatar:
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.status, Avatar.Status.REJECTED)
        messages = [problem["message"] for problem in avatar.problems]
        self.assertTrue(any(sentence in message for message in messages), messages)
        self.assertContains(self.client.get(f"/avatars/{avatar.pk}/"), escape(sentence))
        return avatar

    def test_it_rejects_a_photo_without_a_face(self):
        self.create(media_cache.photo("coffee", "jpg"))
        self.assert_rejected("couldn't find a face")

    def test_it_rejects_two_faces(self):
        self.create(media_cache.photo("two_astronauts", "png"))
        self.assert_rejected("We found 2 faces")

    def test_it_rejects_a_6_second_video(self):
        self.create(media_cache.talking_video(6.0))
        self.assert_rejected("The video is 6 s long; an avatar needs 10 s to 5 min")

    def test_a_rejected_avatar_is_deleted_with_its_files(self):
        self.create(media_cache.photo("coffee", "jpg"))
        avatar = Avatar.objects.get()
        self.assertNotEqual(self.stored_files(), [])
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(f"/avatars/{avatar.pk}/delete/")
        self.assertFalse(Avatar.objects.exists())
        self.assertEqual(self.stored_files(), [])
