"""User manager: emails are normalised to lower case so lookups and uniqueness ignore case.

An account may have no email (phone-only); ``normalize_email`` then gives "" and the model
stores NULL."""

from django.contrib.auth.base_user import BaseUserManager


class UserManager(BaseUserManager):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return (email or "").strip().lower()

    def _create_user(self, email: str | None, password: str | None, **extra_fields):
        if not email and not extra_fields.get("phone_number"):
            raise ValueError("An email address or a phone number is required.")
        user = self.model(email=self.normalize_email(email) or None, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str | None = None, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("role", "staff")
        extra_fields.update(is_staff=True, is_superuser=True, email_verified=True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username: str):
        return self.get(email=self.normalize_email(username))
