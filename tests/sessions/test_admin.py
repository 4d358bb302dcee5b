"""The admin's session actions go through the services: same rules, same conditional updates."""

import pytest

from sessions.models import Payment, PaymentStatus, Session, SessionStatus
from tests.factories import StaffFactory
from tests.sessions.factories import ConfirmedPaidSessionFactory, SessionFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/consultations/session/"


@pytest.fixture
def admin_client(client):
    client.force_login(StaffFactory(is_superuser=True))
    return client


def run_action(admin_client, action: str, sessions):
    return admin_client.post(
        CHANGELIST, {"action": action, "_selected_action": [str(s.pk) for s in sessions]}, follow=True
    )


def test_changelist_searches_and_filters(admin_client, session):
    response = admin_client.get(CHANGELIST, {"q": session.patient.email, "status__exact": "requested"})

    assert response.status_code == 200
    assert str(session.pk) in response.content.decode()


def test_confirm_action(admin_client, session):
    response = run_action(admin_client, "confirm_sessions", [session])

    assert response.status_code == 200
    assert Session.objects.get(pk=session.pk).status == SessionStatus.CONFIRMED


def test_confirm_action_reports_sessions_in_the_wrong_state(admin_client, session):
    Session.objects.filter(pk=session.pk).update(status=SessionStatus.CANCELLED)

    response = run_action(admin_client, "confirm_sessions", [session])

    assert "Only a requested session can be confirmed." in response.content.decode()
    assert Session.objects.get(pk=session.pk).status == SessionStatus.CANCELLED


def test_cancel_action_marks_paid_sessions_for_refund(admin_client):
    paid = ConfirmedPaidSessionFactory()

    run_action(admin_client, "cancel_sessions", [paid])

    paid.refresh_from_db()
    assert paid.status == SessionStatus.CANCELLED
    assert paid.refund_requested_at is not None


def test_mark_paid_and_refunded_actions(admin_client):
    session = SessionFactory()

    run_action(admin_client, "mark_paid", [session])
    assert Session.objects.get(pk=session.pk).payment_status == PaymentStatus.PAID
    run_action(admin_client, "mark_refunded", [session])

    assert Session.objects.get(pk=session.pk).payment_status == PaymentStatus.REFUNDED
    assert sorted(Payment.objects.filter(session=session).values_list("kind", flat=True)) == ["charge", "refund"]
