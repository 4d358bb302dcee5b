"""Signed, expiring tokens for email links.

Password reset uses Django's ``default_token_generator`` (it changes with the password hash,
so a link works once). Email verification uses the same machinery keyed on the address and
its verified flag, so a link works once and not for an address changed since.
"""

from django.contrib.auth.tokens import PasswordResetTokenGenerator


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "accounts.email_tokens.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp: int) -> str:
        return f"{user.pk}{user.email}{user.email_verified}{timestamp}"


email_verification_token_generator = EmailVerificationTokenGenerator()
