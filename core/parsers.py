"""The JSON body parser of the API: DRF's, with a nesting limit.

No request of the API nests more than a few levels, but the standard library's parser recurses
once per level: a body of ten thousand ``[`` raised ``RecursionError`` (a 500) before any view
ran. Bodies nested deeper than ``MAX_JSON_DEPTH`` are refused as malformed (400
``MALFORMED_REQUEST``, docs/errors.md), whether the parser itself gave up or the document parsed.
"""

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JsonTooDeep(ValueError):
    """A JSON document nested deeper than ``MAX_JSON_DEPTH``."""


def json_depth_check(document: Any, limit: int) -> None:
    """Raise ``JsonTooDeep`` when ``document`` has more than ``limit`` nested arrays/objects.

    Iterative, so checking a deep document cannot itself run out of stack."""
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        depth += 1
        if depth > limit:
            raise JsonTooDeep(f"JSON nested deeper than {limit} levels.")
        pending.extend((child, depth) for child in children if isinstance(child, dict | list))


def json_loads_limited(text: str | bytes) -> Any:
    """``json.loads`` that raises ``ValueError`` (never ``RecursionError``) for over-deep documents."""
    limit = settings.MAX_JSON_DEPTH
    try:
        document = json.loads(text)
    except RecursionError:
        raise JsonTooDeep(f"JSON nested deeper than {limit} levels.") from None
    json_depth_check(document, limit)
    return document


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.MAX_JSON_DEPTH
        try:
            document = super().parse(stream, media_type, parser_context)
            json_depth_check(document, limit)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {limit} levels.") from None
        except JsonTooDeep as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return document
