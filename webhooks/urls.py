from django.urls import path

from webhooks import views

urlpatterns = [
    path("secret/rotate/", views.secret_rotate, name="webhook_secret_rotate"),
]
