"""Room, join, ad-hoc call, guest, waiting-room and media endpoints (docs/calls.md).

Each view validates its input, looks the call up through ``call_get_for_user`` (so a call the
asker may not see is 404 ``CALL_NOT_FOUND``), calls one service and serializes the result.
"""

from uuid import UUID

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import PageNumberPagination
from core.schema import CONFLICT, error_codes
from core.validation import validated
from video_calls.models import Call
from video_calls.selectors.calls import call_get_for_user, call_with_participants
from video_calls.selectors.rooms import participant_list_for_call, waiting_queue_for_user, waiting_status_for_user
from video_calls.serializers import (
    END_ERRORS,
    GROUP_CREATE_ERRORS,
    JOIN_ERRORS,
    SETTINGS_UPDATE_ERRORS,
    CallDeclineSerializer,
    CallInitiateSerializer,
    CallJoinSerializer,
    CallParticipantSerializer,
    CallSerializer,
    GroupConsultationCreateSerializer,
    IceConfigurationSerializer,
    InviteSerializer,
    JoinResponseSerializer,
    MediaUpdateSerializer,
    RoomSettingsSerializer,
    WaitingQueueEntrySerializer,
    WaitingQueuePageSerializer,
    WaitingStatusSerializer,
    join_payload,
    waiting_status_payload,
)
from video_calls.serializers_adhoc import CallPlacedSerializer, placed_call_payload
from video_calls.services import adhoc, guests, media, rooms, waiting_room
from video_calls.services.access import JoinResult
from video_calls.services.credentials import ice_configuration

TAGS = ["calls"]


def _call_for(request: Request, call_id: UUID) -> Call:
    return call_get_for_user(user=request.user, call_id=call_id)


def _call_body(call: Call) -> dict:
    """The call as stored after the action."""
    return CallSerializer(call_with_participants(call_id=call.pk)).data


def _join_response(result: JoinResult) -> Response:
    code = status.HTTP_202_ACCEPTED if result.credentials is None else status.HTTP_200_OK
    return Response(join_payload(result, call_with_participants(call_id=result.call.pk)), status=code)


class IceServersApi(APIView):
    @extend_schema(tags=TAGS, request=None, responses={200: IceConfigurationSerializer})
    def get(self, request: Request) -> Response:
        """STUN URLs and TURN URLs with a credential of this user that expires after
        CALL_TURN_TTL_SECONDS. The join endpoint returns credentials bound to the session window."""
        ice = ice_configuration(user_id=request.user.pk)
        return Response(IceConfigurationSerializer({"ice_servers": ice.ice_servers, "expires_at": ice.expires_at}).data)


class SessionRoomApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallSerializer,
            **error_codes({404: ("ROOM_NOT_FOUND", "SESSION_NOT_FOUND")}),
        },
    )
    def get(self, request: Request, session_id: UUID) -> Response:
        """The session's room, if it was created."""
        return Response(_call_body(rooms.session_room_get(user=request.user, session_id=session_id)))

    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallSerializer,
            201: CallSerializer,
            **error_codes({404: ("SESSION_NOT_FOUND",), 409: ("SESSION_CANCELLED",)}),
        },
    )
    def post(self, request: Request, session_id: UUID) -> Response:
        """Get or create the session's one room (201 when created). Joining is separate."""
        room, created = rooms.session_room_get_or_create(user=request.user, session_id=session_id)
        return Response(_call_body(room), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CallInitiateApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=CallInitiateSerializer,
        responses={
            201: CallPlacedSerializer,
            **error_codes(
                {
                    400: ("CALLEE_NOT_IN_SESSION", "CANNOT_CALL_SELF"),
                    404: ("SESSION_NOT_FOUND", "USER_NOT_FOUND"),
                    409: ("CALLEE_BUSY", "CALLER_BUSY"),
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Ring someone (ad-hoc call). It rings for CALL_RING_TIMEOUT_SECONDS, then is missed. The
        answer carries the caller's ICE servers (``ice_servers``, ``ice_expires_at``)."""
        placed = adhoc.call_place(caller=request.user, **validated(CallInitiateSerializer, request.data))
        body = placed_call_payload(placed, call_with_participants(call_id=placed.call.pk))
        return Response(body, status=status.HTTP_201_CREATED)


class GroupConsultationCreateApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=GroupConsultationCreateSerializer,
        responses={
            201: CallSerializer,
            409: CONFLICT,
            **GROUP_CREATE_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        """Doctors and staff: a group consultation with several invitees (people the creator may
        reach); the creator hosts it."""
        data = validated(GroupConsultationCreateSerializer, request.data)
        call = guests.group_consultation_create(user=request.user, **data)
        return Response(_call_body(call), status=status.HTTP_201_CREATED)


class CallAcceptApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: JoinResponseSerializer,
            **error_codes(
                {
                    403: ("NOT_CALLEE", "NOT_PARTICIPANT"),
                    404: ("CALL_NOT_FOUND", "NOT_FOUND"),
                    409: ("INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE"),
                }
            ),
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """The callee answers a ringing call and gets its media credentials."""
        return _join_response(adhoc.call_accept(call=_call_for(request, call_id), user=request.user))


class CallDeclineApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=CallDeclineSerializer,
        responses={
            200: CallSerializer,
            **error_codes(
                {
                    400: ("VALIDATION_ERROR",),
                    403: ("NOT_CALLEE", "NOT_PARTICIPANT"),
                    404: ("CALL_NOT_FOUND",),
                    409: ("INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE"),
                }
            ),
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """The callee refuses a ringing call, as ``declined`` or ``busy``."""
        data = validated(CallDeclineSerializer, request.data)
        return Response(_call_body(adhoc.call_decline(call=_call_for(request, call_id), user=request.user, **data)))


class CallCancelApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallSerializer,
            **error_codes(
                {403: ("NOT_CALLER", "NOT_PARTICIPANT"), 404: ("CALL_NOT_FOUND",), 409: ("INVALID_CALL_STATE",)}
            ),
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """The caller stops ringing."""
        return Response(_call_body(adhoc.call_cancel(call=_call_for(request, call_id), user=request.user)))


class CallHangupApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallSerializer,
            **error_codes(
                {
                    400: ("VALIDATION_ERROR",),
                    403: ("NOT_CALLEE", "NOT_CALLER", "NOT_PARTICIPANT"),
                    404: ("CALL_NOT_FOUND",),
                    409: ("INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE"),
                }
            ),
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """Either side ends an ad-hoc call (a cancel or decline while it rings)."""
        return Response(_call_body(adhoc.call_hangup(call=_call_for(request, call_id), user=request.user)))


class CallJoinApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=CallJoinSerializer,
        responses={
            200: JoinResponseSerializer,
            202: JoinResponseSerializer,
            **JOIN_ERRORS,
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """Join a room: 200 with media credentials, or 202 while waiting to be admitted (no
        credentials). Joining after an invitation is how an invitee accepts it. The display name
        and media state default to the user's own; a recorded call needs ``recording_consent``."""
        data = validated(CallJoinSerializer, request.data)
        return _join_response(rooms.call_join(call=_call_for(request, call_id), user=request.user, **data))


class CallLeaveApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallSerializer,
            **error_codes(
                {
                    400: ("VALIDATION_ERROR",),
                    403: ("NOT_PARTICIPANT",),
                    404: ("CALL_NOT_FOUND",),
                    409: ("INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE"),
                }
            ),
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """Leave the call or the waiting room. Leaving a 1:1 ad-hoc call ends it."""
        return Response(_call_body(rooms.call_leave(call=_call_for(request, call_id), user=request.user)))


class CallEndApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallSerializer,
            **END_ERRORS,
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """End the call for everyone (the host or staff; either side of an ad-hoc call, or staff)."""
        return Response(_call_body(rooms.call_end(call=_call_for(request, call_id), user=request.user)))


class CallSettingsApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=RoomSettingsSerializer,
        responses={
            200: CallSerializer,
            **SETTINGS_UPDATE_ERRORS,
        },
    )
    def patch(self, request: Request, call_id: UUID) -> Response:
        """Host (or staff): change the room's details (title, description, planned times) and
        settings; once the call started, the start, ``auto_recording`` and turning recording on
        are refused (409)."""
        data = validated(RoomSettingsSerializer, request.data)
        return Response(
            _call_body(rooms.call_settings_update(call=_call_for(request, call_id), user=request.user, **data))
        )


class MediaStateApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=MediaUpdateSerializer,
        responses={
            200: CallParticipantSerializer,
            **error_codes(
                {
                    400: ("VOICE_CALL",),
                    403: ("NOT_PARTICIPANT", "SCREEN_SHARE_DISABLED"),
                    404: ("CALL_NOT_FOUND",),
                    409: ("INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE"),
                }
            ),
        },
    )
    def patch(self, request: Request, call_id: UUID) -> Response:
        """Change your microphone, camera or screen-share state; the room is told."""
        data = validated(MediaUpdateSerializer, request.data)
        participant = media.media_update(call=_call_for(request, call_id), user=request.user, **data)
        return Response(CallParticipantSerializer(participant).data)


class ParticipantListApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={200: CallParticipantSerializer(many=True), **error_codes({404: ("CALL_NOT_FOUND",)})},
    )
    def get(self, request: Request, call_id: UUID) -> Response:
        """Everyone on the call's list with their status and media state."""
        call = _call_for(request, call_id)
        participants = participant_list_for_call(call=call)
        return Response(CallParticipantSerializer(participants, many=True, context={"host_id": call.host_id}).data)


class InvitationCreateApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=InviteSerializer,
        responses={
            201: CallParticipantSerializer,
            **error_codes(
                {
                    403: ("NOT_HOST",),
                    404: ("CALL_NOT_FOUND", "USER_NOT_FOUND"),
                    409: ("ALREADY_PARTICIPANT", "INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE", "ROOM_FULL"),
                }
            ),
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """Host-only: invite someone into a session room or group consultation."""
        data = validated(InviteSerializer, request.data)
        participant = guests.participant_invite(
            call=_call_for(request, call_id), user=request.user, invitee_id=data["user_id"]
        )
        return Response(CallParticipantSerializer(participant).data, status=status.HTTP_201_CREATED)


class InvitationDeclineApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallParticipantSerializer,
            **error_codes({403: ("NOT_PARTICIPANT",), 404: ("CALL_NOT_FOUND",), 409: ("INVALID_PARTICIPANT_STATE",)}),
        },
    )
    def post(self, request: Request, call_id: UUID) -> Response:
        """The invitee declines. (To accept, join the call.)"""
        participant = guests.invitation_decline(call=_call_for(request, call_id), user=request.user)
        return Response(CallParticipantSerializer(participant).data)


class ParticipantAdmitApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallParticipantSerializer,
            **error_codes(
                {
                    403: ("NOT_HOST",),
                    404: ("CALL_NOT_FOUND", "PARTICIPANT_NOT_FOUND"),
                    409: ("INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE"),
                }
            ),
        },
    )
    def post(self, request: Request, call_id: UUID, user_id: UUID) -> Response:
        """Host-only: admit a waiting participant."""
        participant = waiting_room.participant_admit(
            call=_call_for(request, call_id), user=request.user, participant_user_id=user_id
        )
        return Response(CallParticipantSerializer(participant).data)


class ParticipantSendBackApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallParticipantSerializer,
            **error_codes(
                {
                    403: ("NOT_HOST",),
                    404: ("CALL_NOT_FOUND", "PARTICIPANT_NOT_FOUND"),
                    409: ("CANNOT_SEND_BACK", "INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE"),
                }
            ),
        },
    )
    def post(self, request: Request, call_id: UUID, user_id: UUID) -> Response:
        """Host-only: send a participant back to the waiting room."""
        participant = waiting_room.participant_send_back(
            call=_call_for(request, call_id), user=request.user, participant_user_id=user_id
        )
        return Response(CallParticipantSerializer(participant).data)


class ParticipantRemoveApi(APIView):
    @extend_schema(
        tags=TAGS,
        request=None,
        responses={
            200: CallParticipantSerializer,
            **error_codes(
                {
                    403: ("NOT_HOST",),
                    404: ("CALL_NOT_FOUND", "PARTICIPANT_NOT_FOUND"),
                    409: ("CANNOT_REMOVE_SELF", "INVALID_CALL_STATE", "INVALID_PARTICIPANT_STATE"),
                }
            ),
        },
    )
    def post(self, request: Request, call_id: UUID, user_id: UUID) -> Response:
        """Host-only: remove a participant; they cannot rejoin."""
        participant = guests.participant_remove(
            call=_call_for(request, call_id), user=request.user, participant_user_id=user_id
        )
        return Response(CallParticipantSerializer(participant).data)


class WaitingQueueApi(APIView):
    pagination_class = PageNumberPagination

    @extend_schema(
        tags=TAGS,
        operation_id="calls_waiting_queue",
        request=None,
        responses={200: WaitingQueuePageSerializer, **error_codes({403: ("CLINICIANS_ONLY",)})},
    )
    def get(self, request: Request) -> Response:
        """Doctors and staff: who waits in the rooms you run, since when, for which session
        (longest-waiting first, paginated)."""
        queue = waiting_queue_for_user(user=request.user)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queue, request, view=self)
        return paginator.get_paginated_response(WaitingQueueEntrySerializer(page, many=True).data)


class WaitingStatusApi(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="calls_waiting_status",
        request=None,
        responses={200: WaitingStatusSerializer, **error_codes({403: ("NOT_PARTICIPANT",), 404: ("CALL_NOT_FOUND",)})},
    )
    def get(self, request: Request, call_id: UUID) -> Response:
        """A waiting participant's place in the queue and whether the host is in this call,
        busy in another call, or away."""
        result = waiting_status_for_user(call=_call_for(request, call_id), user=request.user)
        return Response(waiting_status_payload(result))


urlpatterns = [
    path("calls/ice-servers/", IceServersApi.as_view(), name="call-ice-servers"),
    path("calls/initiate/", CallInitiateApi.as_view(), name="call-initiate"),
    path("calls/group/", GroupConsultationCreateApi.as_view(), name="call-group-create"),
    path("calls/waiting-room/", WaitingQueueApi.as_view(), name="call-waiting-queue"),
    path("sessions/<uuid:session_id>/room/", SessionRoomApi.as_view(), name="session-room"),
    path("calls/<uuid:call_id>/accept/", CallAcceptApi.as_view(), name="call-accept"),
    path("calls/<uuid:call_id>/decline/", CallDeclineApi.as_view(), name="call-decline"),
    path("calls/<uuid:call_id>/cancel/", CallCancelApi.as_view(), name="call-cancel"),
    path("calls/<uuid:call_id>/hangup/", CallHangupApi.as_view(), name="call-hangup"),
    path("calls/<uuid:call_id>/join/", CallJoinApi.as_view(), name="call-join"),
    path("calls/<uuid:call_id>/leave/", CallLeaveApi.as_view(), name="call-leave"),
    path("calls/<uuid:call_id>/end/", CallEndApi.as_view(), name="call-end"),
    path("calls/<uuid:call_id>/settings/", CallSettingsApi.as_view(), name="call-settings"),
    path("calls/<uuid:call_id>/media/", MediaStateApi.as_view(), name="call-media"),
    path("calls/<uuid:call_id>/participants/", ParticipantListApi.as_view(), name="call-participants"),
    path("calls/<uuid:call_id>/invitations/", InvitationCreateApi.as_view(), name="call-invite"),
    path("calls/<uuid:call_id>/invitation/decline/", InvitationDeclineApi.as_view(), name="call-invitation-decline"),
    path("calls/<uuid:call_id>/participants/<uuid:user_id>/admit/", ParticipantAdmitApi.as_view(), name="call-admit"),
    path(
        "calls/<uuid:call_id>/participants/<uuid:user_id>/send-back/",
        ParticipantSendBackApi.as_view(),
        name="call-send-back",
    ),
    path(
        "calls/<uuid:call_id>/participants/<uuid:user_id>/remove/",
        ParticipantRemoveApi.as_view(),
        name="call-remove-participant",
    ),
    path("calls/<uuid:call_id>/waiting-room/", WaitingStatusApi.as_view(), name="call-waiting-status"),
]
