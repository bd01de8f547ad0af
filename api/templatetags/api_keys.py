"""The team page's API keys section, kept in the api app so the studio's view needn't know about keys."""

from django import template

from api.forms import ApiKeyForm

register = template.Library()


@register.inclusion_tag("api/team_api_keys.html", takes_context=True)
def team_api_keys(context) -> dict:
    request = context["request"]
    membership = getattr(request, "membership", None)
    is_owner = membership is not None and membership.is_owner
    keys = request.team.api_keys.select_related("created_by").filter(revoked_at=None) if is_owner else []
    return {"request": request, "is_owner": is_owner, "keys": keys, "form": ApiKeyForm(), "csrf_token": context.get("csrf_token")}
