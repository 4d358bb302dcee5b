"""The API docs pages (Swagger UI at ``/api/docs/``, ReDoc at ``/api/redoc/``), served whole by
this server so they work offline and tell no other host who reads them.

Their scripts come from drf-spectacular-sidecar's static files; ReDoc's page is our template
without drf-spectacular's Google Fonts links. Both answer with a Content-Security-Policy that
lets a page load from this host only: the ReDoc bundle still asks a CDN for Redocly's logo in
its sidebar footer, and the browser refuses that request instead of making it (ReDoc then leaves
the logo out). Swagger UI's validator badge is off (``validatorUrl`` in base.py).
"""

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

# 'unsafe-inline': both pages start their viewer from an inline script and style themselves with
# inline styles. blob: workers: ReDoc's search index runs in a worker made from a blob. Checked in
# headless Chromium: both pages render under this policy, and the one request it blocks is the logo.
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class _SameHostOnly:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response


class SwaggerDocsView(_SameHostOnly, SpectacularSwaggerView):
    pass


class RedocDocsView(_SameHostOnly, SpectacularRedocView):
    template_name = "core/redoc.html"
