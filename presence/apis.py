"""Presence endpoints: my status, someone's presence (same privacy rule as the socket), the
doctors available now, and who is online by role."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import PageNumberPagination
from core.schema import error_codes
from core.validation import validated
from presence import selectors, services
from presence.serializers import (
    OnlineDoctorSerializer,
    OnlineUserSerializer,
    OnlineUsersQuerySerializer,
    PresenceSerializer,
    PresenceUpdateSerializer,
)


class MyPresenceApi(APIView):
    @extend_schema(
        tags=["presence"],
        responses={
            200: PresenceSerializer,
            **error_codes({404: ("USER_NOT_FOUND",)}),
            **error_codes({400: ("VALIDATION_ERROR",)}),
        },
    )
    def get(self, request: Request) -> Response:
        return Response(
            PresenceSerializer(selectors.presence_get_for_user(viewer=request.user, user_id=request.user.pk)).data
        )

    @extend_schema(tags=["presence"], request=PresenceUpdateSerializer, responses={200: PresenceSerializer})
    def put(self, request: Request) -> Response:
        """Choose online, away or do-not-disturb. Busy is set by being in a call, offline by
        having no connection."""
        serializer = PresenceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        presence = services.presence_set_status(user=request.user, status=serializer.validated_data["status"])
        return Response(PresenceSerializer(presence).data)


class UserPresenceApi(APIView):
    @extend_schema(tags=["presence"], responses={200: PresenceSerializer, **error_codes({404: ("USER_NOT_FOUND",)})})
    def get(self, request: Request, user_id) -> Response:
        return Response(PresenceSerializer(selectors.presence_get_for_user(viewer=request.user, user_id=user_id)).data)


class OnlineUserListApi(APIView):
    pagination_class = PageNumberPagination

    @extend_schema(
        tags=["presence"],
        parameters=[OnlineUsersQuerySerializer, OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: OnlineUserSerializer(many=True), **error_codes({403: ("PERMISSION_DENIED",)})},
    )
    def get(self, request: Request) -> Response:
        """Connected users you may see, optionally of one ``role``: staff see every role, a doctor
        their patients and verified doctors, a patient verified doctors (403 for a role you may
        not list)."""
        query = validated(OnlineUsersQuerySerializer, request.query_params)
        online = selectors.online_user_list(viewer=request.user, role=query.get("role"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(online, request, view=self)
        return paginator.get_paginated_response(OnlineUserSerializer(page, many=True).data)


class OnlineDoctorListApi(APIView):
    pagination_class = PageNumberPagination  # also how drf-spectacular knows the answer is a page

    @extend_schema(
        tags=["presence"],
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: OnlineDoctorSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Verified doctors connected now, with their status."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.online_doctor_list(viewer=request.user), request, view=self)
        return paginator.get_paginated_response(OnlineDoctorSerializer(page, many=True).data)
