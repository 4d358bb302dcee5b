"""HTTP middleware of the API.

- Request ids: taken from a well-formed ``X-Request-ID`` header (a proxy's) or generated, put on
  every log line of the request and echoed in the response, so a support ticket can name one.
- Body size: a ``Content-Length`` over the limit is refused before a view reads the body (under
  ASGI, core/asgi.py also counts bodies sent without one, as they arrive).
- Health probes and metrics scrapes addressed to the pod's IP: served whatever ``ALLOWED_HOSTS`` says.
- Content-Security-Policy on the admin's pages (the API docs pages set their own, core/api_docs.py).
"""

import ipaddress
import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port

from core.request_context import request_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_of_headers(incoming: str) -> str:
    """A well-formed incoming ``X-Request-ID`` (a proxy's), else a new id. Also the id of a
    WebSocket connection (realtime/consumers.py)."""
    return incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_of_headers(request.headers.get("X-Request-ID", ""))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than the path's limit (``core.asgi.request_body_limit``:
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``, or a route's own) with 413 before any view reads them. DRF's
    parsers read the raw stream, which Django's own check does not cover."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.http import JsonResponse

        from core.asgi import request_body_limit
        from core.errors import error_body

        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = request_body_limit(request.path) if length > 0 else None  # no body: no route to resolve
        if limit is not None and length > limit:
            return JsonResponse(
                error_body("PAYLOAD_TOO_LARGE", f"The request body is larger than {limit} bytes.", {"limit": limit}),
                status=413,
            )
        return self.get_response(request)


# Paths served to a client that names the pod by IP: the orchestrator's probes, and Prometheus,
# whose Kubernetes discovery scrapes each pod at its address.
HEALTH_PROBE_PATHS = ("/api/health/live", "/api/health/ready", "/api/health/metrics")


def _is_ip_literal(host: str) -> bool:
    domain, _ = split_domain_port(host)
    try:
        ipaddress.ip_address(domain.strip("[]"))
    except ValueError:
        return False
    return True


class HealthProbeHostMiddleware:
    """Serve ``/api/health/live``, ``/ready`` and ``/metrics`` to a client that names the pod by IP address.

    Kubernetes sends its HTTP probes with ``Host: <pod IP>:<port>``, an address no
    ``ALLOWED_HOSTS`` can list in advance, so Django refused them (400 ``DisallowedHost``) and the
    orchestrator took healthy pods out of service. A probe GET whose Host is an IP literal is
    answered here, before the middleware that validates the host (``CommonMiddleware``), by the
    probe views themselves, which never use the host. Every other path, and a probe with a host
    name that is not allowed, goes through the usual host check.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD") and request.path in HEALTH_PROBE_PATHS:
            host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
            if _is_ip_literal(host):
                from core import views

                view = {"/api/health/live": views.live, "/api/health/ready": views.ready}.get(
                    request.path, views.metrics
                )
                response = view(request)
                return response.render() if hasattr(response, "render") else response
        return self.get_response(request)


# The admin's own scripts and styles are static files of this host; a few of its templates set
# inline styles. Nothing loads from another host, nothing frames it.
ADMIN_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class AdminContentSecurityPolicyMiddleware:
    """Answers under the admin's URL carry ``ADMIN_CONTENT_SECURITY_POLICY`` (unless a view set
    a policy of its own): an injected script in a page staff open with patients' records on
    screen would run with their session. A small middleware rather than django-csp: one policy
    on one prefix, and the docs pages already set theirs per view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.urls import reverse

        response = self.get_response(request)
        if request.path.startswith(reverse("admin:index")):
            response.headers.setdefault("Content-Security-Policy", ADMIN_CONTENT_SECURITY_POLICY)
        return response
