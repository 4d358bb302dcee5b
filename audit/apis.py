"""Staff endpoints of the audit trail: the filtered list, and the same filter as a CSV file.

Both are audited themselves (audit/specs.py): reading or exporting the trail leaves an entry.
Anyone but clinic staff gets 403 PERMISSION_DENIED.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterator
from itertools import islice

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditEntry
from audit.selectors import AuditEntryFilter, audit_entry_list_for_user
from audit.serializers import FIELDS, AuditEntrySerializer
from core.pagination import PageNumberPagination

TAGS = ["audit"]
# Rows fetched from the database at a time while the file streams out (a server-side cursor
# on PostgreSQL), and lines handed to the server at a time.
EXPORT_CHUNK_SIZE = 2000
EXPORT_LINES_PER_WRITE = 500


class _AuditEntryApi(GenericAPIView):
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilter

    def get_queryset(self) -> QuerySet[AuditEntry]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no signed-in user
            return AuditEntry.objects.none()
        return audit_entry_list_for_user(user=self.request.user)


class AuditEntryListApi(_AuditEntryApi):
    pagination_class = PageNumberPagination

    @extend_schema(
        tags=TAGS,
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: AuditEntrySerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Staff only: the trail, newest first, filtered. One query for the page, whatever its size."""
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEntrySerializer(page, many=True).data)


class _Echo:
    """A file-like object whose write returns the line, for csv.writer over a stream."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(FIELDS)
    for entry in entries.values_list(*FIELDS).iterator(chunk_size=EXPORT_CHUNK_SIZE):
        yield writer.writerow(
            [" ".join(value) if isinstance(value, list) else ("" if value is None else value) for value in entry]
        )


async def _async_lines(lines: Iterator[str]) -> AsyncIterator[str]:
    """The lines read in batches in the thread that owns the database connection, so an ASGI
    server streams them instead of Django collecting a sync iterator into a list first."""
    batch = sync_to_async(lambda: "".join(islice(lines, EXPORT_LINES_PER_WRITE)), thread_sensitive=True)
    while chunk := await batch():
        yield chunk


class AuditEntryExportApi(_AuditEntryApi):
    @extend_schema(
        tags=TAGS,
        filters=True,
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="One line per entry.")},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        """Staff only: the filtered trail as CSV (the list's filters), newest first, streamed:
        any size in constant memory."""
        lines = _csv_lines(self.filter_queryset(self.get_queryset()))
        streamed = _async_lines(lines) if isinstance(request._request, ASGIRequest) else lines
        response = StreamingHttpResponse(streamed, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
        return response
