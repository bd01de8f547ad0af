"""The team page's provider accounts section, kept here so the studio's view needn't know about providers."""

from django import template

from providers import services
from providers.forms import ProviderAccountForm
from providers.models import ProviderAvatar

register = template.Library()


@register.inclusion_tag("providers/team_accounts.html", takes_context=True)
def provider_accounts(context) -> dict:
    request = context["request"]
    membership = getattr(request, "membership", None)
    is_owner = membership is not None and membership.is_owner
    accounts = request.team.provider_accounts.select_related("created_by") if is_owner else []
    made = ProviderAvatar.objects.filter(account__team=request.team).select_related("avatar", "account").order_by(
        "-created_at") if is_owner else []
    can_customise = is_owner and bool(services.provider_customisation_accounts(team=request.team))
    return {"is_owner": is_owner, "accounts": accounts, "form": ProviderAccountForm(), "provider_avatars": made,
            "can_customise": can_customise, "csrf_token": context.get("csrf_token")}
