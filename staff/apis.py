"""The staff console's REST endpoints, under ``/api/v1/staff/``: thin views over
staff/selectors.py and staff/services.py. Clinic staff only: a signed-in patient or doctor gets
403 ``PERMISSION_DENIED`` (staff/permissions.py), an anonymous caller 401.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import PageNumberPagination
from core.schema import error_codes
from core.validation import validated
from staff import selectors, services
from staff.permissions import IsClinicStaff
from staff.serializers import (
    AnalyticsQuerySerializer,
    AnalyticsSerializer,
    DashboardSerializer,
    StaffCallQuerySerializer,
    StaffCallSerializer,
    StaffParticipantSerializer,
    StaffUserQuerySerializer,
    StaffUserSerializer,
    StaffUserUpdateSerializer,
)

TAGS = ["staff"]
PAGE_PARAMETERS = [OpenApiParameter("page", int), OpenApiParameter("page_size", int)]


class _StaffApi(APIView):
    permission_classes = [IsClinicStaff]
    pagination_class = PageNumberPagination  # lists are declared as pages in the schema

    def paginated(self, request: Request, queryset, serializer_class) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)


class DashboardApi(_StaffApi):
    @extend_schema(tags=TAGS, responses={200: DashboardSerializer})
    def get(self, request: Request) -> Response:
        """Calls active now, sessions today, no-shows this week, average call quality, users online."""
        return Response(DashboardSerializer(selectors.dashboard_figures()).data)


class AnalyticsApi(_StaffApi):
    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("start", str, required=True, description="First day (YYYY-MM-DD), clinic time."),
            OpenApiParameter("end", str, required=True, description="Last day, inclusive."),
            OpenApiParameter("granularity", str, enum=["day", "week", "month"], description="Default day."),
        ],
        responses={200: AnalyticsSerializer},
    )
    def get(self, request: Request) -> Response:
        """Calls, sessions, completion and no-show rates, average duration and new users by role, per period."""
        query = AnalyticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(AnalyticsSerializer(selectors.analytics(span=query.to_range())).data)


class UserListApi(_StaffApi):
    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("search", str, description="Words matched against names, email and phone."),
            OpenApiParameter("role", str, enum=["patient", "doctor", "staff"]),
            OpenApiParameter("status", str, enum=list(selectors.USER_STATUSES)),
            *PAGE_PARAMETERS,
        ],
        responses={200: StaffUserSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Every account, newest first. One query a page, whatever its size."""
        filters = validated(StaffUserQuerySerializer, request.query_params)
        return self.paginated(request, selectors.staff_user_list(**filters), StaffUserSerializer)


class UserDetailApi(_StaffApi):
    @extend_schema(tags=TAGS, responses={200: StaffUserSerializer, **error_codes({404: ("USER_NOT_FOUND",)})})
    def get(self, request: Request, user_id) -> Response:
        return Response(StaffUserSerializer(selectors.staff_user_get(user_id=user_id)).data)

    @extend_schema(
        tags=TAGS,
        request=StaffUserUpdateSerializer,
        responses={200: StaffUserSerializer, **error_codes({404: ("USER_NOT_FOUND",), 409: ("USER_DELETED",)})},
    )
    def patch(self, request: Request, user_id) -> Response:
        """Names, display name, doctor verification."""
        user = selectors.staff_user_get(user_id=user_id)
        changes = validated(StaffUserUpdateSerializer, request.data)
        return Response(StaffUserSerializer(services.staff_user_update(user=user, data=changes)).data)

    @extend_schema(
        tags=TAGS,
        responses={204: None, **error_codes({404: ("USER_NOT_FOUND",), 409: ("CANNOT_ACT_ON_SELF",)})},
    )
    def delete(self, request: Request, user_id) -> Response:
        """Deactivate and anonymize; the clinical record is kept (docs/operations.md#staff-console)."""
        services.staff_user_delete(actor=request.user, user=selectors.staff_user_get(user_id=user_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserSuspendApi(_StaffApi):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: StaffUserSerializer,
            **error_codes({404: ("USER_NOT_FOUND",), 409: ("CANNOT_ACT_ON_SELF", "USER_DELETED")}),
        },
    )
    def post(self, request: Request, user_id) -> Response:
        """Block sign-in, revoke every token, close every socket of the user."""
        user = services.staff_user_suspend(actor=request.user, user=selectors.staff_user_get(user_id=user_id))
        return Response(StaffUserSerializer(user).data)


class UserReactivateApi(_StaffApi):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={200: StaffUserSerializer, **error_codes({404: ("USER_NOT_FOUND",), 409: ("USER_DELETED",)})},
    )
    def post(self, request: Request, user_id) -> Response:
        """Allow sign-in again (tokens revoked by the suspension stay revoked)."""
        user = services.staff_user_reactivate(user=selectors.staff_user_get(user_id=user_id))
        return Response(StaffUserSerializer(user).data)


class CallListApi(_StaffApi):
    @extend_schema(
        tags=TAGS,
        parameters=[
            OpenApiParameter("status", str, description="A call status, or active for any live one."),
            OpenApiParameter("kind", str, enum=["session", "ad_hoc", "group"]),
            OpenApiParameter("media", str, enum=["video", "voice"]),
            *PAGE_PARAMETERS,
        ],
        responses={200: StaffCallSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Every call, newest first, with participants' names. Three queries a page, whatever its size."""
        filters = validated(StaffCallQuerySerializer, request.query_params)
        return self.paginated(request, selectors.staff_call_list(**filters), StaffCallSerializer)


class CallDetailApi(_StaffApi):
    @extend_schema(tags=TAGS, responses={200: StaffCallSerializer, **error_codes({404: ("CALL_NOT_FOUND",)})})
    def get(self, request: Request, call_id) -> Response:
        return Response(StaffCallSerializer(selectors.staff_call_get(call_id=call_id)).data)


class CallParticipantListApi(_StaffApi):
    @extend_schema(
        tags=TAGS,
        parameters=PAGE_PARAMETERS,
        responses={200: StaffParticipantSerializer(many=True), **error_codes({404: ("CALL_NOT_FOUND",)})},
    )
    def get(self, request: Request, call_id) -> Response:
        call = selectors.staff_call_get(call_id=call_id)
        return self.paginated(request, selectors.staff_call_participants(call=call), StaffParticipantSerializer)


class CallEndApi(_StaffApi):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: StaffCallSerializer,
            **error_codes({404: ("CALL_NOT_FOUND",), 409: ("INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE")}),
        },
    )
    def post(self, request: Request, call_id) -> Response:
        """End any call for everyone (``end_reason`` ``staff_ended``)."""
        call = services.staff_call_end(actor=request.user, call=selectors.staff_call_get(call_id=call_id))
        return Response(StaffCallSerializer(selectors.staff_call_get(call_id=call.pk)).data)


class CallParticipantRemoveApi(_StaffApi):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: StaffParticipantSerializer,
            **error_codes(
                {
                    404: ("CALL_NOT_FOUND", "PARTICIPANT_NOT_FOUND"),
                    409: ("INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE", "CANNOT_REMOVE_SELF"),
                }
            ),
        },
    )
    def post(self, request: Request, call_id, user_id) -> Response:
        """Take someone out of a live room: their socket is told, the others see them leave."""
        call = selectors.staff_call_get(call_id=call_id)
        participant = services.staff_participant_remove(actor=request.user, call=call, user_id=user_id)
        return Response(StaffParticipantSerializer(participant).data)
