from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """The one WebSocket endpoint, ``/ws/``: authentication, the envelope, and dispatch to the
    handlers each app registers in its ``consumers`` module."""

    name = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Handler modules register their message types on import.
        from messaging import consumers as chat_handlers  # noqa: F401
        from presence import consumers as presence_handlers  # noqa: F401
        from video_calls import consumers as call_handlers  # noqa: F401
