"""Routes of the messaging app, included under ``/api/v1/``."""

from django.urls import path

from messaging import apis, attachment_apis

urlpatterns = [
    path("conversations/", apis.ConversationListApi.as_view(), name="conversation-list"),
    path("conversations/<uuid:conversation_id>/", apis.ConversationDetailApi.as_view(), name="conversation-detail"),
    path(
        "conversations/<uuid:conversation_id>/messages/",
        apis.ConversationMessageListApi.as_view(),
        name="conversation-messages",
    ),
    path("conversations/<uuid:conversation_id>/read/", apis.ConversationReadApi.as_view(), name="conversation-read"),
    path(
        "conversations/<uuid:conversation_id>/delivered/",
        apis.ConversationDeliveredApi.as_view(),
        name="conversation-delivered",
    ),
    path("messages/", apis.MessageSendApi.as_view(), name="message-send"),
    path("messages/<uuid:message_id>/", apis.MessageDeleteApi.as_view(), name="message-detail"),
    path("messages/<uuid:message_id>/read/", apis.MessageReadApi.as_view(), name="message-read"),
    path("attachments/", attachment_apis.AttachmentUploadApi.as_view(), name="attachment-upload"),
    path("attachments/<uuid:attachment_id>/", attachment_apis.AttachmentDetailApi.as_view(), name="attachment-detail"),
    path(
        "attachments/<uuid:attachment_id>/download/",
        attachment_apis.AttachmentDownloadApi.as_view(),
        name="attachment-download",
    ),
    path("contacts/", apis.ContactListApi.as_view(), name="contact-list"),
    path("contacts/<uuid:user_id>/", apis.ContactDetailApi.as_view(), name="contact-detail"),
]
