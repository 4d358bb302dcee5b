"""The messaging fixtures (a care relationship, a direct conversation, attachment storage)."""

from tests.messaging.conftest import attachment_root, care, direct  # noqa: F401
