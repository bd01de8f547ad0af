from django.test import override_settings

from studio.services import user_create
from tests.base import PASSWORD, BaseTestCase

WRONG = "not the password"


@override_settings(AXES_FAILURE_LIMIT=5)
class LoginThrottleTestCase(BaseTestCase):
    def sign_in(self, username: str, password: str, *, path="/accounts/login/", ip="10.0.0.1"):
        return self.client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)

    def test_five_wrong_passwords_pause_the_account_even_for_the_right_one(self):
        for _ in range(4):
            self.assertEqual(self.sign_in("alice", WRONG).status_code, 200)
        locked = self.sign_in("alice", WRONG)
        self.assertEqual(locked.status_code, 429)
        self.assertContains(locked, "Try again in 15 minutes.", status_code=429)
        self.assertEqual(locked["Retry-After"], "900")
        # The right password does not get through while paused, from anywhere.
        self.assertEqual(self.sign_in("alice", PASSWORD, ip="10.0.0.99").status_code, 429)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_one_address_guessing_many_accounts_is_paused(self):
        for number in range(5):
            user_create(username=f"user{number}", password=PASSWORD)
            self.sign_in(f"user{number}", WRONG, ip="10.0.0.7")
        self.assertEqual(self.sign_in("bob", PASSWORD, ip="10.0.0.7").status_code, 429)
        self.assertEqual(self.sign_in("bob", PASSWORD, ip="10.0.0.8").status_code, 302)

    def test_a_successful_sign_in_forgets_earlier_mistakes(self):
        for _ in range(4):
            self.sign_in("alice", WRONG)
        self.assertEqual(self.sign_in("alice", PASSWORD).status_code, 302)
        self.client.post("/accounts/logout/")
        for _ in range(4):
            self.assertEqual(self.sign_in("alice", WRONG).status_code, 200)

    def test_the_admin_login_is_throttled_too(self):
        for _ in range(5):
            self.sign_in("alice", WRONG, path="/admin/login/")
        self.assertContains(self.sign_in("alice", PASSWORD, path="/admin/login/"), "Try again in", status_code=429)
