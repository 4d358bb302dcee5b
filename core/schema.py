"""OpenAPI post-processing: every operation documents the one error shape for its 4xx answers."""

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

_ERROR_STATUSES = {
    "400": "Invalid input (VALIDATION_ERROR, MALFORMED_REQUEST, or a domain code).",
    "401": "Missing, invalid or revoked credentials.",
    "403": "Authenticated but not allowed.",
    "404": "Not found, or not yours.",
    "429": "Rate limited; see the Retry-After header.",
}


def add_error_responses(result: dict, generator, request, public) -> dict:
    result.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/ErrorResponse"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status_code, description in _ERROR_STATUSES.items():
                responses.setdefault(
                    status_code, {"description": description, "content": {"application/json": {"schema": reference}}}
                )
    return result
