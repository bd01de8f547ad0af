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

    def test_signing_in_to_your_own_account_does_not_clear_guesses_at_another(self):
        mallory = user_create(username="mallory", password=PASSWORD)
        for _ in range(2):
            for _ in range(2):
                self.sign_in("alice", WRONG, ip="10.0.0.7")
            self.assertEqual(self.sign_in(mallory.username, PASSWORD, ip="10.0.0.7").status_code, 302)
            self.client.post("/accounts/logout/")
        self.sign_in("alice", WRONG, ip="10.0.0.8")
        self.assertEqual(self.sign_in("alice", PASSWORD, ip="10.0.0.9").status_code, 429)

    @override_settings(TRUSTED_PROXY_COUNT=1)
    def test_behind_a_proxy_the_forwarded_client_is_counted_not_the_proxy(self):
        proxy = "10.0.0.1"
        for number in range(5):
            user_create(username=f"user{number}", password=PASSWORD)
            self.client.post(
                "/accounts/login/", {"username": f"user{number}", "password": WRONG},
                REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5",
            )
        # another client through the same proxy still signs in; a forged left-most hop doesn't help
        ok = self.client.post("/accounts/login/", {"username": "bob", "password": PASSWORD},
                              REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7")
        self.assertEqual(ok.status_code, 302)
        self.client.post("/accounts/logout/")
        forged = self.client.post("/accounts/login/", {"username": "bob", "password": PASSWORD},
                                  REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.5")
        self.assertEqual(forged.status_code, 429)

    def test_the_admin_login_is_throttled_too(self):
        for _ in range(5):
            self.sign_in("alice", WRONG, path="/admin/login/")
        self.assertContains(self.sign_in("alice", PASSWORD, path="/admin/login/"), "Try again in", status_code=429)
