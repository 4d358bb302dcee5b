"""Call endpoints, one module per area; ``video_calls.urls`` joins their ``urlpatterns``."""
