from typing import Callable

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from studio.models import Invitation, Membership, Team


@transaction.atomic
def user_create(*, username: str, password: str, email: str = "") -> AbstractUser:
    """Create an account together with the personal team every user starts in."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password=password, email=email)
    team_create(name=f"{username}'s team", owner=user, personal=True)
    return user


@transaction.atomic
def team_create(*, name: str, owner: AbstractUser, personal: bool = False) -> Team:
    team = Team.objects.create(name=name, personal=personal)
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


class TeamNeedsAnOwner(Exception):
    """Refused because it would leave a team that nobody can manage."""

    def __init__(self):
        super().__init__("A team needs at least one owner; make someone else owner first.")


def _lock_owners(team: Team) -> list[Membership]:
    # Locked so two owners demoting each other at once cannot both succeed.
    return list(Membership.objects.select_for_update().filter(team=team, role=Membership.Role.OWNER))


@transaction.atomic
def membership_change_role(*, membership: Membership, role: str) -> Membership:
    owners = _lock_owners(membership.team)
    if membership.is_owner and role != Membership.Role.OWNER and len(owners) == 1:
        raise TeamNeedsAnOwner()
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    owners = _lock_owners(membership.team)
    if membership.is_owner and len(owners) == 1:
        raise TeamNeedsAnOwner()
    membership.delete()


@transaction.atomic
def invitation_create(
    *, team: Team, invited_by: AbstractUser, role: str, email: str = "", absolute_url: Callable[[str], str]
) -> Invitation:
    """An invitation link for the owner to pass on; also emailed when the studio can send mail."""
    invitation = Invitation.objects.create(team=team, invited_by=invited_by, role=role, email=email)
    if email and settings.EMAIL_ENABLED:
        link = absolute_url(reverse("invitation_accept", args=[invitation.token]))
        transaction.on_commit(lambda: _send_invitation(invitation, link))
    return invitation


def _send_invitation(invitation: Invitation, link: str) -> None:
    send_mail(
        subject=f"Join {invitation.team.name} on Avatar Studio",
        message=(
            f"{invitation.invited_by} invites you to the team “{invitation.team.name}” as "
            f"{invitation.get_role_display().lower()}.\n\nOpen this link to accept (valid for 14 days):\n{link}\n"
        ),
        from_email=None,
        recipient_list=[invitation.email],
        fail_silently=True,  # the owner still sees the link on the team page
    )


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: AbstractUser) -> Membership | None:
    """Join the team with the invited role; None if the invitation was used or expired meanwhile.

    Someone already in the team keeps their role: an invitation never demotes.
    """
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_open:
        return None
    membership, joined = Membership.objects.get_or_create(
        team=invitation.team, user=user, defaults={"role": invitation.role}
    )
    if not joined:  # already in the team: the link stays open for the person it was meant for
        return membership
    invitation.accepted_by, invitation.accepted_at = user, timezone.now()
    invitation.save(update_fields=["accepted_by", "accepted_at"])
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> None:
    invitation.delete()
