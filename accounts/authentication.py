"""Bearer access-token authentication that also refuses revoked and suspended users' tokens, and
the token-only variant for the WebSocket ticket."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework_simplejwt.authentication import JWTAuthentication, JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings

from accounts.models import User
from accounts.tokens import GENERATION_CLAIM


class AccessTokenAuthentication(JWTAuthentication):
    def get_user(self, validated_token) -> User:
        """The token's user, if still active and the token's generation is current.

        A deleted, suspended or signed-out user's token gets one answer (TOKEN_INVALID), so
        the token holder learns nothing about the account's state.
        """
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        try:
            user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
        except (DjangoValidationError, ValueError, TypeError):
            user = None
        if user is None or validated_token.get(GENERATION_CLAIM) != user.token_generation:
            raise InvalidToken({"detail": "Token has been revoked.", "code": "token_not_valid"})
        return user


class TokenClaimsUser(TokenUser):
    """The signed-in user as their access token names them, read from its claims alone."""

    @property
    def token_generation(self) -> int | None:
        return self.token.get(GENERATION_CLAIM)


class AccessTokenClaimsAuthentication(JWTStatelessUserAuthentication):
    """The access token's signature and lifetime, checked without the database: for an endpoint
    whose every use is checked against the database later anyway (the WebSocket ticket, whose
    redemption refuses a revoked token's or a suspended user's ticket), so that on the hour its
    requests do not queue for database connections."""

    def get_user(self, validated_token) -> TokenClaimsUser:
        super().get_user(validated_token)  # refuses a token without a user id
        return TokenClaimsUser(validated_token)
