from django.contrib import admin, messages

from api import services
from api.models import ApiKey, IdempotentRequest, Upload


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "displayed_prefix", "team", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at", "created_at"]
    search_fields = ["name", "prefix", "team__name", "created_by__username"]
    list_select_related = ["team", "created_by"]
    # Keys are created on the team page, where the secret can be shown once; here they are only read or revoked.
    readonly_fields = ["team", "name", "prefix", "digest", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset) -> None:
        revoked = sum(services.api_key_revoke(key=key) for key in queryset)
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["id", "team", "kind", "content_type", "status", "size", "created_at", "expires_at", "used_at"]
    list_filter = ["kind", "status", "created_at"]
    search_fields = ["id", "team__name", "filename", "key"]
    list_select_related = ["team"]
    readonly_fields = [f.name for f in Upload._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(IdempotentRequest)
class IdempotentRequestAdmin(admin.ModelAdmin):
    list_display = ["key", "api_key", "status_code", "created_at"]
    search_fields = ["key"]
    readonly_fields = [f.name for f in IdempotentRequest._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
