from django.apps import AppConfig


class PresenceConfig(AppConfig):
    """Who is online, away, busy or offline, shared only along care relationships."""

    name = "presence"
    default_auto_field = "django.db.models.BigAutoField"
