from django.contrib.auth.models import AbstractUser
from django.db import transaction

from studio.models import Membership, Team


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


@transaction.atomic
def membership_add(*, team: Team, user: AbstractUser, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return membership
