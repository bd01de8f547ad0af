from django.urls import path

from renders import views

app_name = "renders"
urlpatterns = [
    path("", views.render_list, name="list"),
    path("new/", views.render_create, name="create"),
    path("voices/sample/", views.voice_sample, name="voice_sample"),
    path("<uuid:render_id>/", views.render_detail, name="detail"),
    path("<uuid:render_id>/cancel/", views.render_cancel, name="cancel"),
    path("<uuid:render_id>/retry/", views.render_retry, name="retry"),
    path("<uuid:render_id>/captions.vtt", views.render_captions_track, name="captions_track"),
    path("<uuid:render_id>/delete/", views.render_delete, name="delete"),
]
