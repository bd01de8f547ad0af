from django.contrib import admin
from django.utils.html import format_html

from studio.models import Membership, Team


def video_player(field) -> str:
    """A playable <video> for a stored file, for read-only admin fields."""
    if not field:
        return "—"
    return format_html('<video class="admin-video" src="{}" controls preload="metadata"></video>', field.url)


def image_preview(field) -> str:
    if not field:
        return "—"
    return format_html('<img class="admin-image" src="{}" alt="">', field.url)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "personal", "member_count", "created_at"]
    list_filter = ["personal"]
    search_fields = ["name", "memberships__user__username"]
    inlines = [MembershipInline]

    @admin.display(description="members")
    def member_count(self, team: Team) -> int:
        return team.memberships.count()


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]
