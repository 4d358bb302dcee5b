"""Session and payment endpoints: each validates its input, calls one service or selector, and
serializes. Error codes are listed in docs/sessions.md and docs/payments.md."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import PageNumberPagination
from core.schema import CONFLICT, error_codes, error_response
from core.validation import validated
from sessions import selectors, services
from sessions.filters import SessionFilter
from sessions.join_window import join_decision
from sessions.models import Session
from sessions.serializers import (
    CanJoinSerializer,
    MarkPaidSerializer,
    MarkRefundedSerializer,
    PaymentSerializer,
    SessionCancelSerializer,
    SessionCreateSerializer,
    SessionRescheduleSerializer,
    SessionSerializer,
    WebhookDataSerializer,
    WebhookEventSerializer,
    WebhookResultSerializer,
)
from sessions.services.payments import EVENT_TYPES, SIGNATURE_HEADER

TAGS = ["sessions"]
# What booking refuses in a new or moved time (sessions/services/booking.py).
BOOKING_REFUSALS = ("DOCTOR_NOT_BOOKABLE", "PATIENT_INACTIVE", "START_IN_PAST", "START_TOO_FAR")


class SessionListCreateApi(GenericAPIView):
    serializer_class = SessionSerializer
    pagination_class = PageNumberPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = SessionFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no signed-in user
            return Session.objects.none()
        return selectors.session_list_for_user(user=self.request.user)

    @extend_schema(
        tags=TAGS,
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: SessionSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Sessions the requester takes part in (staff: all), filtered, ordered and paginated."""
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(SessionSerializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        request=SessionCreateSerializer,
        responses={
            201: SessionSerializer,
            **error_codes(
                {
                    400: (*BOOKING_REFUSALS, "SAME_USER"),
                    403: ("PERMISSION_DENIED",),
                    404: ("NOT_FOUND",),
                    409: ("SCHEDULE_CONFLICT",),
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Book a session (status ``requested``). Patients book for themselves, doctors with their
        patients, staff for anyone."""
        session = services.session_book(requested_by=request.user, **validated(SessionCreateSerializer, request.data))
        return Response(SessionSerializer(session).data, status=status.HTTP_201_CREATED)


class _SessionApi(APIView):
    def session(self, request: Request, session_id):
        return selectors.session_get_for_user(user=request.user, session_id=session_id)


class SessionDetailApi(_SessionApi):
    @extend_schema(tags=TAGS, responses={200: SessionSerializer})
    def get(self, request: Request, session_id) -> Response:
        return Response(SessionSerializer(self.session(request, session_id)).data)


class SessionConfirmApi(_SessionApi):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: SessionSerializer,
            **error_codes({403: ("PERMISSION_DENIED",), 404: ("NOT_FOUND",), 409: ("REQUEST_LAPSED",)}),
        },
    )
    def post(self, request: Request, session_id) -> Response:
        """The session's doctor or staff confirm a requested session, before its start. 409
        ``INVALID_SESSION_STATE`` if it is not requested; 409 ``REQUEST_LAPSED`` once its start
        has passed (the lapse sweep cancels it)."""
        session = services.session_confirm(session=self.session(request, session_id), user=request.user)
        return Response(SessionSerializer(session).data)


class SessionCancelApi(_SessionApi):
    @extend_schema(
        tags=TAGS,
        request=SessionCancelSerializer,
        responses={200: SessionSerializer, **error_codes({404: ("NOT_FOUND",), 409: ("NOTICE_PERIOD_PASSED",)})},
    )
    def post(self, request: Request, session_id) -> Response:
        """Cancel a requested or confirmed session; a paid one is marked for refund."""
        data = validated(SessionCancelSerializer, request.data)
        session = services.session_cancel(session=self.session(request, session_id), user=request.user, **data)
        return Response(SessionSerializer(session).data)


class SessionRescheduleApi(_SessionApi):
    @extend_schema(
        tags=TAGS,
        request=SessionRescheduleSerializer,
        responses={
            200: SessionSerializer,
            **error_codes(
                {
                    400: BOOKING_REFUSALS,
                    404: ("NOT_FOUND",),
                    409: ("NOTICE_PERIOD_PASSED", "SCHEDULE_CONFLICT"),
                }
            ),
        },
    )
    def post(self, request: Request, session_id) -> Response:
        """Move a requested or confirmed session, under the booking rules."""
        data = validated(SessionRescheduleSerializer, request.data)
        session = services.session_reschedule(session=self.session(request, session_id), user=request.user, **data)
        return Response(SessionSerializer(session).data)


class SessionCanJoinApi(_SessionApi):
    @extend_schema(tags=TAGS, responses={200: CanJoinSerializer})
    def get(self, request: Request, session_id) -> Response:
        """Whether the requester may join the session's call now, and if not, why (a stable reason)."""
        decision = join_decision(session=self.session(request, session_id), user=request.user)
        return Response(CanJoinSerializer.from_decision(decision).data)


class SessionMarkPaidApi(_SessionApi):
    @extend_schema(
        tags=TAGS,
        request=MarkPaidSerializer,
        responses={
            200: SessionSerializer,
            **error_codes({403: ("PERMISSION_DENIED",), 404: ("NOT_FOUND",), 409: ("INVALID_SESSION_STATE",)}),
        },
    )
    def post(self, request: Request, session_id) -> Response:
        """Staff only: record a payment taken outside the provider."""
        data = validated(MarkPaidSerializer, request.data)
        session = services.session_mark_paid(session=self.session(request, session_id), user=request.user, **data)
        return Response(SessionSerializer(session).data)


class SessionMarkRefundedApi(_SessionApi):
    @extend_schema(
        tags=TAGS,
        request=MarkRefundedSerializer,
        responses={
            200: SessionSerializer,
            409: CONFLICT,
            **error_codes({403: ("PERMISSION_DENIED",), 404: ("NOT_FOUND",)}),
        },
    )
    def post(self, request: Request, session_id) -> Response:
        """Staff only: record that a paid session was refunded."""
        data = validated(MarkRefundedSerializer, request.data)
        session = services.session_mark_refunded(session=self.session(request, session_id), user=request.user, **data)
        return Response(SessionSerializer(session).data)


class SessionPaymentListApi(_SessionApi):
    @extend_schema(tags=TAGS, responses={200: PaymentSerializer(many=True)})
    def get(self, request: Request, session_id) -> Response:
        """Every payment attempt and refund of the session, newest first."""
        payments = selectors.payment_list_for_session(session=self.session(request, session_id))
        return Response(PaymentSerializer(payments, many=True).data)


class _WebhookEnvelopeSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=255)
    type = serializers.CharField(max_length=100)


class PaymentWebhookApi(APIView):
    """Called by the payment provider, not by users: authenticated by the HMAC signature alone."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["payments"],
        request=WebhookEventSerializer,
        responses={
            200: WebhookResultSerializer,
            409: CONFLICT,
            **error_codes(
                {
                    400: ("PAYMENT_AMOUNT_MISMATCH", "WEBHOOK_SIGNATURE_INVALID", "WEBHOOK_TIMESTAMP_STALE"),
                    404: ("NOT_FOUND",),
                }
            ),
            503: error_response(
                "WEBHOOK_NOT_CONFIGURED: no webhook secret is set. (Or SERVICE_UNAVAILABLE, as on every "
                "endpoint, when a dependency is down.)"
            ),
        },
        parameters=[
            OpenApiParameter(
                SIGNATURE_HEADER,
                str,
                location=OpenApiParameter.HEADER,
                required=True,
                description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'> (docs/payments.md).",
            )
        ],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Apply a payment provider event. Verified before anything is read; idempotent on the event id."""
        raw_body = request.body  # the signature covers the exact bytes, so read them before parsing
        services.webhook_verify(raw_body=raw_body, signature_header=request.headers.get(SIGNATURE_HEADER, ""))
        event = services.webhook_parse(raw_body)
        envelope = validated(_WebhookEnvelopeSerializer, event)
        if envelope["type"] not in EVENT_TYPES:
            return Response({"result": "ignored", "payment_id": None})
        data = validated(WebhookDataSerializer, event.get("data"))
        outcome = services.payment_webhook_apply(
            event_id=envelope["id"],
            event_type=envelope["type"],
            session_id=data["session_id"],
            amount=data["amount"],
            currency=data["currency"],
            provider_payment_id=data["payment_id"],
        )
        return Response({"result": outcome.result, "payment_id": outcome.payment.pk if outcome.payment else None})
