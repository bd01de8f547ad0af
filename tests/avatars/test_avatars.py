from pathlib import Path

from django.utils.html import escape

from avatars.models import Avatar
from tests import media_cache
from tests.base import BaseTestCase


class AvatarTestCase(BaseTestCase):
    def create(self, path: Path, *, name="Presenter", user=None, upload_name=None, **extra):
        self.login(user or self.alice)
        data = {"name": name, "gender": "female", "background": "none", "consent": "on", **extra}
        data["source"] = self.upload(path, upload_name)
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.post("/avatars/new/", data)

    def stored_files(self) -> list[Path]:
        return [p for p in Path(self.media_root).rglob("*") if p.is_file()]


class AvatarCreateTestCase(AvatarTestCase):
    def test_it_makes_a_video_avatar_ready_with_poster_and_preview(self):
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

    def test_it_makes_a_photo_avatar_ready(self):
        self.create(media_cache.photo("astronaut", "png"))
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.status, Avatar.Status.READY, avatar.error or avatar.problems)
        self.assertEqual(avatar.kind, "photo")
        self.assertTrue(avatar.preview and avatar.poster)

    def test_the_status_partial_stops_polling_once_ready(self):
        self.create(media_cache.photo("astronaut", "png"))
        avatar = Avatar.objects.get()
        response = self.client.get(f"/avatars/{avatar.pk}/", HTTP_HX_REQUEST="true")
        self.assertEqual(response.status_code, 286)
        self.assertNotContains(response, "<html", status_code=286)

    def test_it_refuses_a_png_renamed_mp4_on_the_form(self):
        response = self.create(media_cache.png_renamed_mp4(), upload_name="talk.mp4")
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "This file is a PNG image, not a video", status_code=400)
        self.assertFalse(Avatar.objects.exists())
        self.assertEqual(self.stored_files(), [])

    def test_it_refuses_a_12_mb_photo_on_the_form(self):
        response = self.create(media_cache.big_photo())
        self.assertContains(response, "photos must be 10 MB or smaller", status_code=400)
        self.assertFalse(Avatar.objects.exists())

    def test_it_requires_consent(self):
        response = self.create(media_cache.photo(), consent="")
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Avatar.objects.exists())

    def test_it_checks_the_name(self):
        response = self.create(media_cache.photo(), name="no/slashes!")
        self.assertContains(response, "Use 2 to 50 characters", status_code=400)

    def test_it_refuses_a_duplicate_name_in_the_team(self):
        self.create(media_cache.photo(), name="Host")
        response = self.create(media_cache.photo(), name="host")
        self.assertContains(response, "already has an avatar called", status_code=400)
        self.assertEqual(Avatar.objects.count(), 1)

    def test_it_stores_a_background_colour(self):
        self.create(media_cache.photo(), background="colour", background_colour="#10ff20")
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.background_colour, "rgb(16,255,32)")
        self.assertEqual(avatar.status, Avatar.Status.READY, avatar.error)


class AvatarRefusalTestCase(AvatarTestCase):
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


class AvatarAccessTestCase(AvatarTestCase):
    def setUp(self):
        super().setUp()
        self.create(media_cache.photo())
        self.avatar = Avatar.objects.get()

    def test_member_sees_the_teams_avatar(self):
        self.login(self.bob, self.team)
        self.assertContains(self.client.get("/avatars/"), "Presenter")

    def test_outsider_gets_404(self):
        self.login(self.charlie)
        self.assertEqual(self.client.get(f"/avatars/{self.avatar.pk}/").status_code, 404)
        self.assertEqual(self.client.post(f"/avatars/{self.avatar.pk}/delete/").status_code, 404)
        self.assertNotContains(self.client.get("/avatars/"), "Presenter")

    def test_viewer_cannot_create_or_delete(self):
        self.login(self.vera, self.team)
        self.assertEqual(self.client.get("/avatars/new/").status_code, 403)
        self.assertEqual(self.client.post(f"/avatars/{self.avatar.pk}/delete/").status_code, 403)
        self.assertTrue(Avatar.objects.filter(pk=self.avatar.pk).exists())
        self.assertNotContains(self.client.get("/avatars/"), "New avatar")
