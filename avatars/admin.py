import json

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from avatars import services
from avatars.models import Avatar
from studio.admin import image_preview, video_player


@admin.register(Avatar)
class AvatarAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "kind", "status", "stage", "progress", "attempts", "created_by", "created_at"]
    list_filter = ["status", "kind", "gender", "background", "created_at"]
    search_fields = ["name", "team__name", "created_by__username", "source_name"]
    date_hierarchy = "created_at"
    list_select_related = ["team", "created_by"]
    readonly_fields = [
        "id", "kind", "status", "stage", "progress", "attempts", "heartbeat_at", "started_at",
        "finished_at", "error", "preflight_report", "source_name", "source_mime", "source_size",
        "consent_at", "poster_image", "preview_player", "source_player", "width", "height", "fps",
        "duration", "report", "created_at", "updated_at",
    ]
    exclude = ["preflight", "media", "poster", "preview", "source", "library"]
    actions = ["retry_preparation"]

    @admin.display(description="pre-flight report")
    def preflight_report(self, avatar: Avatar) -> str:
        listed = format_html_join("", "<li>{}</li>", ((p["message"],) for p in avatar.problems))
        return format_html('<ul>{}</ul><pre class="admin-report">{}</pre>', listed, json.dumps(avatar.preflight, indent=2))

    @admin.display(description="poster")
    def poster_image(self, avatar: Avatar) -> str:
        return image_preview(avatar.poster)

    @admin.display(description="preview")
    def preview_player(self, avatar: Avatar) -> str:
        return video_player(avatar.preview)

    @admin.display(description="prepared video")
    def source_player(self, avatar: Avatar) -> str:
        return video_player(avatar.media) if avatar.kind == Avatar.Kind.VIDEO else image_preview(avatar.media)

    @admin.action(description="Retry preparation of failed avatars")
    def retry_preparation(self, request, queryset) -> None:
        retried = sum(services.avatar_retry(avatar=avatar) for avatar in queryset)
        self.message_user(request, f"{retried} avatar(s) queued again.", messages.SUCCESS)
