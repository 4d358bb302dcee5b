"""Messaging endpoints: conversations, their messages, sending, receipts, deleting, contacts.

Every lookup goes through messaging.selectors, scoped to who asks: someone else's conversation
or message, or a private message that is not yours, answers 404.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import PageNumberPagination
from core.ratelimit import DEFAULT_THROTTLES
from core.schema import error_codes
from messaging import selectors
from messaging.serializers import (
    ContactAddSerializer,
    ContactSerializer,
    ConversationOpenSerializer,
    ConversationSerializer,
    MarkResultSerializer,
    MessageRefSerializer,
    MessageSendSerializer,
    MessageSerializer,
)
from messaging.services.contacts import contact_add, contact_remove
from messaging.services.conversations import conversation_call_open, conversation_direct_open
from messaging.services.messages import message_delete, message_send
from messaging.services.receipts import message_mark_read, messages_mark_delivered, messages_mark_read
from messaging.throttles import MessageSendThrottle

PAGE_PARAMETERS = [OpenApiParameter("page", int), OpenApiParameter("page_size", int)]


def _conversation_answer(request: Request, conversation_id, status_code: int = status.HTTP_200_OK) -> Response:
    conversation = selectors.conversation_get_for_user(user=request.user, conversation_id=conversation_id)
    context = {"viewer": request.user, "last_messages": selectors.last_messages_for([conversation])}
    return Response(ConversationSerializer(conversation, context=context).data, status=status_code)


class ConversationListApi(APIView):
    pagination_class = PageNumberPagination

    @extend_schema(tags=["messaging"], parameters=PAGE_PARAMETERS, responses={200: ConversationSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """My conversations, the most recent activity first, with my unread count, the last
        message I may see and the other members. The same number of queries for any page size."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.conversation_list_for_user(user=request.user), request, view=self)
        context = {"viewer": request.user, "last_messages": selectors.last_messages_for(page)}
        return paginator.get_paginated_response(ConversationSerializer(page, many=True, context=context).data)

    @extend_schema(
        tags=["messaging"],
        request=ConversationOpenSerializer,
        responses={
            200: ConversationSerializer,
            201: ConversationSerializer,
            **error_codes(
                {
                    400: ("CANNOT_MESSAGE_SELF",),
                    403: ("CHAT_DISABLED", "NOT_PARTICIPANT"),
                    404: ("CALL_NOT_FOUND", "CONVERSATION_NOT_FOUND", "USER_NOT_FOUND"),
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Open the direct conversation with ``user_id`` (someone I may message), or the chat of
        the call ``call_id``: 201 when created, 200 when it existed."""
        serializer = ConversationOpenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "user_id" in data:
            conversation, created = conversation_direct_open(user=request.user, other_id=data["user_id"])
        else:
            conversation, created = conversation_call_open(user=request.user, call_id=data["call_id"])
        return _conversation_answer(
            request, conversation.pk, status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class ConversationDetailApi(APIView):
    @extend_schema(
        tags=["messaging"],
        responses={200: ConversationSerializer, **error_codes({404: ("CONVERSATION_NOT_FOUND",)})},
    )
    def get(self, request: Request, conversation_id) -> Response:
        return _conversation_answer(request, conversation_id)


class MessageListQuerySerializer(serializers.Serializer):
    after = serializers.UUIDField(required=False, help_text="Only messages after this one, oldest first.")
    since = serializers.DateTimeField(required=False, help_text="Only messages sent after this time, oldest first.")


class ConversationMessageListApi(APIView):
    pagination_class = PageNumberPagination

    @extend_schema(
        tags=["messaging"],
        parameters=[*PAGE_PARAMETERS, MessageListQuerySerializer],
        responses={
            200: MessageSerializer(many=True),
            **error_codes({404: ("CONVERSATION_NOT_FOUND", "MESSAGE_NOT_FOUND")}),
        },
    )
    def get(self, request: Request, conversation_id) -> Response:
        """The messages I may see, newest first. To catch up (after a reconnect), ask with
        ``after`` (the last message I have) or ``since``: then oldest first, page by page."""
        query = MessageListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        conversation = selectors.conversation_member_get(
            user=request.user, conversation_id=conversation_id
        ).conversation
        after = query.validated_data.get("after")
        if after is not None:
            after = selectors.message_get_for_user(user=request.user, message_id=after, conversation=conversation)
        messages = selectors.message_list_for_user(
            user=request.user, conversation=conversation, after=after, since=query.validated_data.get("since")
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(messages, request, view=self)
        return paginator.get_paginated_response(MessageSerializer(page, many=True).data)


class MessageSendApi(APIView):
    throttle_classes = [*DEFAULT_THROTTLES, MessageSendThrottle]

    @extend_schema(
        tags=["messaging"],
        request=MessageSendSerializer,
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(
                MessageSerializer, description="A retry: the message stored with this client_message_id."
            ),
            **error_codes(
                {
                    400: ("ATTACHMENT_MISMATCH", "CANNOT_MESSAGE_SELF", "INVALID_RECIPIENT"),
                    403: ("CHAT_DISABLED", "MESSAGING_NOT_ALLOWED", "NOT_PARTICIPANT"),
                    404: ("ATTACHMENT_NOT_FOUND", "CALL_NOT_FOUND", "CONVERSATION_NOT_FOUND", "USER_NOT_FOUND"),
                    409: ("ATTACHMENT_ALREADY_SENT", "CLIENT_MESSAGE_ID_REUSED"),
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Send a message: to a conversation, to someone (the direct conversation is created with
        the first message) or to a call's chat. Stored before anyone is told."""
        serializer = MessageSendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = message_send(sender=request.user, **serializer.validated_data)
        return Response(result.payload, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class MessageDeleteApi(APIView):
    @extend_schema(
        tags=["messaging"],
        responses={
            204: None,
            **error_codes({403: ("NOT_MESSAGE_SENDER",), 404: ("MESSAGE_NOT_FOUND",), 409: ("DELETE_WINDOW_PASSED",)}),
        },
    )
    def delete(self, request: Request, message_id) -> Response:
        """Delete my own message within the delete window: its body is erased, a tombstone stays."""
        message_delete(user=request.user, message_id=message_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageReadApi(APIView):
    @extend_schema(
        tags=["messaging"],
        request=None,
        responses={200: MarkResultSerializer, **error_codes({404: ("CONVERSATION_NOT_FOUND", "MESSAGE_NOT_FOUND")})},
    )
    def post(self, request: Request, message_id) -> Response:
        """Mark one message read."""
        return Response(MarkResultSerializer(message_mark_read(user=request.user, message_id=message_id)).data)


class ConversationReadApi(APIView):
    @extend_schema(
        tags=["messaging"],
        request=MessageRefSerializer,
        responses={200: MarkResultSerializer, **error_codes({404: ("CONVERSATION_NOT_FOUND", "MESSAGE_NOT_FOUND")})},
    )
    def post(self, request: Request, conversation_id) -> Response:
        """Mark everything up to ``message_id`` read (one statement, whatever the count)."""
        serializer = MessageRefSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = messages_mark_read(
            user=request.user, conversation_id=conversation_id, message_id=serializer.validated_data["message_id"]
        )
        return Response(MarkResultSerializer(result).data)


class ConversationDeliveredApi(APIView):
    @extend_schema(
        tags=["messaging"],
        request=MessageRefSerializer,
        responses={200: MarkResultSerializer, **error_codes({404: ("CONVERSATION_NOT_FOUND", "MESSAGE_NOT_FOUND")})},
    )
    def post(self, request: Request, conversation_id) -> Response:
        """Mark everything up to ``message_id`` delivered (a client that fetched them over REST)."""
        serializer = MessageRefSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = messages_mark_delivered(
            user=request.user, conversation_id=conversation_id, message_id=serializer.validated_data["message_id"]
        )
        return Response(MarkResultSerializer(result).data)


def _contact_answer(request: Request, user_id, status_code: int) -> Response:
    contact = selectors.contact_list_for_user(user=request.user).get(pk=user_id)
    return Response(ContactSerializer(contact).data, status=status_code)


class ContactListApi(APIView):
    pagination_class = PageNumberPagination

    @extend_schema(tags=["messaging"], parameters=PAGE_PARAMETERS, responses={200: ContactSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """The people I may message and call: my care team (from sessions) and those I added."""
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.contact_list_for_user(user=request.user), request, view=self)
        return paginator.get_paginated_response(ContactSerializer(page, many=True).data)

    @extend_schema(
        tags=["messaging"],
        request=ContactAddSerializer,
        responses={
            201: ContactSerializer,
            200: ContactSerializer,
            **error_codes({400: ("CANNOT_ADD_SELF",), 404: ("USER_NOT_FOUND",)}),
        },
    )
    def post(self, request: Request) -> Response:
        """Add a contact among those I may add (a patient: verified doctors; a doctor: their
        patients and other doctors; staff: anyone): 201, or 200 if already added."""
        serializer = ContactAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact, created = contact_add(owner=request.user, user_id=serializer.validated_data["user_id"])
        return _contact_answer(request, contact.contact_id, status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ContactDetailApi(APIView):
    @extend_schema(tags=["messaging"], responses={204: None, **error_codes({404: ("CONTACT_NOT_FOUND",)})})
    def delete(self, request: Request, user_id) -> Response:
        """Remove an added contact (the care team stays: it comes from sessions)."""
        contact_remove(owner=request.user, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
