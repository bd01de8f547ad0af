from django import template

from webhooks import services

register = template.Library()


@register.inclusion_tag("webhooks/team_secret.html", takes_context=True)
def webhook_signing_secret(context) -> dict:
    """The team page's webhook section: the signing secret, for owners only."""
    membership = context.get("current_membership")
    team = context.get("current_team")
    if team is None or membership is None or not membership.is_owner:
        return {"secret": None}
    return {"secret": services.webhook_secret(team=team), "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("webhooks/render_deliveries.html")
def render_webhook_deliveries(render) -> dict:
    """A render page's list of webhook deliveries (nothing when the render has no callback)."""
    return {"deliveries": list(services.webhook_deliveries(render=render)[:20])}
