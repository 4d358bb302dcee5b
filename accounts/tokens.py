"""JWT access/refresh pairs that carry the user's ``token_generation``.

Rotation and reuse detection use simplejwt's blacklist (each refresh token's ``jti``);
revoking every token of a user at once (logout everywhere, password change, suspension)
raises the generation, which both the access-token check and the refresh path compare.
"""

from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

GENERATION_CLAIM = "gen"


class UserRefreshToken(RefreshToken):
    @classmethod
    def for_user(cls, user) -> "UserRefreshToken":
        token = super().for_user(user)
        token[GENERATION_CLAIM] = user.token_generation
        token["role"] = user.role
        return token


def token_pair_for(user) -> dict:
    """The body every endpoint that signs a user in answers with."""
    refresh = UserRefreshToken.for_user(user)
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()),
    }
