"""Payments: staff marking a session paid or refunded, and the provider webhook.

Every attempt is a ``Payment`` row; the session's ``payment_status`` summarises them and changes
only by conditional update. The webhook contract (headers, signature, payload, answers) is in
docs/payments.md.
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from accounts.models import User
from core.exceptions import ApplicationError, Conflict, InvalidInput, NotFound, PermissionDenied
from core.parsers import json_loads_limited
from sessions.models import Payment, PaymentKind, PaymentSource, PaymentStatus, Session, SessionStatus
from sessions.services.booking import ensure_participant_or_staff
from sessions.services.common import (
    INVALID_PAYMENT_STATE,
    INVALID_SESSION_STATE,
    conditional_update,
    notify_participants,
)

SIGNATURE_HEADER = "X-Payment-Signature"
SIGNATURE_VERSION = "v1"

EVENT_SUCCEEDED = "payment.succeeded"
EVENT_FAILED = "payment.failed"
EVENT_REFUNDED = "payment.refunded"
EVENT_TYPES = (EVENT_SUCCEEDED, EVENT_FAILED, EVENT_REFUNDED)


class WebhookNotConfigured(ApplicationError):
    code = "WEBHOOK_NOT_CONFIGURED"
    status = 503
    default_message = "Payment webhooks are not configured on this server."


class WebhookSignatureInvalid(ApplicationError):
    code = "WEBHOOK_SIGNATURE_INVALID"
    status = 400
    default_message = "The webhook signature is missing or does not match."


class WebhookTimestampStale(ApplicationError):
    code = "WEBHOOK_TIMESTAMP_STALE"
    status = 400
    default_message = "The webhook timestamp is outside the accepted tolerance."


def _ensure_staff(user: User, session: Session) -> None:
    ensure_participant_or_staff(session=session, user=user)
    if not user.is_clinic_staff:
        raise PermissionDenied("Only clinic staff can record payments.")


@transaction.atomic
def session_mark_paid(
    *,
    session: Session,
    user: User,
    amount: Decimal | None = None,
    provider_payment_id: str = "",
    note: str = "",
) -> Session:
    """Staff record a payment taken outside the provider (cash, bank transfer, a manual charge)."""
    _ensure_staff(user, session)
    if session.status == SessionStatus.CANCELLED:
        raise Conflict("A cancelled session cannot be marked paid.", code=INVALID_SESSION_STATE)
    session = conditional_update(
        Session.objects.filter(payment_status__in=[PaymentStatus.PENDING, PaymentStatus.FAILED]).exclude(
            status=SessionStatus.CANCELLED
        ),
        session=session,
        code=INVALID_PAYMENT_STATE,
        message="Only a pending or failed payment can be marked paid.",
        payment_status=PaymentStatus.PAID,
    )
    Payment.objects.create(
        session=session,
        kind=PaymentKind.CHARGE,
        status=PaymentStatus.PAID,
        amount=session.price if amount is None else amount,
        currency=session.currency,
        source=PaymentSource.STAFF,
        provider_payment_id=provider_payment_id,
        note=note,
        recorded_by=user,
    )
    notify_participants(session, "session.payment_updated")
    return session


@transaction.atomic
def session_mark_refunded(*, session: Session, user: User, amount: Decimal | None = None, note: str = "") -> Session:
    """Staff record that a paid session's money went back to the patient."""
    _ensure_staff(user, session)
    session = conditional_update(
        Session.objects.filter(payment_status=PaymentStatus.PAID),
        session=session,
        code=INVALID_PAYMENT_STATE,
        message="Only a paid session can be marked refunded.",
        payment_status=PaymentStatus.REFUNDED,
    )
    Payment.objects.create(
        session=session,
        kind=PaymentKind.REFUND,
        status=PaymentStatus.REFUNDED,
        amount=session.price if amount is None else amount,
        currency=session.currency,
        source=PaymentSource.STAFF,
        note=note,
        recorded_by=user,
    )
    notify_participants(session, "session.payment_updated")
    return session


# --- Provider webhook -------------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: int, raw_body: bytes) -> str:
    """Hex HMAC-SHA256 of ``<timestamp>.<raw body>`` with the shared secret (what the provider sends)."""
    signed = str(timestamp).encode() + b"." + raw_body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _parse_signature_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == SIGNATURE_VERSION and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureInvalid()
    return timestamp, signatures


def webhook_verify(*, raw_body: bytes, signature_header: str, now: datetime | None = None) -> None:
    """Refuse a webhook call unless its signature matches and its timestamp is recent.

    The timestamp is inside the signed text, so an attacker can neither forge a body nor replay an
    old, validly signed call after the tolerance; within the tolerance, replays are caught by the
    event id's unique constraint.
    """
    secret = settings.PAYMENT_WEBHOOK_SECRET
    if not secret:
        raise WebhookNotConfigured()
    timestamp, signatures = _parse_signature_header(signature_header or "")
    expected = webhook_signature(secret=secret, timestamp=timestamp, raw_body=raw_body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookSignatureInvalid()
    now = now or timezone.now()
    if abs(now.timestamp() - timestamp) > settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookTimestampStale(details={"tolerance_seconds": settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS})


def webhook_parse(raw_body: bytes) -> Any:
    try:
        return json_loads_limited(raw_body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApplicationError("The body is not valid JSON.", code="MALFORMED_REQUEST") from exc


@dataclass(frozen=True)
class WebhookOutcome:
    result: str  # processed | duplicate | ignored
    payment: Payment | None = None


_EVENT_EFFECTS = {
    # event type -> (payment kind, payment status, session payment statuses it moves from, to)
    EVENT_SUCCEEDED: (PaymentKind.CHARGE, PaymentStatus.PAID, [PaymentStatus.PENDING, PaymentStatus.FAILED]),
    EVENT_FAILED: (PaymentKind.CHARGE, PaymentStatus.FAILED, [PaymentStatus.PENDING]),
    EVENT_REFUNDED: (PaymentKind.REFUND, PaymentStatus.REFUNDED, [PaymentStatus.PAID]),
}


@transaction.atomic
def payment_webhook_apply(
    *,
    event_id: str,
    event_type: str,
    session_id,
    amount: Decimal,
    currency: str,
    provider_payment_id: str = "",
    now: datetime | None = None,
) -> WebhookOutcome:
    """Apply one verified provider event. Idempotent on ``event_id``: a replay is answered
    ``duplicate`` and changes nothing (the unique constraint on ``Payment.provider_event_id``
    guarantees it even for two deliveries racing each other).

    A payment that arrives for a cancelled session is recorded and the session marked for refund.
    """
    now = now or timezone.now()
    if event_type not in _EVENT_EFFECTS:
        return WebhookOutcome("ignored")
    if Payment.objects.filter(provider_event_id=event_id).exists():
        return WebhookOutcome("duplicate")
    session = Session.objects.filter(pk=session_id).first()
    if session is None:
        raise NotFound("No such session.")
    if event_type == EVENT_SUCCEEDED and (amount != session.price or currency.upper() != session.currency.upper()):
        raise InvalidInput(
            "The paid amount does not match the session's price.",
            code="PAYMENT_AMOUNT_MISMATCH",
            details={"expected_amount": str(session.price), "expected_currency": session.currency},
        )
    kind, payment_status, moves_from = _EVENT_EFFECTS[event_type]
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                session=session,
                kind=kind,
                status=payment_status,
                amount=amount,
                currency=currency.upper(),
                source=PaymentSource.PROVIDER,
                provider_payment_id=provider_payment_id,
                provider_event_id=event_id,
            )
    except IntegrityError:
        if Payment.objects.filter(provider_event_id=event_id).exists():
            return WebhookOutcome("duplicate")
        raise
    changes: dict[str, Any] = {"payment_status": payment_status, "updated_at": now}
    if event_type == EVENT_SUCCEEDED:
        changes["refund_requested_at"] = Case(
            When(status=SessionStatus.CANCELLED, then=Value(now)), default=F("refund_requested_at")
        )
    if Session.objects.filter(pk=session.pk, payment_status__in=moves_from).update(**changes):
        session.refresh_from_db()
        notify_participants(session, "session.payment_updated")
    return WebhookOutcome("processed", payment)
