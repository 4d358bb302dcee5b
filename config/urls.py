"""URL routes: the versioned REST API under ``/api/v1/``, health probes, API docs, the admin, and the
reference web client at ``/demo/`` (served only when ``DEMO_CLIENT_ENABLED``, demo/views.py)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from core.api_docs import RedocDocsView, SwaggerDocsView

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("sessions.urls")),
    path("", include("video_calls.urls")),
    path("", include("messaging.urls")),
    path("", include("presence.urls")),
    path("", include("realtime.urls")),
    path("", include("audit.urls")),
    path("", include("staff.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/health/", include("core.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerDocsView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", RedocDocsView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
    path("demo/", include("demo.urls")),
]

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
