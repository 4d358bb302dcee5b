"""OpenAPI description of our bearer-token authentication (imported by the app config)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class AccessTokenScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.AccessTokenAuthentication"
    name = "bearerAuth"
