from api.models import ApiKey
from renders.models import Render
from tests.api.base import ApiTestCase
from tests.factories import finished_render, ready_avatar


class ApiKeyAuthTestCase(ApiTestCase):
    def test_a_key_works_and_records_when_it_was_used(self):
        response = self.call("GET", "/voices")
        self.assertEqual(response.status_code, 200)
        self.key.refresh_from_db()
        self.assertIsNotNone(self.key.last_used_at)

    def test_only_a_digest_and_prefix_are_stored(self):
        self.assertTrue(self.secret.startswith(f"avs_{self.key.prefix}_"))
        self.assertNotIn(self.secret, str(ApiKey.objects.filter(pk=self.key.pk).values().get()))

    def test_no_key_a_wrong_key_or_another_scheme_is_401(self):
        for headers in ({}, {"Authorization": "Bearer avs_nope_nope"}, {"Authorization": f"Basic {self.secret}"},
                        {"Authorization": f"Bearer {self.secret}x"}):
            response = self.client.get("/api/v1/voices", headers=headers)
            self.assertError(response, 401, "unauthenticated", says="Authorization: Bearer")
            self.assertEqual(response["WWW-Authenticate"], "Bearer")

    def test_a_revoked_key_is_401_at_once(self):
        self.login(self.alice)
        self.client.post(f"/team/api-keys/{self.key.pk}/revoke/")
        self.key.refresh_from_db()
        self.assertIsNotNone(self.key.revoked_at)
        self.assertError(self.call("GET", "/voices"), 401, "key_revoked", says="revoked by a team owner")

    def test_rate_limit_answers_429_with_retry_after(self):
        with self.settings(API_RATE_LIMIT_PER_MINUTE=3):
            statuses = [self.call("GET", "/voices").status_code for _ in range(3)]
            refused = self.call("GET", "/voices")
            others = self.call("GET", "/voices", secret=self.charlies_secret)
        self.assertEqual(statuses, [200, 200, 200])
        self.assertError(refused, 429, "rate_limited", says="more than 3 requests this minute")
        self.assertTrue(1 <= int(refused["Retry-After"]) <= 60)
        self.assertEqual(others.status_code, 200, "each key has its own allowance")


class TeamScopeTestCase(ApiTestCase):
    def test_a_key_of_one_team_never_sees_another_teams_objects(self):
        avatar = ready_avatar(team=self.charlies_team, user=self.charlie)
        render = finished_render(avatar=avatar, user=self.charlie)
        for method, path in [
            ("GET", f"/avatars/{avatar.pk}"), ("DELETE", f"/avatars/{avatar.pk}"),
            ("GET", f"/avatars/{avatar.pk}/files/preview"), ("GET", f"/renders/{render.pk}"),
            ("POST", f"/renders/{render.pk}/cancel"), ("GET", f"/renders/{render.pk}/files/video"),
        ]:
            self.assertError(self.call(method, path), 404, "not_found")
        self.assertEqual(self.call("GET", "/avatars").json(), {"items": [], "total": 0})
        self.assertEqual(self.call("GET", "/renders").json(), {"items": [], "total": 0})
        refused = self.call("POST", "/renders", {"avatar_id": str(avatar.pk), "script": "Hello there."})
        self.assertError(refused, 404, "avatar_not_found", field="avatar_id")
        self.assertEqual(Render.objects.count(), 1)


class TeamPageTestCase(ApiTestCase):
    def test_an_owner_creates_a_key_that_is_shown_once_and_works(self):
        self.login(self.alice)
        page = self.client.get("/team/")
        self.assertContains(page, "API keys")
        self.assertContains(page, f"{self.key.displayed_prefix}…")
        created = self.client.post("/team/api-keys/new/", {"name": "CMS publishing"})
        self.assertEqual(created.status_code, 200)
        key = ApiKey.objects.get(name="CMS publishing")
        secret = created.context["secret"]
        self.assertContains(created, secret)
        self.assertNotContains(self.client.get("/team/"), secret)
        self.assertEqual(self.call("GET", "/voices", secret=secret).status_code, 200)
        self.assertEqual(key.created_by, self.alice)

    def test_editors_neither_see_nor_create_keys(self):
        self.login(self.bob)
        self.assertNotContains(self.client.get("/team/"), "API keys")
        self.assertEqual(self.client.post("/team/api-keys/new/", {"name": "Mine"}).status_code, 403)
        self.assertEqual(self.client.post(f"/team/api-keys/{self.key.pk}/revoke/").status_code, 403)
        self.assertFalse(ApiKey.objects.filter(name="Mine").exists())

    def test_an_owner_cannot_revoke_another_teams_key(self):
        self.login(self.alice)
        self.assertEqual(self.client.post(f"/team/api-keys/{self.charlies_key.pk}/revoke/").status_code, 404)
        self.charlies_key.refresh_from_db()
        self.assertIsNone(self.charlies_key.revoked_at)


class AdminTestCase(ApiTestCase):
    def test_keys_and_uploads_are_listed_in_admin_and_keys_can_be_revoked_there(self):
        self.alice.is_staff = self.alice.is_superuser = True
        self.alice.save()
        self.login(self.alice)
        self.assertContains(self.client.get("/admin/api/apikey/"), self.key.displayed_prefix)
        self.assertEqual(self.client.get("/admin/api/upload/").status_code, 200)
        self.assertEqual(self.client.get("/admin/api/apikey/add/").status_code, 403)
        self.client.post("/admin/api/apikey/", {"action": "revoke", "_selected_action": [self.key.pk]})
        self.key.refresh_from_db()
        self.assertIsNotNone(self.key.revoked_at)
