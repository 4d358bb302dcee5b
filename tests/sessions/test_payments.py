"""Staff marking sessions paid or refunded, the payments list, and the provider webhook: signature,
timestamp tolerance, replays, unknown sessions and valid events."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from sessions.models import Payment, PaymentKind, PaymentSource, PaymentStatus, Session, SessionStatus
from sessions.services.payments import webhook_signature
from tests.assertions import assert_error
from tests.sessions.conftest import NOW
from tests.sessions.factories import ConfirmedPaidSessionFactory, PaymentFactory

pytestmark = pytest.mark.django_db
SECRET = "whsec-test-0123456789abcdef"
WEBHOOK = "/api/v1/payments/webhook/"


def url(session, action: str) -> str:
    return f"/api/v1/sessions/{session.pk}/{action}/"


# --- Staff ---------------------------------------------------------------------------------------


def test_staff_mark_a_session_paid(staff_client, staff, session):
    response = staff_client.post(url(session, "mark-paid"), {"provider_payment_id": "cash-17"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["payment_status"] == "paid"
    payment = Payment.objects.get(session=session)
    assert (payment.kind, payment.status, payment.amount, payment.source, payment.recorded_by) == (
        PaymentKind.CHARGE,
        PaymentStatus.PAID,
        Decimal("75.00"),
        PaymentSource.STAFF,
        staff,
    )


def test_marking_paid_twice_conflicts(staff_client, session):
    staff_client.post(url(session, "mark-paid"), {}, format="json")

    assert_error(staff_client.post(url(session, "mark-paid"), {}, format="json"), 409, "INVALID_PAYMENT_STATE")
    assert Payment.objects.count() == 1


def test_a_cancelled_session_cannot_be_marked_paid(staff_client, session):
    Session.objects.filter(pk=session.pk).update(status=SessionStatus.CANCELLED)

    assert_error(staff_client.post(url(session, "mark-paid"), {}, format="json"), 409, "INVALID_SESSION_STATE")


@pytest.mark.parametrize("who", ["patient_client", "doctor_client"])
def test_participants_cannot_mark_paid(request, session, who):
    response = request.getfixturevalue(who).post(url(session, "mark-paid"), {}, format="json")

    assert_error(response, 403, "PERMISSION_DENIED")
    assert Session.objects.get(pk=session.pk).payment_status == PaymentStatus.PENDING


def test_outsiders_do_not_see_the_session_to_mark(outsider_client, session):
    assert_error(outsider_client.post(url(session, "mark-paid"), {}, format="json"), 404, "NOT_FOUND")


def test_a_negative_amount_is_a_validation_error(staff_client, session):
    response = staff_client.post(url(session, "mark-paid"), {"amount": "-1"}, format="json")

    assert_error(response, 400, "VALIDATION_ERROR")


def test_staff_mark_a_paid_session_refunded(staff_client, doctor, patient):
    paid = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient)

    response = staff_client.post(url(paid, "mark-refunded"), {"note": "Goodwill"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["payment_status"] == "refunded"
    refund = Payment.objects.get(session=paid)
    assert (refund.kind, refund.status, refund.note) == (PaymentKind.REFUND, PaymentStatus.REFUNDED, "Goodwill")


def test_an_unpaid_session_cannot_be_refunded(staff_client, session):
    assert_error(staff_client.post(url(session, "mark-refunded"), {}, format="json"), 409, "INVALID_PAYMENT_STATE")


def test_participants_list_the_payments(patient_client, session):
    PaymentFactory(session=session, status=PaymentStatus.FAILED)
    PaymentFactory(session=session)

    response = patient_client.get(url(session, "payments"))

    assert response.status_code == 200, response.content
    assert sorted(row["status"] for row in response.json()) == ["failed", "paid"]


def test_outsiders_cannot_list_the_payments(outsider_client, session):
    assert_error(outsider_client.get(url(session, "payments")), 404, "NOT_FOUND")


# --- Webhook -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.PAYMENT_WEBHOOK_SECRET = SECRET
    settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS = 300


def event(session, *, event_id="evt_1", event_type="payment.succeeded", amount="75.00", currency="USD") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "created": int(NOW.timestamp()),
            "data": {"session_id": str(session.pk), "amount": amount, "currency": currency, "payment_id": "pi_42"},
        }
    ).encode()


def deliver(body: bytes, *, timestamp: int | None = None, secret: str = SECRET, signature: str | None = None):
    timestamp = int(NOW.timestamp()) if timestamp is None else timestamp
    signature = signature or webhook_signature(secret=secret, timestamp=timestamp, raw_body=body)
    return APIClient().post(
        WEBHOOK, body, content_type="application/json", HTTP_X_PAYMENT_SIGNATURE=f"t={timestamp},v1={signature}"
    )


def test_a_valid_payment_marks_the_session_paid(session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = deliver(event(session))

    assert response.status_code == 200, response.content
    payment = Payment.objects.get(provider_event_id="evt_1")
    assert response.json() == {"result": "processed", "payment_id": str(payment.pk)}
    assert (payment.session, payment.status, payment.source, payment.provider_payment_id) == (
        session,
        PaymentStatus.PAID,
        PaymentSource.PROVIDER,
        "pi_42",
    )
    assert Session.objects.get(pk=session.pk).payment_status == PaymentStatus.PAID
    assert len(callbacks) == 1


def test_a_replayed_event_changes_nothing(session):
    deliver(event(session))
    Session.objects.filter(pk=session.pk).update(payment_status=PaymentStatus.REFUNDED)

    response = deliver(event(session))

    assert response.status_code == 200, response.content
    assert response.json() == {"result": "duplicate", "payment_id": None}
    assert Payment.objects.count() == 1
    assert Session.objects.get(pk=session.pk).payment_status == PaymentStatus.REFUNDED


def test_a_bad_signature_is_refused(session):
    response = deliver(event(session), secret="not-the-secret")

    assert_error(response, 400, "WEBHOOK_SIGNATURE_INVALID")
    assert not Payment.objects.exists()
    assert Session.objects.get(pk=session.pk).payment_status == PaymentStatus.PENDING


def test_a_tampered_body_is_refused(session):
    body = event(session)
    signature = webhook_signature(secret=SECRET, timestamp=int(NOW.timestamp()), raw_body=body)

    response = deliver(body.replace(b"75.00", b"0.01"), signature=signature)

    assert_error(response, 400, "WEBHOOK_SIGNATURE_INVALID")
    assert not Payment.objects.exists()


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00", f"t={int(NOW.timestamp())}"])
def test_a_missing_or_malformed_signature_header_is_refused(session, header):
    response = APIClient().post(
        WEBHOOK, event(session), content_type="application/json", HTTP_X_PAYMENT_SIGNATURE=header
    )

    assert_error(response, 400, "WEBHOOK_SIGNATURE_INVALID")


@pytest.mark.parametrize("age", [timedelta(seconds=301), -timedelta(seconds=301)])
def test_a_stale_timestamp_is_refused_even_when_correctly_signed(session, age):
    response = deliver(event(session), timestamp=int((NOW - age).timestamp()))

    error = assert_error(response, 400, "WEBHOOK_TIMESTAMP_STALE")
    assert error["details"] == {"tolerance_seconds": 300}
    assert not Payment.objects.exists()


def test_a_timestamp_inside_the_tolerance_is_accepted(session):
    response = deliver(event(session), timestamp=int((NOW - timedelta(seconds=300)).timestamp()))

    assert response.status_code == 200, response.content


def test_an_unknown_session_is_not_found(session):
    session.pk = "00000000-0000-4000-8000-000000000000"

    response = deliver(event(session))

    assert_error(response, 404, "NOT_FOUND")
    assert not Payment.objects.exists()


def test_a_wrong_amount_is_refused(session):
    response = deliver(event(session, amount="7.50"))

    assert_error(response, 400, "PAYMENT_AMOUNT_MISMATCH")
    assert not Payment.objects.exists()


def test_a_failed_payment_is_recorded_and_the_session_can_still_be_paid(session):
    deliver(event(session, event_id="evt_fail", event_type="payment.failed"))
    assert Session.objects.get(pk=session.pk).payment_status == PaymentStatus.FAILED

    deliver(event(session, event_id="evt_ok"))

    assert Session.objects.get(pk=session.pk).payment_status == PaymentStatus.PAID
    assert sorted(Payment.objects.values_list("status", flat=True)) == ["failed", "paid"]


def test_a_refund_event_marks_the_session_refunded(doctor, patient):
    paid = ConfirmedPaidSessionFactory(doctor=doctor, patient=patient)

    response = deliver(event(paid, event_type="payment.refunded"))

    assert response.status_code == 200, response.content
    assert Session.objects.get(pk=paid.pk).payment_status == PaymentStatus.REFUNDED
    assert Payment.objects.get().kind == PaymentKind.REFUND


def test_a_payment_for_a_cancelled_session_is_marked_for_refund(session):
    Session.objects.filter(pk=session.pk).update(status=SessionStatus.CANCELLED)

    deliver(event(session))

    session.refresh_from_db()
    assert (session.payment_status, session.refund_requested_at) == (PaymentStatus.PAID, NOW)


def test_unknown_event_types_are_acknowledged_and_ignored(session):
    body = json.dumps({"id": "evt_x", "type": "customer.created", "data": {"anything": 1}}).encode()

    response = deliver(body)

    assert response.json() == {"result": "ignored", "payment_id": None}
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "MALFORMED_REQUEST"),
        (b"[1, 2]", "VALIDATION_ERROR"),
        (b'{"id": "evt_2", "type": "payment.succeeded"}', "VALIDATION_ERROR"),
        (
            b'{"id": "evt_2", "type": "payment.succeeded", "data": {"session_id": "x", "amount": "1e99"}}',
            "VALIDATION_ERROR",
        ),
    ],
)
def test_malformed_signed_bodies_are_refused(body, code):
    assert_error(deliver(body), 400, code)


def test_without_a_configured_secret_every_call_is_refused(session, settings):
    settings.PAYMENT_WEBHOOK_SECRET = ""

    response = deliver(event(session), secret="")

    assert_error(response, 503, "WEBHOOK_NOT_CONFIGURED")
    assert not Payment.objects.exists()
