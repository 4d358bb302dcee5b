"""Call history, detail, statistics and quality-metric endpoints (docs/call-history.md).

Each view validates its input, calls one selector or service and serializes. Paths use the
``uuid`` converter so a path like ``calls/ice-servers/`` stays free for the call endpoints
joined after these.
"""

from typing import Any
from uuid import UUID

from django.urls import path
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from core.pagination import PageNumberPagination
from core.ratelimit import UserRateThrottle
from core.schema import error_codes
from core.validation import validated
from video_calls.models import Call, CallQualitySample
from video_calls.selectors import history as selectors
from video_calls.serializers_history import (
    CallDetailSerializer,
    CallHistoryRowSerializer,
    CallStatisticsSerializer,
    QualitySampleInputSerializer,
    QualitySampleSerializer,
    StatisticsQuerySerializer,
)
from video_calls.services.quality import quality_sample_record

_ERROR = {"$ref": "#/components/schemas/ErrorResponse"}


class QualitySampleThrottle(UserRateThrottle):
    """One sample per second per user per call (reference 000's limit, ``CALL_QUALITY_THROTTLE_RATE``),
    counted in the shared cache so every server process enforces the same budget. A client in two
    calls (or two participants of one call) each have their own budget."""

    scope = "call_quality"

    def ident(self, request: Request, view: APIView | None) -> str | None:
        user = super().ident(request, view)
        return None if user is None or view is None else f"{user}:{view.kwargs['call_id']}"


class CallHistoryListApi(ListAPIView):
    serializer_class = CallHistoryRowSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = selectors.CallHistoryFilter
    pagination_class = PageNumberPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Call.objects.none()
        return selectors.call_history_list(user=self.request.user)

    @extend_schema(
        tags=["call history"],
        summary="List call history",
        responses={200: CallHistoryRowSerializer(many=True)},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Calls you took part in or started (staff: all calls), newest first, with the other
        participants and a quality assessment per row."""
        return super().get(request, *args, **kwargs)


class CallStatisticsApi(APIView):
    @extend_schema(
        tags=["call history"],
        summary="Call statistics for a period",
        parameters=[StatisticsQuerySerializer],
        responses={200: CallStatisticsSerializer},
    )
    def get(self, request: Request) -> Response:
        """Totals by status, kind and media and the average duration of completed calls, over
        the last 7/30/90 days or whole UTC days from/to."""
        query = validated(StatisticsQuerySerializer, request.query_params)
        statistics = selectors.call_statistics(
            user=request.user,
            period=query.get("period"),
            date_from=query.get("date_from"),
            date_to=query.get("date_to"),
            own_only=query["scope"] == "mine",
        )
        return Response(CallStatisticsSerializer(statistics).data)


class CallDetailApi(APIView):
    @extend_schema(
        tags=["call history"],
        summary="Call detail",
        responses={200: CallDetailSerializer, **error_codes({404: ("CALL_NOT_FOUND",)})},
    )
    def get(self, request: Request, call_id: UUID) -> Response:
        """Lifecycle times, participants with their quality summaries, and the event timeline."""
        call = selectors.call_history_get(user=request.user, call_id=call_id)
        return Response(CallDetailSerializer(call).data)


class CallQualityApi(GenericAPIView):
    serializer_class = QualitySampleSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = selectors.QualitySampleFilter
    pagination_class = PageNumberPagination

    def get_throttles(self) -> list[BaseThrottle]:
        """Submissions have a limit of their own besides every endpoint's."""
        defaults = super().get_throttles()
        return [*defaults, QualitySampleThrottle()] if self.request.method == "POST" else defaults

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return CallQualitySample.objects.none()
        return selectors.quality_sample_list(user=self.request.user, call_id=self.kwargs["call_id"])

    @extend_schema(
        tags=["call quality"],
        summary="List a call's quality samples",
        responses={200: QualitySampleSerializer(many=True)},
    )
    def get(self, request: Request, call_id: UUID) -> Response:
        """Samples of a call you may see, oldest first; ``?participant=<user id>`` narrows to one."""
        samples = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(samples)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        tags=["call quality"],
        summary="Submit a quality sample",
        request=QualitySampleInputSerializer,
        responses={
            201: QualitySampleSerializer,
            409: OpenApiResponse(_ERROR, description="NOT_IN_CALL: you are not connected to this ongoing call."),
            **error_codes({404: ("CALL_NOT_FOUND",)}),
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """Record what your client measured just now; the other participants receive
        ``quality.recorded``. At most one per second per call."""
        metrics = validated(QualitySampleInputSerializer, request.data)
        sample = quality_sample_record(call_id=call_id, user=request.user, metrics=metrics)
        return Response(QualitySampleSerializer(sample).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("calls/history/", CallHistoryListApi.as_view(), name="call-history-list"),
    path("calls/statistics/", CallStatisticsApi.as_view(), name="call-history-statistics"),
    path("calls/<uuid:call_id>/", CallDetailApi.as_view(), name="call-history-detail"),
    path("calls/<uuid:call_id>/quality/", CallQualityApi.as_view(), name="call-quality"),
]
