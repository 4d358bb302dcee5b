"""Routes of the sessions app, included under ``/api/v1/``."""

from django.urls import path

from sessions import apis

urlpatterns = [
    path("sessions/", apis.SessionListCreateApi.as_view(), name="session-list"),
    path("sessions/<uuid:session_id>/", apis.SessionDetailApi.as_view(), name="session-detail"),
    path("sessions/<uuid:session_id>/confirm/", apis.SessionConfirmApi.as_view(), name="session-confirm"),
    path("sessions/<uuid:session_id>/cancel/", apis.SessionCancelApi.as_view(), name="session-cancel"),
    path("sessions/<uuid:session_id>/reschedule/", apis.SessionRescheduleApi.as_view(), name="session-reschedule"),
    path("sessions/<uuid:session_id>/can-join/", apis.SessionCanJoinApi.as_view(), name="session-can-join"),
    path("sessions/<uuid:session_id>/mark-paid/", apis.SessionMarkPaidApi.as_view(), name="session-mark-paid"),
    path(
        "sessions/<uuid:session_id>/mark-refunded/",
        apis.SessionMarkRefundedApi.as_view(),
        name="session-mark-refunded",
    ),
    path("sessions/<uuid:session_id>/payments/", apis.SessionPaymentListApi.as_view(), name="session-payments"),
    path("payments/webhook/", apis.PaymentWebhookApi.as_view(), name="payment-webhook"),
]
