from django.contrib import admin, messages
from django.utils import timezone

from webhooks.models import RenderCallback, WebhookDelivery, WebhookSecret


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "event_type", "render", "team", "url", "status", "attempts", "last_status_code", "next_attempt_at", "created_at",
    ]
    list_filter = ["status", "event_type", "last_status_code", "created_at"]
    search_fields = ["event_id", "url", "render__title", "team__name", "render__id"]
    date_hierarchy = "created_at"
    list_select_related = ["render", "team"]
    raw_id_fields = ["render", "team"]
    readonly_fields = [
        "team", "render", "event_at", "url", "event_id", "event_type", "payload", "attempts",
        "last_attempt_at", "last_status_code", "last_error", "delivered_at", "created_at",
    ]
    actions = ["send_again"]

    @admin.action(description="Send again now (failed or disabled deliveries start over)")
    def send_again(self, request, queryset) -> None:
        count = queryset.exclude(status=WebhookDelivery.Status.DELIVERED).update(
            status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(),
        )
        self.message_user(request, f"{count} delivery(ies) will be sent within a few seconds.", messages.SUCCESS)


@admin.register(RenderCallback)
class RenderCallbackAdmin(admin.ModelAdmin):
    list_display = ["render", "url", "disabled_at", "created_at"]
    list_filter = ["created_at", ("disabled_at", admin.EmptyFieldListFilter)]
    search_fields = ["url", "render__title", "render__id"]
    raw_id_fields = ["render"]


@admin.register(WebhookSecret)
class WebhookSecretAdmin(admin.ModelAdmin):
    list_display = ["team", "rotated_at", "previous_valid_until"]
    search_fields = ["team__name"]
    # The secrets themselves stay on the team's page, for its owners.
    fields = ["team", "rotated_at", "previous_valid_until"]
    readonly_fields = ["team", "rotated_at", "previous_valid_until"]

    def has_add_permission(self, request) -> bool:
        return False
