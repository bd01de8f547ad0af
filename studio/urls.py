from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from providers import media as provider_media
from providers import views as provider_views
from studio import media, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("teams/switch/", views.team_switch, name="team_switch"),
    path("teams/new/", views.team_new, name="team_new"),
    path("team/", views.team_settings, name="team_settings"),
    path("team/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("team/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("team/invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("team/webhooks/", include("webhooks.urls")),
    path("team/providers/", include("providers.urls")),
    # Unauthenticated on purpose: providers fetch our files and call back; signatures guard both.
    path("provider-media/<int:expires>/<str:signature>/<path:key>", provider_media.provider_media,
         name="provider_media"),
    path("providers/callback/<str:provider>/", provider_views.callback, name="provider_callback"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("avatars/", include("avatars.urls")),
    path("renders/", include("renders.urls")),
    path("", include("api.urls")),
    path("admin/", admin.site.urls),
]
if not settings.AWS_STORAGE_BUCKET_NAME:
    urlpatterns.append(re_path(r"^media/(?P<path>.+)$", media.media_file, name="media"))
