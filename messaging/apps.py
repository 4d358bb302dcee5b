from django.apps import AppConfig


class MessagingConfig(AppConfig):
    """Conversations and messages between care participants."""

    name = "messaging"
    default_auto_field = "django.db.models.BigAutoField"
