import shutil
import tempfile
from pathlib import Path

from django.test import override_settings

from api.models import Upload
from tests import media_cache
from tests.api.base import ApiTestCase
from tests.factories import FIXTURES


class LocalUploadTestCase(ApiTestCase):
    def test_a_credential_then_a_multipart_post_stores_the_file_for_one_use(self):
        credential = self.call("POST", "/uploads", {"kind": "photo", "content_type": "image/png", "filename": "me.png"})
        self.assertEqual(credential.status_code, 201)
        body = credential.json()
        self.assertEqual(set(body), {"file_id", "kind", "url", "fields", "expires_at", "max_bytes"})
        self.assertEqual(body["max_bytes"], 10_000_000)
        self.assertTrue(body["url"].startswith(f"http://testserver/api/v1/uploads/{body['file_id']}/content?token="))
        self.assertEqual(self.send(body, FIXTURES / "photo.png").status_code, 204)
        upload = Upload.objects.get(pk=body["file_id"])
        self.assertEqual((upload.status, upload.size, upload.team), ("received", 18939, self.team))
        stored = Path(self.media_root) / upload.key
        self.assertEqual(stored.read_bytes(), (FIXTURES / "photo.png").read_bytes())
        self.assertTrue(upload.key.startswith(f"teams/{self.team.pk}/uploads/{upload.pk}/"))
        status = self.call("GET", f"/uploads/{upload.pk}").json()
        self.assertEqual((status["status"], status["size"]), ("received", 18939))
        again = self.send(body, FIXTURES / "photo.png")
        self.assertEqual(again.status_code, 409)
        self.assertEqual(again.json()["error"]["code"], "already_received")

    def test_it_refuses_kinds_and_types_it_does_not_take(self):
        self.assertError(self.call("POST", "/uploads", {"kind": "document", "content_type": "application/pdf"}),
                         422, "invalid_request", field="kind")
        self.assertError(self.call("POST", "/uploads", {"kind": "video", "content_type": "image/png"}),
                         422, "unsupported_type", field="content_type", says="video/mp4, video/quicktime")
        self.assertError(self.call("POST", "/uploads", {"kind": "photo"}), 422, "invalid_request",
                         field="content_type", says="required")
        self.assertFalse(Upload.objects.exists())

    def test_a_forged_or_foreign_token_is_refused(self):
        mine = self.call("POST", "/uploads", {"kind": "photo", "content_type": "image/png"}).json()
        theirs = self.call("POST", "/uploads", {"kind": "photo", "content_type": "image/png"},
                           secret=self.charlies_secret).json()
        forged = {**mine, "url": mine["url"].replace(mine["file_id"], theirs["file_id"])}
        response = self.send(forged, FIXTURES / "photo.png")
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json()["error"]["code"], "invalid_credential")
        self.assertEqual(self.stored_files(), [])

    def test_bytes_that_are_not_the_declared_kind_are_refused_with_the_uis_sentence(self):
        credential = self.call("POST", "/uploads", {"kind": "video", "content_type": "video/mp4"}).json()
        response = self.send(credential, FIXTURES / "photo.png")
        self.assertEqual(response.status_code, 422)
        self.assertIn("This file is a PNG image, not a video", response.json()["error"]["message"])
        self.assertEqual(self.stored_files(), [])

    def test_an_upload_over_the_kinds_limit_is_aborted_leaving_no_row_and_no_file(self):
        scratch = Path(tempfile.mkdtemp(prefix="api-upload-"))
        self.addCleanup(shutil.rmtree, scratch, True)
        temp = scratch / "upload-temp"
        temp.mkdir()
        big = scratch / "big.png"
        # Within the multipart allowance over the limit, so the body is read rather than refused
        # from its Content-Length alone.
        big.write_bytes((FIXTURES / "photo.png").read_bytes() + b"\0" * 120_000)
        limits = {"video": 1_000_000, "photo": 100_000, "audio": 1_000_000}
        with override_settings(API_UPLOAD_MAX_BYTES=limits, FILE_UPLOAD_TEMP_DIR=str(temp)):
            credential = self.call("POST", "/uploads", {"kind": "photo", "content_type": "image/png"}).json()
            self.assertEqual(credential["max_bytes"], 100_000)
            response = self.send_streamed(credential, big)
        self.assertEqual(response.status_code, 413)
        self.assertEqual(response.json()["error"]["code"], "file_too_large")
        self.assertIn("larger than 100 KB, the most a photo or image upload may be", response.json()["error"]["message"])
        self.assertFalse(Upload.objects.exists())
        self.assertEqual(self.stored_files(), [])
        self.assertEqual(list(temp.iterdir()), [])
        self.assertTrue(0 < self.largest_written <= 100_000, self.largest_written)

    def test_an_upload_declared_over_the_limit_is_refused_before_reading(self):
        with override_settings(API_UPLOAD_MAX_BYTES={"video": 10, "photo": 10, "audio": 10}):
            credential = self.call("POST", "/uploads", {"kind": "photo", "content_type": "image/png"}).json()
            response = self.send(credential, FIXTURES / "photo.png")
        self.assertEqual(response.status_code, 413)
        self.assertFalse(Upload.objects.exists())

    def send_streamed(self, credential: dict, path: Path):
        """Send with the real length unknown to the view, recording what the handler wrote."""
        from api import uploads

        recorded = {}
        original = uploads.CappedUploadHandler.receive_data_chunk

        def spy(handler, raw_data, start):
            try:
                return original(handler, raw_data, start)
            finally:
                recorded["largest"] = max(recorded.get("largest", 0), handler.largest_written)

        uploads.CappedUploadHandler.receive_data_chunk = spy
        try:
            response = self.send(credential, path)
        finally:
            uploads.CappedUploadHandler.receive_data_chunk = original
        self.largest_written = recorded.get("largest", 0)
        return response


class UploadUseTestCase(ApiTestCase):
    def test_a_file_id_works_once_and_only_in_its_team(self):
        file_id = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        theirs = self.call("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": file_id},
                           secret=self.charlies_secret)
        self.assertError(theirs, 404, "file_not_found", field="file_id")
        first = self.call("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": file_id})
        self.assertEqual(first.status_code, 201, first.content)
        again = self.call("POST", "/avatars", {"name": "Host 2", "gender": "male", "consent": True, "file_id": file_id})
        self.assertError(again, 409, "file_already_used", field="file_id")

    def test_a_failed_request_gives_the_file_back_unless_the_file_was_the_problem(self):
        file_id = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        bad_name = self.call("POST", "/avatars", {"name": "no/slashes", "gender": "male", "consent": True, "file_id": file_id})
        self.assertError(bad_name, 422, "invalid", field="name", says="Use 2 to 50 characters")
        fixed = self.call("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": file_id})
        self.assertEqual(fixed.status_code, 201, fixed.content)

    def test_a_file_id_for_the_wrong_kind_is_refused(self):
        file_id = self.uploaded(media_cache.photo(), kind="photo", content_type="image/png")
        response = self.call("POST", "/renders", {"avatar_id": str(self._ready().pk), "audio_file_id": file_id})
        self.assertError(response, 422, "wrong_kind", field="audio_file_id", says="photo upload")

    def test_a_credential_without_a_file_cannot_be_used(self):
        file_id = self.call("POST", "/uploads", {"kind": "photo", "content_type": "image/png"}).json()["file_id"]
        response = self.call("POST", "/avatars", {"name": "Host", "gender": "male", "consent": True, "file_id": file_id})
        self.assertError(response, 422, "file_not_received", field="file_id")

    def _ready(self):
        from tests.factories import ready_avatar

        return ready_avatar(team=self.team, user=self.alice)
