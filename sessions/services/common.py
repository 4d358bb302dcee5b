"""Pieces every session service shares: the conditional status update, the realtime event, and
the codes of the refusals."""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from core.events import send_on_commit, user_group
from core.exceptions import Conflict
from sessions.models import Session

INVALID_SESSION_STATE = "INVALID_SESSION_STATE"
INVALID_PAYMENT_STATE = "INVALID_PAYMENT_STATE"
SCHEDULE_CONFLICT = "SCHEDULE_CONFLICT"
REQUEST_LAPSED = "REQUEST_LAPSED"


def conditional_update(
    queryset: QuerySet[Session], *, session: Session, code: str, message: str, **changes: Any
) -> Session:
    """Apply ``changes`` to the session only if it still matches ``queryset``'s conditions.

    The condition and the write are one ``UPDATE ... WHERE``: of two concurrent callers exactly one
    changes the row, and the other gets a 409 with ``code`` instead of silently overwriting it.
    """
    changes.setdefault("updated_at", timezone.now())
    if queryset.filter(pk=session.pk).update(**changes) != 1:
        session.refresh_from_db()
        raise Conflict(message, code=code, details={"status": session.status, "payment_status": session.payment_status})
    session.refresh_from_db()
    return session


def notify_participants(session: Session, event_type: str) -> None:
    """Tell both participants' connections about a change, once the transaction commits. The
    payload carries ids, statuses and times only: no names or reasons for visit."""
    send_on_commit(
        [user_group(session.doctor_id), user_group(session.patient_id)],
        event_type,
        {
            "session_id": str(session.pk),
            "status": session.status,
            "payment_status": session.payment_status,
            "scheduled_start": session.scheduled_start.isoformat().replace("+00:00", "Z"),
        },
    )
