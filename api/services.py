from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.utils import timezone

from api.models import ApiKey, key_digest
from studio.models import Team


@transaction.atomic
def api_key_create(*, team: Team, user: AbstractUser, name: str) -> tuple[ApiKey, str]:
    """A new key and its secret, which is returned this once and never stored."""
    prefix, secret = ApiKey.generate()
    while ApiKey.objects.filter(prefix=prefix).exists():  # 33^8 prefixes: a clash is near impossible, not impossible
        prefix, secret = ApiKey.generate()
    key = ApiKey.objects.create(team=team, name=name, prefix=prefix, digest=key_digest(secret), created_by=user)
    return key, secret


@transaction.atomic
def api_key_revoke(*, key: ApiKey) -> bool:
    """Stop the key working at once; False if it was already revoked."""
    return bool(ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now()))
