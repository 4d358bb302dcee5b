"""Which requests are audited, and how each one is named in the trail.

Every route under ``/api/v1/`` is audited unless it is listed in ``EXEMPT_ROUTES`` (with the
reason it holds no health data): a new endpoint is audited from its first request, under its URL
name, until it is given a domain name in ``ROUTES``. The admin's model pages are audited as
``<app>.<model>`` (audit/middleware.py).

A spec names the record a URL addresses; the action follows from the method (``GET`` reads,
or lists when the answer is a page; ``POST`` creates without an id in the URL and updates with
one; ``PUT``/``PATCH`` update; ``DELETE`` deletes) unless ``actions`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.models import AuditAction


@dataclass(frozen=True)
class AuditSpec:
    object_type: str
    # The kind of the records a list answer shows (their ids go in ``record_ids``).
    record_type: str = ""
    # The URL keyword naming the record; by default the first one ending in ``_id``.
    id_kwarg: str | None = None
    actions: dict[str, str] = field(default_factory=dict)
    # False for a view that commits in a durable transaction of its own (an upload, whose
    # rollback would leave its file behind): its entry is inserted right after that commit.
    in_request_transaction: bool = True


# URL name -> spec. Names come from the domain; the rest of the audited routes use the URL name.
ROUTES: dict[str, AuditSpec] = {
    # Profiles
    "me": AuditSpec("profile"),
    "patient-list": AuditSpec("profile", record_type="profile"),
    "patient-detail": AuditSpec("profile"),
    # Consultation sessions
    "session-list": AuditSpec("session", record_type="session"),
    **{
        name: AuditSpec("session")
        for name in (
            "session-detail",
            "session-confirm",
            "session-cancel",
            "session-reschedule",
            "session-can-join",
            "session-mark-paid",
            "session-mark-refunded",
        )
    },
    "session-payments": AuditSpec("session", record_type="payment"),
    "session-room": AuditSpec("session"),
    # Calls
    "call-history-list": AuditSpec("call", record_type="call"),
    "call-history-statistics": AuditSpec("call_statistics"),
    "call-waiting-queue": AuditSpec("call", record_type="call"),
    "call-participants": AuditSpec("call", record_type="participant"),
    "call-quality": AuditSpec("call", record_type="quality_sample"),
    **{
        name: AuditSpec("call")
        for name in (
            "call-initiate",
            "call-group-create",
            "call-history-detail",
            "call-accept",
            "call-decline",
            "call-cancel",
            "call-hangup",
            "call-join",
            "call-leave",
            "call-end",
            "call-settings",
            "call-media",
            "call-invite",
            "call-invitation-decline",
            "call-admit",
            "call-send-back",
            "call-remove-participant",
            "call-waiting-status",
        )
    },
    # Messaging
    "conversation-list": AuditSpec("conversation", record_type="conversation"),
    "conversation-detail": AuditSpec("conversation"),
    "conversation-messages": AuditSpec("conversation", record_type="message"),
    "conversation-read": AuditSpec("conversation"),
    "conversation-delivered": AuditSpec("conversation"),
    "message-send": AuditSpec("message"),
    "message-detail": AuditSpec("message"),
    "message-read": AuditSpec("message"),
    "attachment-upload": AuditSpec("attachment", in_request_transaction=False),
    "attachment-detail": AuditSpec("attachment"),
    "attachment-download": AuditSpec("attachment", actions={"GET": AuditAction.DOWNLOAD, "HEAD": AuditAction.DOWNLOAD}),
    "contact-list": AuditSpec("contact", record_type="contact"),
    "contact-detail": AuditSpec("contact"),
    # The staff console (staff/): accounts and calls, as staff see them.
    "staff-user-list": AuditSpec("profile", record_type="profile"),
    "staff-user-detail": AuditSpec("profile"),
    "staff-user-suspend": AuditSpec("profile"),
    "staff-user-reactivate": AuditSpec("profile"),
    "staff-call-list": AuditSpec("call", record_type="call"),
    "staff-call-detail": AuditSpec("call"),
    "staff-call-end": AuditSpec("call"),
    "staff-call-participants": AuditSpec("call", record_type="participant"),
    "staff-call-participant-remove": AuditSpec("call"),
    "staff-dashboard": AuditSpec("clinic_statistics"),
    "staff-analytics": AuditSpec("clinic_statistics"),
    # The trail itself: reading it is an access like any other.
    "audit-entry-list": AuditSpec("audit_entry", record_type="audit_entry"),
    "audit-entry-export": AuditSpec("audit_entry", actions={"GET": AuditAction.EXPORT}),
}

# Routes under /api/v1/ that hold no health data, and why.
EXEMPT_ROUTES: dict[str, str] = {
    "auth-register": "credentials; answered before there is a user to audit",
    "auth-login": "credentials (failed sign-ins are throttled and counted by accounts/throttles.py)",
    "auth-token-refresh": "credentials",
    "auth-logout": "credentials",
    "auth-password-change": "credentials",
    "auth-password-forgot": "credentials",
    "auth-password-reset": "credentials",
    "auth-email-verify": "credentials",
    "auth-email-resend": "credentials",
    "auth-phone-send-code": "credentials",
    "auth-phone-verify": "credentials",
    "auth-phone-resend": "credentials",
    "auth-phone-confirm": "credentials",
    "doctor-list": "the public directory of doctors",
    "doctor-detail": "the public directory of doctors",
    "me-avatar": "a picture the user chose to show",
    "user-avatar": "a picture the user chose to show",
    "presence-me": "online status, not health data",
    "presence-online-doctors": "online status, not health data",
    "presence-user": "online status, not health data",
    "realtime-ticket": "a socket ticket; what the socket carries is audited where it is stored",
    "call-ice-servers": "TURN credentials, no patient",
    "payment-webhook": "the payment provider, not a user",
}

# Methods that read nothing and change nothing.
UNAUDITED_METHODS = frozenset({"OPTIONS"})


def spec_for_route(route_name: str) -> AuditSpec | None:
    """The spec of an ``/api/v1/`` route, or None when it is exempt."""
    if route_name in EXEMPT_ROUTES:
        return None
    return ROUTES.get(route_name) or AuditSpec(route_name)
