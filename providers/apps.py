from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Provider engines"

    def ready(self) -> None:
        from providers import signals  # noqa: F401
