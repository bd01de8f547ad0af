from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from studio.models import Invitation, Membership, Team
from studio.services import team_create, user_create
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
    def membership(self, user) -> Membership:
        return Membership.objects.get(team=self.team, user=user)

    def test_owner_changes_a_members_role(self):
        self.login(self.alice, self.team)
        self.client.post(f"/team/members/{self.membership(self.bob).pk}/role/", {"role": "viewer"})
        self.assertEqual(self.membership(self.bob).role, "viewer")

    def test_the_last_owner_cannot_demote_themselves(self):
        self.login(self.alice, self.team)
        response = self.client.post(f"/team/members/{self.membership(self.alice).pk}/role/", {"role": "viewer"}, follow=True)
        self.assertContains(response, "A team needs at least one owner")
        self.assertEqual(self.membership(self.alice).role, "owner")

    def test_an_owner_can_step_down_once_there_is_another(self):
        self.login(self.alice, self.team)
        self.client.post(f"/team/members/{self.membership(self.bob).pk}/role/", {"role": "owner"})
        self.client.post(f"/team/members/{self.membership(self.alice).pk}/role/", {"role": "editor"})
        self.assertEqual((self.membership(self.alice).role, self.membership(self.bob).role), ("editor", "owner"))

    def shared_team(self) -> Team:
        team = team_create(name="Launch videos", owner=self.alice)
        Membership.objects.create(team=team, user=self.bob, role=Membership.Role.EDITOR)
        return team

    def test_the_last_owner_cannot_be_removed_or_leave(self):
        team = self.shared_team()
        self.login(self.alice, team)
        owner = Membership.objects.get(team=team, user=self.alice)
        response = self.client.post(f"/team/members/{owner.pk}/remove/", follow=True)
        self.assertContains(response, "A team needs at least one owner")
        self.assertTrue(Membership.objects.filter(pk=owner.pk).exists())

    def test_a_member_leaves_on_their_own(self):
        team = self.shared_team()
        self.login(self.bob, team)
        response = self.client.post(f"/team/members/{Membership.objects.get(team=team, user=self.bob).pk}/remove/")
        self.assertRedirects(response, "/", fetch_redirect_response=False)
        self.assertFalse(Membership.objects.filter(team=team, user=self.bob).exists())

    def test_nobody_leaves_their_personal_team(self):
        self.login(self.alice, self.team)
        self.client.post(f"/team/members/{self.membership(self.bob).pk}/role/", {"role": "owner"})
        response = self.client.post(f"/team/members/{self.membership(self.alice).pk}/remove/", follow=True)
        self.assertContains(response, "Your personal team is yours for good")
        self.assertTrue(Membership.objects.filter(team=self.team, user=self.alice).exists())

    def test_editors_cannot_change_roles_or_remove_others(self):
        self.login(self.bob, self.team)
        vera = self.membership(self.vera)
        self.assertEqual(self.client.post(f"/team/members/{vera.pk}/role/", {"role": "owner"}).status_code, 403)
        self.assertEqual(self.client.post(f"/team/members/{vera.pk}/remove/").status_code, 403)
        self.assertEqual(self.membership(self.vera).role, "viewer")

    def test_another_teams_membership_is_404(self):
        self.login(self.alice, self.team)
        theirs = Membership.objects.get(team=self.charlies_team)
        self.assertEqual(self.client.post(f"/team/members/{theirs.pk}/role/", {"role": "viewer"}).status_code, 404)
        self.assertEqual(self.client.post(f"/team/members/{theirs.pk}/remove/").status_code, 404)


class InvitationTestCase(BaseTestCase):
    def invite(self, role="editor", email="") -> Invitation:
        self.login(self.alice, self.team)
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post("/team/", {"role": role, "email": email})
        self.assertRedirects(response, "/team/", fetch_redirect_response=False)
        return Invitation.objects.get()

    def test_an_invitation_puts_nobody_in_the_team_until_accepted(self):
        invitation = self.invite(role="viewer")
        self.assertFalse(Membership.objects.filter(team=self.team, user=self.charlie).exists())
        page = self.client.get("/team/")
        self.assertContains(page, f"/invitations/{invitation.token}/")

        self.login(self.charlie)
        page = self.client.get(f"/invitations/{invitation.token}/")
        self.assertContains(page, "Join alice&#x27;s team?")
        self.assertFalse(Membership.objects.filter(team=self.team, user=self.charlie).exists())
        self.client.post(f"/invitations/{invitation.token}/")
        self.assertEqual(Membership.objects.get(team=self.team, user=self.charlie).role, "viewer")
        self.assertEqual(self.client.session["team_id"], self.team.pk)

    def test_a_link_works_once(self):
        invitation = self.invite()
        self.login(self.charlie)
        self.client.post(f"/invitations/{invitation.token}/")
        dana = user_create(username="dana", password="x" * 12)
        self.login(dana)
        response = self.client.post(f"/invitations/{invitation.token}/")
        self.assertContains(response, "This invitation no longer works", status_code=404)
        self.assertFalse(Membership.objects.filter(team=self.team, user=dana).exists())

    def test_an_expired_or_withdrawn_link_does_not_work(self):
        invitation = self.invite()
        Invitation.objects.filter(pk=invitation.pk).update(created_at=timezone.now() - timedelta(days=15))
        self.login(self.charlie)
        self.assertEqual(self.client.get(f"/invitations/{invitation.token}/").status_code, 404)
        fresh = Invitation.objects.create(team=self.team, invited_by=self.alice)
        self.login(self.alice, self.team)
        self.client.post(f"/team/invitations/{fresh.pk}/revoke/")
        self.login(self.charlie)
        self.assertEqual(self.client.post(f"/invitations/{fresh.token}/").status_code, 404)
        self.assertFalse(Membership.objects.filter(team=self.team, user=self.charlie).exists())

    def test_accepting_never_demotes_a_member_nor_uses_up_the_link(self):
        invitation = self.invite(role="viewer")
        self.login(self.bob, self.team)
        self.client.post(f"/invitations/{invitation.token}/")
        self.assertEqual(Membership.objects.get(team=self.team, user=self.bob).role, "editor")
        invitation.refresh_from_db()
        self.assertIsNone(invitation.accepted_at)

    def test_only_owners_invite(self):
        self.login(self.bob, self.team)
        self.assertEqual(self.client.post("/team/", {"role": "owner"}).status_code, 403)
        self.assertFalse(Invitation.objects.exists())

    @override_settings(EMAIL_ENABLED=True)
    def test_it_emails_the_link_when_mail_is_configured(self):
        invitation = self.invite(email="charlie@example.org")
        self.assertEqual(len(mail.outbox), 1)
        self.assertEqual(mail.outbox[0].to, ["charlie@example.org"])
        self.assertIn(f"http://testserver/invitations/{invitation.token}/", mail.outbox[0].body)

    def test_it_sends_nothing_without_a_mail_server(self):
        self.invite(email="charlie@example.org")
        self.assertEqual(len(mail.outbox), 0)
