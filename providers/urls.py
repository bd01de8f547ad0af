from django.urls import path

from providers import views

urlpatterns = [
    path("accounts/new/", views.account_create, name="provider_account_create"),
    path("accounts/<int:account_id>/remove/", views.account_delete, name="provider_account_delete"),
    path("customise/", views.customise, name="provider_customise"),
    path("customise/<int:provider_avatar_id>/check/", views.customisation_check, name="provider_customisation_check"),
]
