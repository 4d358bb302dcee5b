from django.apps import AppConfig


class VideoCallsConfig(AppConfig):
    """Calls, their participants, media credentials and quality metrics."""

    name = "video_calls"
    verbose_name = "Video calls"
    default_auto_field = "django.db.models.BigAutoField"
