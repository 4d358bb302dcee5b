"""The reference web client: one page at ``/demo/`` that uses the public API only (docs/client.md)."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Reference web client"
