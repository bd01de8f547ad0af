from django.conf import settings

from renders.models import Render
from tests.api.base import ApiTestCase
from tests.factories import ready_avatar


class ErrorShapeTestCase(ApiTestCase):
    def test_malformed_json_and_wrong_types_are_4xx_in_the_one_shape(self):
        response = self.client.post("/api/v1/renders", "{not json", content_type="application/json",
                                    headers={"Authorization": f"Bearer {self.secret}"})
        self.assertError(response, 400, "invalid_json", says="not valid JSON")
        self.assertError(self.call("POST", "/renders", {"avatar_id": "not-a-uuid", "script": "Hello"}), 422,
                         "invalid_request", field="avatar_id")
        self.assertError(self.call("POST", "/renders", [1, 2]), 422, "invalid_request")
        self.assertError(self.call("GET", "/renders/not-a-uuid"), 422, "invalid_request", field="render_id")

    def test_an_unknown_path_is_a_json_404(self):
        self.assertError(self.call("GET", "/nothing/here"), 404, "not_found", says="/api/docs")

    def test_the_docs_and_schema_are_served(self):
        docs = self.client.get("/api/docs")
        self.assertContains(docs, "swagger-ui")
        self.assertNotContains(docs, "cdn.jsdelivr")
        schema = self.client.get("/api/openapi.json").json()
        self.assertIn("/api/v1/renders", schema["paths"])
        self.assertIn("/api/v1/renders/{render_id}/cancel", schema["paths"])
        self.assertEqual(schema["components"]["securitySchemes"]["BearerKey"]["scheme"], "bearer")

    def test_the_upload_limits_are_the_engines(self):
        from engine import preflight, speech

        self.assertEqual(settings.API_UPLOAD_MAX_BYTES["photo"], preflight.MAX_PHOTO_BYTES)
        self.assertEqual(settings.API_UPLOAD_MAX_BYTES["audio"], speech.AUDIO_MAX_BYTES)
        self.assertEqual(settings.API_UPLOAD_MAX_BYTES["video"], 5 * 1024**3)


class CallbackTestCase(ApiTestCase):
    def test_a_callback_url_is_saved_with_the_render(self):
        avatar = ready_avatar(team=self.team, user=self.alice)
        with self.settings(NETGUARD_ALLOW_PRIVATE=True):  # loopback only stands in for a public receiver
            response = self.call("POST", "/renders", {"avatar_id": str(avatar.pk), "script": "Hello there.",
                                                      "callback_url": "http://127.0.0.1:9/hooks/render"})
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(Render.objects.get().callback.url, "http://127.0.0.1:9/hooks/render")
