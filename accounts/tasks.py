"""Account emails, sent by a worker. Tasks take a user id, never a token: the worker makes the
signed token itself, so no secret sits in the broker."""

from celery import shared_task
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.email_tokens import email_verification_token_generator


class EmailNotSent(OSError):
    """A failed delivery, carrying only the class of the error. An SMTP error's text can hold
    the recipient's address, and Celery logs the exception of every retry and failure."""


def _send(user, subject: str, body: str) -> None:
    try:
        send_mail(subject, body, None, [user.email])
    except OSError as error:  # smtplib's errors and socket errors; retried below
        raise EmailNotSent(type(error).__name__) from None


def _user(user_id: str):
    from accounts.models import User

    # A phone-only account has no address to write to.
    return User.objects.filter(pk=user_id, is_active=True, email__isnull=False).first()


def _link(path: str, user, token: str) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return f"{settings.FRONTEND_URL.rstrip('/')}/{path}?uid={uid}&token={token}"


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_email_verification(user_id: str) -> None:
    user = _user(user_id)
    if user is None or user.email_verified:
        return
    link = _link("verify-email", user, email_verification_token_generator.make_token(user))
    _send(
        user,
        "Confirm your email address",
        f"Hello {user.first_name},\n\nConfirm your email address by opening this link:\n{link}\n",
    )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_password_reset_email(user_id: str) -> None:
    user = _user(user_id)
    if user is None:
        return
    link = _link("reset-password", user, default_token_generator.make_token(user))
    _send(
        user,
        "Reset your password",
        f"Hello {user.first_name},\n\nSomeone asked to reset your password. If it was you, open this link:\n"
        f"{link}\n\nIf it was not you, ignore this email; your password stays as it is.\n",
    )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_account_exists_email(user_id: str) -> None:
    """Told instead of the registrant, so the sign-up form does not reveal who has an account."""
    user = _user(user_id)
    if user is None:
        return
    _send(
        user,
        "You already have an account",
        f"Hello {user.first_name},\n\nSomeone tried to create an account with this email address, which "
        f"already has one. If it was you, sign in or reset your password at {settings.FRONTEND_URL}.\n",
    )
