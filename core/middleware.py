"""Request ids: taken from a well-formed ``X-Request-ID`` header (a proxy's) or generated, put on
every log line of the request and echoed in the response, so a support ticket can name one."""

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from core.request_context import request_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with 413 before any
    view reads them. DRF's parsers read the raw stream, which Django's own check does not cover."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.conf import settings
        from django.http import JsonResponse

        from core.errors import error_body

        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit and request.path.startswith("/api/"):
            return JsonResponse(
                error_body("PAYLOAD_TOO_LARGE", f"The request body is larger than {limit} bytes.", {"limit": limit}),
                status=413,
            )
        return self.get_response(request)
