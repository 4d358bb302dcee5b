from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting pieces: the application error type, the error shape, request ids, health."""

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.logging import credential_headers_redact

        credential_headers_redact()
