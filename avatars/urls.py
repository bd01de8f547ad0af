from django.urls import path

from avatars import views

app_name = "avatars"
urlpatterns = [
    path("", views.avatar_list, name="list"),
    path("new/", views.avatar_create, name="create"),
    path("<uuid:avatar_id>/", views.avatar_detail, name="detail"),
    path("<uuid:avatar_id>/retry/", views.avatar_retry, name="retry"),
    path("<uuid:avatar_id>/delete/", views.avatar_delete, name="delete"),
]
