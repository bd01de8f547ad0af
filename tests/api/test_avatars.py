from avatars.models import Avatar
from tests import media_cache
from tests.api.base import ApiTestCase
from tests.factories import FIXTURES, finished_render, ready_avatar


class AvatarCreateTestCase(ApiTestCase):
    def create(self, **fields):
        body = {"name": "Presenter", "gender": "female", "consent": True, **fields}
        return self.call("POST", "/avatars", body)

    def test_it_creates_an_avatar_from_an_upload_and_queues_its_preparation(self):
        file_id = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        response = self.create(file_id=file_id, background_colour="#1F7A4D")
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        avatar = Avatar.objects.get()
        self.assertEqual(body["id"], str(avatar.pk))
        self.assertEqual((body["status"], body["kind"], body["background"], body["background_colour"]),
                         ("uploaded", "photo", "colour", "#1f7a4d"))
        self.assertEqual(body["preflight"], {"ok": None, "problems": []})
        self.assertEqual(body["urls"], {"preview": None, "poster": None})
        self.assertEqual(avatar.source.name, f"teams/{self.team.pk}/avatars/{avatar.pk}/source.png")
        self.assertEqual((avatar.source_name, avatar.created_by), ("astronaut.png", self.alice))
        self.assertEqual(len(self.queued), 1, "preparation is queued when the row commits")
        uploads_left = [p for p in self.stored_files() if "/uploads/" in str(p)]
        self.assertEqual(uploads_left, [], "the upload's own copy is removed once the avatar has the file")

    def test_a_background_image_comes_from_a_photo_upload(self):
        source = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        image = self.uploaded(FIXTURES / "poster.jpg", kind="photo", content_type="image/jpeg")
        response = self.create(file_id=source, background_image_file_id=image)
        self.assertEqual(response.status_code, 201, response.content)
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.background, "image")
        self.assertEqual(avatar.background_image.name, f"teams/{self.team.pk}/avatars/{avatar.pk}/background.jpg")

    def test_a_reference_photo_says_who_speaks_in_footage_with_several_people(self):
        source = self.uploaded(media_cache.talking_video(12.0), kind="video", content_type="video/mp4")
        photo = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        response = self.create(file_id=source, reference_photo_file_id=photo)
        self.assertEqual(response.status_code, 201, response.content)
        avatar = Avatar.objects.get()
        self.assertEqual(avatar.reference_photo.name, f"teams/{self.team.pk}/avatars/{avatar.pk}/reference.png")

    def test_it_refuses_what_the_form_refuses_in_the_same_words(self):
        file_id = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        ready_avatar(team=self.team, user=self.alice, name="Host")
        self.assertError(self.create(file_id=file_id, name="host"), 422, "invalid", field="name",
                         says="Your team already has an avatar called “host”")
        self.assertError(self.create(file_id=file_id, consent=False), 422, "required", field="consent",
                         says="Confirm that you are this person or have their consent")
        self.assertError(self.create(file_id=file_id, background_colour="red"), 422, "invalid",
                         field="background_colour", says="#rrggbb")
        self.assertError(self.create(file_id=file_id, gender="other"), 422, "invalid_request", field="gender")
        self.assertError(self.create(), 422, "missing_source", field="file_id")
        self.assertEqual(Avatar.objects.count(), 1)

    def test_a_photo_over_10_mb_is_refused_at_upload(self):
        credential = self.call("POST", "/uploads", {"kind": "photo", "content_type": "image/png"}).json()
        response = self.send(credential, media_cache.big_photo())
        self.assertEqual(response.status_code, 413)
        self.assertIn("larger than 10 MB", response.json()["error"]["message"])

    def test_urls_are_refused_by_the_address_guard(self):
        response = self.create(image_url="http://127.0.0.1/me.png")
        self.assertEqual(response.status_code, 422, response.content)
        self.assertEqual(response.json()["error"]["field"], "image_url")
        self.assertFalse(Avatar.objects.exists())


class AvatarReadTestCase(ApiTestCase):
    def test_it_lists_gets_and_serves_an_avatars_files(self):
        avatar = ready_avatar(team=self.team, user=self.alice, kind="video")
        ready_avatar(team=self.charlies_team, user=self.charlie)
        listed = self.call("GET", "/avatars").json()
        self.assertEqual((listed["total"], listed["items"][0]["id"]), (1, str(avatar.pk)))
        body = self.call("GET", f"/avatars/{avatar.pk}").json()
        self.assertEqual((body["status"], body["preflight"]["ok"], body["duration"]), ("ready", True, 12.0))
        self.assertTrue(body["urls"]["preview"].startswith(f"http://testserver/api/v1/avatars/{avatar.pk}/files/preview?token="))
        preview = self.call("GET", f"/avatars/{avatar.pk}/files/preview")
        self.assertEqual(preview.status_code, 200)
        self.assertEqual(b"".join(preview.streaming_content), (FIXTURES / "clip.mp4").read_bytes())
        self.assertEqual(self.call("GET", "/avatars?status=ready").json()["total"], 1)
        self.assertEqual(self.call("GET", "/avatars?status=failed").json()["total"], 0)
        self.assertError(self.call("GET", "/avatars?status=done"), 422, "invalid_request", field="status")

    def test_a_rejected_avatar_reports_its_preflight_problems(self):
        avatar = ready_avatar(team=self.team, user=self.alice)
        problem = {"field": "source", "code": "no_face", "message": "We couldn't find a face in this photo."}
        Avatar.objects.filter(pk=avatar.pk).update(status="rejected", preflight={"ok": False, "problems": [problem]})
        body = self.call("GET", f"/avatars/{avatar.pk}").json()
        self.assertEqual(body["preflight"], {"ok": False, "problems": [{**problem, "field": "file_id"}]})

    def test_delete_takes_the_avatar_its_renders_and_files(self):
        avatar = ready_avatar(team=self.team, user=self.alice)
        finished_render(avatar=avatar, user=self.alice)
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.delete(f"/api/v1/avatars/{avatar.pk}", headers={"Authorization": f"Bearer {self.secret}"})
        self.assertEqual(response.status_code, 204)
        self.assertFalse(Avatar.objects.exists())
        self.assertEqual(self.stored_files(), [])
        self.assertError(self.call("DELETE", f"/avatars/{avatar.pk}"), 404, "not_found")
