from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from engine.errors import InputRejected
from providers.admin import RemoteJobInline
from providers.services import provider_account_for, provider_engine_choices, render_engine_change
from renders import services
from renders.models import Render, RenderEvent
from studio.admin import image_preview, video_player


class RenderEventInline(admin.TabularInline):
    model = RenderEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "kind", "message"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Render)
class RenderAdmin(admin.ModelAdmin):
    list_display = ["title", "team", "avatar", "driver", "status", "stage", "progress", "attempts", "duration", "created_at"]
    list_filter = ["status", "driver", "loop_mode", "captions_source", "burn_captions", "created_at"]
    search_fields = ["title", "script", "transcript", "team__name", "avatar__name", "created_by__username"]
    date_hierarchy = "created_at"
    list_select_related = ["team", "avatar"]
    readonly_fields = [
        "id", "status", "stage", "progress", "eta_seconds", "attempts", "heartbeat_at", "started_at",
        "finished_at", "error", "video_player", "poster_image", "duration", "size_bytes", "width",
        "height", "audio_duration", "captions_source", "warning", "created_at", "updated_at",
    ]
    exclude = ["video", "poster"]
    raw_id_fields = ["avatar", "team", "created_by"]
    inlines = [RemoteJobInline, RenderEventInline]
    actions = ["retry_renders", "cancel_renders", "rerun_on_another_engine"]

    @admin.display(description="video")
    def video_player(self, render: Render) -> str:
        return video_player(render.video)

    @admin.display(description="poster")
    def poster_image(self, render: Render) -> str:
        return image_preview(render.poster)

    @admin.action(description="Retry selected failed or cancelled renders")
    def retry_renders(self, request, queryset) -> None:
        retried = sum(services.render_retry(render=render) for render in queryset)
        self.message_user(request, f"{retried} render(s) queued again.", messages.SUCCESS)

    @admin.action(description="Re-run selected failed or cancelled renders on another engine…")
    def rerun_on_another_engine(self, request, queryset):
        """First the choice (the built-in engine or a provider account of the renders' team),
        then each render moves there and is queued again."""
        teams = set(queryset.values_list("team_id", flat=True))
        if len(teams) != 1:
            self.message_user(request, "Choose renders of one team: engines are per team.", messages.WARNING)
            return None
        choices = provider_engine_choices(team=queryset.first().team)
        chosen = request.POST.get("engine")
        if chosen is None or chosen not in {value for value, _ in choices}:
            return TemplateResponse(request, "admin/renders/rerun_engine.html", {
                **self.admin_site.each_context(request), "title": "Re-run on another engine",
                "renders": queryset, "choices": choices, "action": "rerun_on_another_engine",
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            })
        moved = 0
        for render in queryset:
            try:
                account = provider_account_for(team=render.team, choice=chosen)
                render_engine_change(render=render, account=account)
            except InputRejected as problem:
                self.message_user(request, f"{render.title}: {problem}", messages.WARNING)
                continue
            moved += services.render_retry(render=render)
        label = dict(choices)[chosen]
        self.message_user(request, f"{moved} render(s) queued again on {label}.", messages.SUCCESS)
        return None

    @admin.action(description="Cancel selected queued or running renders")
    def cancel_renders(self, request, queryset) -> None:
        cancelled = sum(services.render_cancel(render=render) for render in queryset)
        self.message_user(request, f"{cancelled} render(s) cancelled.", messages.SUCCESS)


@admin.register(RenderEvent)
class RenderEventAdmin(admin.ModelAdmin):
    list_display = ["render", "kind", "at", "message"]
    list_filter = ["kind"]
    search_fields = ["render__title", "message"]
    raw_id_fields = ["render"]
