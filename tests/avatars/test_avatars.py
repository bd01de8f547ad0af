from pathlib import Path

from avatars.models import Avatar
from tests import media_cache, mediagen
from tests.base import BaseTestCase
from tests.factories import ready_avatar


class AvatarTestCase(BaseTestCase):
    def create(self, path: Path, *, name="Presenter", user=None, upload_name=None, **extra):
        """Post the avatar form; the preparation it queues is not run (see tests/integration)."""
        self.login(user or self.alice)
        data = {"name": name, "gender": "female", "background": "none", "consent": "on", **extra}
        data["source"] = self.upload(path, upload_name)
        with self.captureOnCommitCallbacks() as self.queued:
            return self.client.post("/avatars/new/", data)

    def stored_files(self) -> list[Path]:
        return [p for p in Path(self.media_root).rglob("*") if p.is_file()]


class AvatarCreateTestCase(AvatarTestCase):
    def test_it_stores_the_upload_under_a_generated_key_and_queues_preparation(self):
        response = self.create(media_cache.photo("astronaut", "png"), upload_name="My Photo (1).PNG")
        avatar = Avatar.objects.get()
        self.assertRedirects(response, f"/avatars/{avatar.pk}/", fetch_redirect_response=False)
        self.assertEqual(avatar.status, Avatar.Status.UPLOADED)
        self.assertEqual(avatar.kind, "photo")
        self.assertEqual(avatar.source.name, f"teams/{self.team.pk}/avatars/{avatar.pk}/source.png")
        self.assertEqual(avatar.source_name, "My Photo (1).PNG")
        self.assertEqual(len(self.queued), 1)

    def test_the_status_partial_polls_until_ready_then_stops(self):
        self.create(media_cache.photo("astronaut", "png"))
        avatar = Avatar.objects.get()
        response = self.client.get(f"/avatars/{avatar.pk}/", HTTP_HX_REQUEST="true")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'hx-trigger="every 1s"')
        ready = ready_avatar(team=self.team, user=self.alice, name="Ready one")
        response = self.client.get(f"/avatars/{ready.pk}/", HTTP_HX_REQUEST="true")
        self.assertEqual(response.status_code, 286)
        self.assertNotContains(response, "<html", status_code=286)

    def test_a_ready_avatar_page_plays_its_preview_and_offers_a_render(self):
        avatar = ready_avatar(team=self.team, user=self.alice, kind="video")
        self.login(self.alice)
        page = self.client.get(f"/avatars/{avatar.pk}/")
        self.assertContains(page, "<video")
        self.assertContains(page, "Render a video")
        self.assertEqual(self.client.get(f"/media/{avatar.preview.name}").status_code, 200)

    def test_a_ready_photo_avatar_says_that_it_talks(self):
        avatar = ready_avatar(team=self.team, user=self.alice, kind="photo")
        self.login(self.alice)
        page = self.client.get(f"/avatars/{avatar.pk}/")
        self.assertContains(page, "The photo talks")
        self.assertNotContains(page, "still photo")

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
        ready_avatar(team=self.team, user=self.alice, name="Host")
        response = self.create(media_cache.photo(), name="host")
        self.assertContains(response, "already has an avatar called", status_code=400)
        self.assertEqual(Avatar.objects.count(), 1)

    def test_it_stores_a_background_colour_once_as_hex(self):
        self.create(media_cache.photo(), background="colour", background_colour="#10FF20")
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.background_colour, "#10ff20")
        self.assertEqual(avatar.background_rgb, (16, 255, 32))

    def test_it_refuses_a_background_image_over_the_photo_rules(self):
        declared = mediagen.make_declared_png(Path(self.media_root).parent / "declared.png", width=12000, height=12000)
        self.assertLess(declared.stat().st_size, 100_000)
        response = self.create(media_cache.photo(), background="image", background_image=self.upload(declared))
        self.assertContains(
            response, "The background image is 12000 × 12000 pixels; background images must be at most 4000",
            status_code=400,
        )
        self.assertFalse(Avatar.objects.exists())
        big = self.upload(media_cache.big_photo())
        response = self.create(media_cache.photo(), background="image", background_image=big)
        self.assertContains(response, "background images must be 10 MB or smaller", status_code=400)

    def test_it_refuses_a_colour_that_is_not_hex(self):
        response = self.create(media_cache.photo(), background="colour", background_colour="rgb(1,2,3)")
        self.assertContains(response, "#rrggbb", status_code=400)
        self.assertFalse(Avatar.objects.exists())


class AvatarDeleteTestCase(AvatarTestCase):
    def test_a_deleted_avatar_takes_its_files_and_renders_with_it(self):
        from tests.factories import finished_render

        avatar = ready_avatar(team=self.team, user=self.alice)
        finished_render(avatar=avatar, user=self.alice)
        self.assertNotEqual(self.stored_files(), [])
        self.login(self.alice)
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(f"/avatars/{avatar.pk}/delete/")
        self.assertFalse(Avatar.objects.exists())
        self.assertEqual(self.stored_files(), [])


class AvatarAccessTestCase(AvatarTestCase):
    def setUp(self):
        super().setUp()
        self.avatar = ready_avatar(team=self.team, user=self.alice)

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


class ReferencePhotoTestCase(AvatarTestCase):
    def test_it_keeps_a_reference_photo_beside_the_video(self):
        self.create(media_cache.talking_video(12.0), reference_photo=self.upload(media_cache.photo("astronaut", "png")))
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.reference_photo.name, f"teams/{self.team.pk}/avatars/{avatar.pk}/reference.png")
        self.assertIn(avatar.reference_photo, avatar.stored_files())

    def test_it_refuses_a_reference_that_is_not_a_photo(self):
        response = self.create(media_cache.talking_video(12.0),
                               reference_photo=self.upload(media_cache.audio(1.0, "wav")))
        self.assertContains(response, "The reference photo must be a JPEG, PNG or WebP photo", status_code=400)
        self.assertFalse(Avatar.objects.exists())
        self.assertEqual(self.stored_files(), [])

    def test_the_worker_checks_and_prepares_with_the_reference(self):
        from unittest import mock

        from avatars.preparation import avatar_prepare

        self.create(media_cache.talking_video(12.0), reference_photo=self.upload(media_cache.photo("astronaut", "png")))
        avatar = Avatar.objects.get()
        seen = {}

        def check(source, *, reference=None, **kwargs):
            seen["check"] = reference
            raise RuntimeError("stop after the check")

        with mock.patch("avatars.preparation.preflight.check_avatar_source", side_effect=check):
            try:
                avatar_prepare(str(avatar.pk))
            except RuntimeError:
                pass
        self.assertEqual(seen["check"].name, "reference.png")
