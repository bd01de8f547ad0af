"""The team page's provider accounts section, kept here so the studio's view needn't know about providers."""

from django import template

from providers.forms import ProviderAccountForm

register = template.Library()


@register.inclusion_tag("providers/team_accounts.html", takes_context=True)
def provider_accounts(context) -> dict:
    request = context["request"]
    membership = getattr(request, "membership", None)
    is_owner = membership is not None and membership.is_owner
    accounts = request.team.provider_accounts.select_related("created_by") if is_owner else []
    return {"is_owner": is_owner, "accounts": accounts, "form": ProviderAccountForm(),
            "csrf_token": context.get("csrf_token")}
