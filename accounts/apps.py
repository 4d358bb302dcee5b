from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users (patients, doctors, staff), their profiles, and authentication."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import schema  # noqa: F401  registers the OpenAPI auth extension
