"""Input validation shared by the HTTP views."""

from typing import Any

from rest_framework import serializers


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate ``data`` (a body or query parameters) with ``serializer_class``; a failure
    raises DRF's ValidationError, which the exception handler answers as VALIDATION_ERROR."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
