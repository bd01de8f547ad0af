from django.apps import AppConfig


class RendersConfig(AppConfig):
    name = "renders"
