from django.contrib.auth import get_user_model

from studio.models import Membership, Team
from tests.base import PASSWORD, BaseTestCase


class SignupTestCase(BaseTestCase):
    def test_it_creates_a_personal_team_on_signup(self):
        response = self.client.post(
            "/accounts/signup/",
            {"username": "dana", "email": "dana@example.org", "password1": PASSWORD, "password2": PASSWORD},
        )
        self.assertRedirects(response, "/avatars/new/")
        dana = get_user_model().objects.get(username="dana")
        membership = Membership.objects.get(user=dana)
        self.assertTrue(membership.team.personal)
        self.assertEqual(membership.role, Membership.Role.OWNER)

    def test_it_signs_in_and_out(self):
        response = self.client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        self.assertRedirects(response, "/", fetch_redirect_response=False)
        self.assertContains(self.client.get("/avatars/"), "Sign out alice")
        self.client.post("/accounts/logout/")
        self.assertRedirects(self.client.get("/avatars/"), "/accounts/login/?next=/avatars/")


class TeamSwitchTestCase(BaseTestCase):
    def test_it_switches_to_a_team_the_user_belongs_to(self):
        self.login(self.bob)
        self.client.post("/teams/switch/", {"team": self.team.pk})
        self.assertEqual(self.client.session["team_id"], self.team.pk)
        self.assertContains(self.client.get("/team/"), "alice")

    def test_it_refuses_to_switch_to_someone_elses_team(self):
        self.login(self.bob)
        response = self.client.post("/teams/switch/", {"team": self.charlies_team.pk})
        self.assertEqual(response.status_code, 404)

    def test_it_follows_next_within_the_studio(self):
        self.login(self.bob)
        response = self.client.post("/teams/switch/", {"team": self.team.pk, "next": "/renders/?page=2"})
        self.assertRedirects(response, "/renders/?page=2", fetch_redirect_response=False)

    def test_it_never_follows_next_off_site(self):
        self.login(self.bob)
        for url in [
            "https://evil.example/login", "//evil.example/x", "javascript:alert(1)", "/\\evil.example",
            "http:///evil.example", "\x00", "JAVASCRIPT:alert(1)", " //evil.example",
        ]:
            with self.subTest(url=url):
                response = self.client.post("/teams/switch/", {"team": self.team.pk, "next": url})
                self.assertRedirects(response, "/", fetch_redirect_response=False)

    def test_it_creates_a_team_and_makes_its_creator_owner(self):
        self.login(self.bob)
        self.client.post("/teams/new/", {"name": "Launch videos"})
        team = Team.objects.get(name="Launch videos")
        self.assertTrue(Membership.objects.filter(team=team, user=self.bob, role="owner").exists())
        self.assertEqual(self.client.session["team_id"], team.pk)


class MembersTestCase(BaseTestCase):
    def test_owner_adds_a_member_with_a_role(self):
        self.login(self.alice)
        self.client.post("/team/", {"username": "charlie", "role": "viewer"})
        self.assertTrue(Membership.objects.filter(team=self.team, user=self.charlie, role="viewer").exists())

    def test_it_says_when_the_account_does_not_exist(self):
        self.login(self.alice)
        response = self.client.post("/team/", {"username": "nobody", "role": "viewer"})
        self.assertContains(response, "There is no account called “nobody”")

    def test_editor_cannot_add_members(self):
        self.login(self.bob, self.team)
        response = self.client.post("/team/", {"username": "charlie", "role": "owner"})
        self.assertEqual(response.status_code, 403)
        self.assertFalse(Membership.objects.filter(team=self.team, user=self.charlie).exists())

    def test_last_owner_cannot_be_removed(self):
        self.login(self.alice)
        owner = Membership.objects.get(team=self.team, user=self.alice)
        self.client.post(f"/team/members/{owner.pk}/remove/")
        self.assertTrue(Membership.objects.filter(pk=owner.pk).exists())
