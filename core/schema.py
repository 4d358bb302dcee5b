"""OpenAPI post-processing: every operation documents the one error shape for its error answers.

``add_error_responses`` declares on every operation the statuses any endpoint can answer (400,
401, 403, 404, 429, 503; 413 for POST, PUT, PATCH and DELETE; 415 where a request body is read)
and gives every declared error status, including those a view names itself (``409: CONFLICT``
or ``409: None``, or ``error_codes``, which names each status's domain codes), the
``ErrorResponse`` body; every answer of an API operation also names the
``X-RateLimit-*`` headers (and a 429 ``Retry-After``). ``tests/core/test_schema_conformance.py``
checks real answers against it."""

from drf_spectacular.utils import OpenApiResponse

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details", "request_id"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable machine-readable code (docs/errors.md).",
                    "example": "VALIDATION_ERROR",
                },
                "message": {"type": "string", "description": "Human-readable explanation."},
                "details": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Per-field errors or extra data.",
                },
                "request_id": {"type": "string", "description": "Also in the X-Request-ID response header."},
            },
        }
    },
}

ERROR_REFERENCE = {"$ref": "#/components/schemas/ErrorResponse"}

_ERROR_STATUSES = {
    "400": "Invalid input (VALIDATION_ERROR, MALFORMED_REQUEST, or a domain code).",
    "401": "Missing, invalid or revoked credentials.",
    "403": "Authenticated but not allowed.",
    "404": "Not found, or not yours.",
    "429": "Rate limited; see the Retry-After header.",
    "503": (
        "SERVICE_UNAVAILABLE: a dependency (database, Redis, task broker) is down or busy; "
        "retry after the Retry-After header's seconds."
    ),
}
_BODY_ERROR_STATUSES = {
    "413": "PAYLOAD_TOO_LARGE: the body exceeds MAX_REQUEST_BYTES (details.limit).",
    "415": "UNSUPPORTED_MEDIA_TYPE: the body is not application/json.",
}
_DEFAULT_DESCRIPTIONS = {
    **_ERROR_STATUSES,
    **_BODY_ERROR_STATUSES,
    "409": "Conflicts with the current state; the code says how (docs/errors.md).",
}
_UNSAFE_METHODS = {"post", "put", "patch", "delete"}
_NO_BODY = "No response body"  # what drf-spectacular writes for ``{status: None}``

CONFLICT = OpenApiResponse(ERROR_REFERENCE, description=_DEFAULT_DESCRIPTIONS["409"])


def error_response(description: str) -> OpenApiResponse:
    """An error status of one operation, answered in the error shape."""
    return OpenApiResponse(ERROR_REFERENCE, description=description)


def error_codes(codes_by_status: dict[int, tuple[str, ...]]) -> dict[int, OpenApiResponse]:
    """The domain codes an operation answers, by status, for its ``responses``: each status's
    description names its codes (``CALL_NOT_FOUND``), so a client built from the schema knows
    them. ``tests/core/test_schema_error_codes.py`` checks that every code the view's services
    can raise is named here."""
    return {
        status_code: error_response(
            f"{_DEFAULT_DESCRIPTIONS[str(status_code)]} Codes: {', '.join(f'`{code}`' for code in codes)}."
        )
        for status_code, codes in sorted(codes_by_status.items())
    }


# Every API answer a rate limit counted carries these (core/ratelimit.py, docs/api.md#rate-limits).
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "Requests the window of the limit closest to refusing allows.",
    "X-RateLimit-Remaining": "Requests that limit still allows now, this one counted.",
    "X-RateLimit-Reset": "Unix time (s) when its oldest counted request leaves the window.",
}
_RETRY_AFTER = {"description": "Seconds until the next request is allowed.", "schema": {"type": "integer"}}


def _add_rate_limit_headers(result: dict, path: str, responses: dict) -> None:
    if not path.startswith("/api/v1/"):  # the health probes are not limited
        return
    components = result["components"].setdefault("headers", {})
    for name, description in RATE_LIMIT_HEADERS.items():
        components[name] = {"description": description, "schema": {"type": "integer"}}
    for status_code, response in responses.items():
        headers = response.setdefault("headers", {})
        for name in RATE_LIMIT_HEADERS:
            headers.setdefault(name, {"$ref": f"#/components/headers/{name}"})
        if status_code == "429":
            headers.setdefault("Retry-After", _RETRY_AFTER)


def add_error_responses(result: dict, generator, request, public) -> dict:
    result.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = ERROR_SCHEMA
    content = {"application/json": {"schema": ERROR_REFERENCE}}
    for path, path_item in result.get("paths", {}).items():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            statuses = dict(_ERROR_STATUSES)
            if method in _UNSAFE_METHODS:  # the size limit counts any body, read or not
                statuses["413"] = _BODY_ERROR_STATUSES["413"]
            if "requestBody" in operation:
                statuses.update(_BODY_ERROR_STATUSES)
            for status_code, description in statuses.items():
                responses.setdefault(status_code, {"description": description, "content": content})
            for status_code, response in responses.items():
                if int(status_code) >= 400 and not response.get("content"):
                    response["content"] = content
                    if response.get("description", _NO_BODY) == _NO_BODY:
                        response["description"] = _DEFAULT_DESCRIPTIONS.get(status_code, "An error.")
            _add_rate_limit_headers(result, path, responses)
    return result
