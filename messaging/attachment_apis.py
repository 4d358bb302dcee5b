"""Attachment endpoints: upload (multipart), metadata, download.

There is no public URL of a file: the bytes come only from the download endpoint, to someone
``messaging.selectors.attachments_readable_by`` lets read them, decrypted as they stream.
Everyone else gets 404, whether the attachment exists or not.
"""

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.ratelimit import DEFAULT_THROTTLES
from core.schema import error_codes, error_response
from messaging import selectors
from messaging.attachment_files import read_decrypted
from messaging.attachment_serializers import AttachmentSerializer, AttachmentUploadSerializer
from messaging.services.attachments import (
    ALLOWED_TYPES,
    attachment_delete_unsent,
    attachment_name,
    attachment_upload,
)
from messaging.throttles import AttachmentUploadThrottle

SERVED_TYPES = sorted({served for served, _ in ALLOWED_TYPES.values()})


class AttachmentUploadApi(APIView):
    parser_classes = [MultiPartParser]
    throttle_classes = [*DEFAULT_THROTTLES, AttachmentUploadThrottle]

    @classmethod
    def request_body_limit(cls) -> int:
        """This route's request body limit (core/asgi.py): the largest file and its framing."""
        return settings.ATTACHMENT_MAX_BYTES + settings.ATTACHMENT_MULTIPART_OVERHEAD_BYTES

    @extend_schema(
        tags=["messaging"],
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={
            201: AttachmentSerializer,
            413: error_response(
                "PAYLOAD_TOO_LARGE: the file exceeds ATTACHMENT_MAX_BYTES (details.limit); refused before "
                "the body is read when its Content-Length says so."
            ),
            415: error_response(
                "UNSUPPORTED_MEDIA_TYPE: the body is not multipart/form-data, or the file's bytes are not "
                "one of the allowed types (details.allowed), whatever its name or declared type."
            ),
            **error_codes(
                {403: ("CHAT_DISABLED", "NOT_PARTICIPANT"), 404: ("CALL_NOT_FOUND", "CONVERSATION_NOT_FOUND")}
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Upload a file (an image, a PDF or audio, up to ``ATTACHMENT_MAX_BYTES``), stored
        encrypted. ``private`` (the default) is readable by you, and by the audience of a message
        you send it in; ``shared_conversation`` by the members of ``conversation_id``;
        ``shared_call`` by the participants of ``call_id``. Send it with a message of type
        ``image``, ``file`` or ``voice_note`` and its ``attachment_id``."""
        serializer = AttachmentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attachment = attachment_upload(owner=request.user, **serializer.validated_data)
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)


class AttachmentDetailApi(APIView):
    @extend_schema(
        tags=["messaging"], responses={200: AttachmentSerializer, **error_codes({404: ("ATTACHMENT_NOT_FOUND",)})}
    )
    def get(self, request: Request, attachment_id) -> Response:
        """An attachment's metadata: name, detected type, size, access, where it is shared."""
        attachment = selectors.attachment_get_for_user(user=request.user, attachment_id=attachment_id)
        return Response(AttachmentSerializer(attachment).data)

    @extend_schema(
        tags=["messaging"],
        request=None,
        responses={
            204: None,
            403: error_response("NOT_ATTACHMENT_OWNER: you may read this attachment but did not upload it."),
            409: error_response("ATTACHMENT_ALREADY_SENT: it is in a message; delete the message instead."),
            **error_codes({404: ("ATTACHMENT_NOT_FOUND",)}),
        },
    )
    def delete(self, request: Request, attachment_id) -> Response:
        """Withdraw an upload you have not sent: it is erased (its file deleted) and 404 from
        then on. An attachment in a message is erased by deleting the message."""
        attachment_delete_unsent(user=request.user, attachment_id=attachment_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _JsonForErrors(DefaultContentNegotiation):
    """The download answers the file's own type whatever ``Accept`` says; errors stay JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class AttachmentDownloadApi(APIView):
    content_negotiation_class = _JsonForErrors

    @extend_schema(
        tags=["messaging"],
        responses={
            (200, served): OpenApiResponse(OpenApiTypes.BINARY, description="The file's bytes, decrypted.")
            for served in SERVED_TYPES
        }
        | error_codes({404: ("ATTACHMENT_NOT_FOUND",)})
        | {
            500: error_response(
                "ATTACHMENT_UNREADABLE: no configured key opens the stored file, or it was altered; it cannot be served."
            )
        },
    )
    def get(self, request: Request, attachment_id) -> StreamingHttpResponse:
        """The file, as an attachment (``Content-Disposition: attachment`` with its sanitized
        name), of its detected type, never sniffed (``X-Content-Type-Options: nosniff``) or cached."""
        attachment = selectors.attachment_get_for_user(user=request.user, attachment_id=attachment_id)
        chunks = read_decrypted(attachment_id=attachment.pk, storage_name=attachment.storage_name)
        # The first chunk is read here, so a file no key opens is answered 500
        # ATTACHMENT_UNREADABLE in the error shape rather than as a download cut short.
        chunks = _prefixed(next(chunks, b""), chunks)
        streamed = _async_chunks(chunks) if isinstance(request._request, ASGIRequest) else chunks
        response = StreamingHttpResponse(streamed, content_type=attachment.content_type)
        response["Content-Length"] = str(attachment.size)
        response["Content-Disposition"] = content_disposition_header(True, attachment_name(attachment) or "attachment")
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


def _prefixed(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The chunks read in a worker thread one at a time, so an ASGI server streams them instead
    of Django collecting a sync iterator into a list first."""
    sentinel = object()
    try:
        while (chunk := await sync_to_async(next, thread_sensitive=False)(chunks, sentinel)) is not sentinel:
            yield chunk
    finally:
        await sync_to_async(chunks.close, thread_sensitive=False)()
