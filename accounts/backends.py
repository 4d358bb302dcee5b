"""Sign in with an email address or a verified phone number."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class EmailOrPhoneBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, phone_number=None, **kwargs):
        User = get_user_model()
        email = kwargs.get("email") or username
        if email:
            candidates = User.objects.filter(email=User.objects.normalize_email(email))
        elif phone_number:
            candidates = User.objects.filter(phone_number=phone_number, phone_verified=True)
        else:
            return None
        user = candidates.first()
        if user is None or password is None:
            # Hash anyway so an unknown login takes as long as a wrong password.
            User().set_password(password or "")
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
