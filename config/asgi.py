"""ASGI entry point (config/serve.py serves it in production; daphne serves it too): HTTP goes
to Django, WebSockets to Channels consumers."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

# Django must be set up before anything imports models (consumers, routing): what Django's
# get_asgi_application() does, with the handler that hops to a thread once per request.
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from core.asgi import OneHopASGIHandler, RequestBodyLimit  # noqa: E402

django_asgi_app = OneHopASGIHandler()

# A handshake from an origin not in WEBSOCKET_ALLOWED_ORIGINS (or with none) is refused with 403.
# HTTP bodies are counted as they arrive and refused past MAX_REQUEST_BYTES (core/asgi.py).
application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(django_asgi_app),
        "websocket": OriginValidator(URLRouter(websocket_urlpatterns), settings.WEBSOCKET_ALLOWED_ORIGINS),
    }
)

# What startup built (settings, URL patterns, models, serializers) lives as long as the process:
# keep it out of the cyclic garbage collector's full passes, which otherwise walk all of it and
# pause every connection of the process while they do.
gc.freeze()
