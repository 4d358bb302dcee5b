"""Sign in with an email address or a phone number.

A verified phone number is a login (unique among verified numbers). An unverified one is not,
with one exception: an account with no verified contact at all (a phone-only registration
waiting for its code) is found by its number and password, so that accounts.services.user_login
can answer ``ACCOUNT_NOT_VERIFIED`` (or, with ``LOGIN_REQUIRES_VERIFIED_CONTACT`` off, sign it
in). Unverified numbers are not unique, so such an account is the one whose password matches.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

# At most this many unverified accounts sharing a number are tried (each costs a hash).
PENDING_CANDIDATES = 5


def password_match(candidates, password: str | None):
    """The first of ``candidates`` whose password is ``password``, or None. With no candidate a
    password is hashed anyway, so an unknown login takes as long as a wrong password."""
    User = get_user_model()
    candidates = list(candidates)
    if not candidates or password is None:
        User().set_password(password or "")
        return None
    return next((user for user in candidates if user.check_password(password)), None)


def pending_phone_accounts(phone_number: str):
    """Accounts whose only contact is ``phone_number``, unverified, and nothing verified."""
    User = get_user_model()
    return User.objects.filter(phone_number=phone_number, phone_verified=False, email_verified=False).order_by(
        "date_joined"
    )[:PENDING_CANDIDATES]


class EmailOrPhoneBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, phone_number=None, **kwargs):
        User = get_user_model()
        email = kwargs.get("email") or username
        if email:
            candidates = User.objects.filter(email=User.objects.normalize_email(email))[:1]
        elif phone_number:
            verified = User.objects.filter(phone_number=phone_number, phone_verified=True).first()
            candidates = [verified] if verified is not None else pending_phone_accounts(phone_number)
        else:
            return None
        user = password_match(candidates, password)
        if user is not None and self.user_can_authenticate(user):
            return user
        return None
