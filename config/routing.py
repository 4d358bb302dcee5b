"""WebSocket URL routes: the one realtime endpoint, ``/ws/``."""

from realtime.routing import websocket_urlpatterns

__all__ = ["websocket_urlpatterns"]
