"""Bearer access-token authentication that also refuses revoked and suspended users' tokens."""

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts.tokens import GENERATION_CLAIM


class AccessTokenAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        user = super().get_user(validated_token)  # refuses unknown and inactive (suspended) users
        if validated_token.get(GENERATION_CLAIM) != user.token_generation:
            raise InvalidToken({"detail": "Token has been revoked.", "code": "token_not_valid"})
        return user
