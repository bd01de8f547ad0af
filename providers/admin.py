"""Admin: accounts without their credentials; provider jobs with the provider's task id and raw status."""

from django.contrib import admin

from providers.models import ProviderAccount, ProviderAvatar, RemoteJob


@admin.register(ProviderAccount)
class ProviderAccountAdmin(admin.ModelAdmin):
    list_display = ["label", "provider", "team", "key_hint", "created_by", "created_at"]
    list_filter = ["provider", "created_at"]
    search_fields = ["label", "team__name"]
    # The encrypted credentials are not a field here at all; owners manage keys on the team page.
    fields = ["team", "provider", "label", "key_hint", "created_by", "created_at"]
    readonly_fields = fields

    @admin.display(description="Key")
    def key_hint(self, account: ProviderAccount) -> str:
        return f"…{account.hint}"

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ProviderAvatar)
class ProviderAvatarAdmin(admin.ModelAdmin):
    list_display = ["avatar", "account", "status", "provider_avatar_id", "raw_status", "updated_at"]
    list_filter = ["status", "account__provider"]
    search_fields = ["avatar__name", "provider_avatar_id", "task_id"]
    raw_id_fields = ["avatar", "account"]
    readonly_fields = ["task_id", "task_data", "provider_avatar_id", "raw_status", "note", "error", "created_by",
                       "created_at", "updated_at"]


@admin.register(RemoteJob)
class RemoteJobAdmin(admin.ModelAdmin):
    list_display = ["render", "provider", "account", "state", "render_status", "task_id", "raw_status", "polls",
                    "next_poll_at", "deadline"]
    list_filter = ["provider", "state"]
    search_fields = ["task_id", "render__title", "render__id"]
    list_select_related = ["render", "account"]
    raw_id_fields = ["render", "account", "provider_avatar"]
    readonly_fields = ["task_id", "task_data", "raw_status", "last_status", "last_error", "polls", "transient_errors",
                       "next_poll_at", "deadline", "claim_started_at", "poll_token", "created_at", "updated_at"]

    @admin.display(description="Render status")
    def render_status(self, job: RemoteJob) -> str:
        return job.render.get_status_display()


class RemoteJobInline(admin.StackedInline):
    """For the render admin: the engine, the provider's task id and raw status beside ours."""

    model = RemoteJob
    fk_name = "render"
    can_delete = False
    extra = 0
    max_num = 0
    fields = ["provider", "account", "state", "task_id", "raw_status", "last_status", "last_error", "polls",
              "deadline"]
    readonly_fields = fields
