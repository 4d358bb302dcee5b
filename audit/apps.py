from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit trail: an append-only row per access to health data (HIPAA §164.312(b))."""

    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"
