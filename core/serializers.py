"""Serializer fields shared by the apps' response shapes."""

from typing import Any

from rest_framework import serializers


class UnsetAsNullChoiceField(serializers.ChoiceField):
    """A choice the model stores as ``""`` until it is set (``end_reason``, ``no_show_party``),
    answered as ``null``: the schema's enum then lists only real values, and a client tests for
    null rather than for an empty string. Read-only."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> Any:
        return None if value in ("", None) else super().to_representation(value)
