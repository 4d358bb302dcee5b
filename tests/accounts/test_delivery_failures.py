"""When the SMS provider or the email queue fails: the phone code endpoint answers 503
``SMS_UNAVAILABLE`` and changes nothing; registration and the silent email endpoints answer as
usual (their answer must not reveal who has an account); no phone number, code or address
reaches the logs."""

import logging
import re
import traceback

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.test import override_settings
from kombu.exceptions import OperationalError

from accounts import sms, tasks
from accounts.models import PhoneVerification, User
from tests.accounts.helpers import (
    DOWN_SMS_BACKEND,
    EMAIL_RESEND,
    OTHER_PHONE,
    PASSWORD_FORGOT,
    PHONE,
    PHONE_SEND_CODE,
    PHONE_VERIFY,
    REGISTER,
    DownSmsBackend,
    register_body,
    sent_code,
)
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_attempts_left_over():
    DownSmsBackend.attempts.clear()
    yield
    DownSmsBackend.attempts.clear()


def _attempted_code() -> str:
    (attempt,) = DownSmsBackend.attempts
    return re.search(r"\b(\d{6})\b", attempt.body).group(1)


def _assert_no_phi_logged(caplog, *secrets: str) -> None:
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert secret not in logged
    # and no record carries the provider's exception, whose text quotes the number and the code
    assert all(record.exc_info is None for record in caplog.records)


# --- SMS: the phone code --------------------------------------------------------------------


def test_provider_failure_answers_503_and_the_earlier_code_still_works(caplog, django_capture_on_commit_callbacks):
    # given a patient who was texted a code to their number
    patient = PatientFactory()
    client = client_for(patient)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(PHONE_SEND_CODE, {"phone_number": PHONE}).status_code == 202
    delivered_code = sent_code(PHONE)
    caplog.set_level(logging.DEBUG)

    # when they ask for a code to another number while the provider is down
    with override_settings(SMS_BACKEND=DOWN_SMS_BACKEND), django_capture_on_commit_callbacks(execute=True):
        response = client.post(PHONE_SEND_CODE, {"phone_number": OTHER_PHONE})

    # then the answer is 503 SMS_UNAVAILABLE
    assert_error(response, 503, "SMS_UNAVAILABLE")
    # and nothing changed: the number on the account, the one live code (the delivered one)
    patient.refresh_from_db()
    assert (patient.phone_number, patient.phone_verified) == (PHONE, False)
    (live,) = PhoneVerification.objects.filter(user=patient, consumed_at__isnull=True)
    assert live.phone_number == PHONE
    assert PhoneVerification.objects.filter(user=patient).count() == 1
    # and the failure is logged without the number, the code or the provider's message
    assert any(record.name == "accounts.sms" and record.levelno == logging.ERROR for record in caplog.records)
    _assert_no_phi_logged(caplog, OTHER_PHONE, PHONE, _attempted_code(), "provider unreachable")
    # and the code they did receive still verifies the number
    verified = client.post(PHONE_VERIFY, {"code": delivered_code})
    assert verified.status_code == 200, verified.content
    assert verified.json()["phone_verified"] is True


def test_undelivered_first_code_leaves_no_code_and_no_number(patient_client, patient, caplog):
    # given a patient with no number, and the provider down
    caplog.set_level(logging.DEBUG)

    # when they ask for a code to a number
    with override_settings(SMS_BACKEND=DOWN_SMS_BACKEND):
        response = patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})

    # then it is 503, no code exists and the account has no number
    assert_error(response, 503, "SMS_UNAVAILABLE")
    assert not PhoneVerification.objects.filter(user=patient).exists()
    patient.refresh_from_db()
    assert patient.phone_number == ""
    # and the undelivered code cannot be used
    assert_error(patient_client.post(PHONE_VERIFY, {"code": _attempted_code()}), 400, "INVALID_VERIFICATION_CODE")
    _assert_no_phi_logged(caplog, PHONE, _attempted_code())


def test_the_code_is_stored_once_the_provider_accepts_it(patient_client, patient):
    # given a first attempt that failed
    with override_settings(SMS_BACKEND=DOWN_SMS_BACKEND):
        assert_error(patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE}), 503, "SMS_UNAVAILABLE")

    # when the patient asks again with the provider back
    response = patient_client.post(PHONE_SEND_CODE, {"phone_number": PHONE})

    # then the texted code is the one live code, and it verifies the number
    assert response.status_code == 202
    assert PhoneVerification.objects.filter(user=patient, consumed_at__isnull=True).count() == 1
    assert patient_client.post(PHONE_VERIFY, {"code": sent_code(PHONE)}).status_code == 200


def test_registration_stands_when_the_code_cannot_be_texted(anon_client, caplog, django_capture_on_commit_callbacks):
    # given the SMS provider is down
    caplog.set_level(logging.DEBUG)

    # when a visitor registers with a phone number
    with override_settings(SMS_BACKEND=DOWN_SMS_BACKEND), django_capture_on_commit_callbacks(execute=True):
        response = anon_client.post(REGISTER, register_body(phone_number=PHONE))

    # then they get the usual answer (a known email, which is texted nothing, gets the same)
    assert response.status_code == 202, response.content
    assert response.json() == {
        "detail": "Registration received. Check your email to confirm your address, then sign in."
    }
    # and the account exists with the number unverified, without an undelivered code
    user = User.objects.get(email="margaret.hamilton@example.test")
    assert (user.phone_number, user.phone_verified) == (PHONE, False)
    assert not PhoneVerification.objects.filter(user=user).exists()
    assert sms.outbox == []
    # and the confirmation email still went out
    (message,) = mail.outbox
    assert message.to == ["margaret.hamilton@example.test"]
    _assert_no_phi_logged(caplog, PHONE, _attempted_code())


# --- Email: the queue -----------------------------------------------------------------------
# ``transaction=True``: the request's own commit runs the on-commit queueing, as in production,
# so a failure there would reach the view (and be a 500).


@pytest.fixture
def broker_down(monkeypatch):
    """Every account email task fails to be queued the way Celery fails with Redis down."""

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    for task in (tasks.send_email_verification, tasks.send_password_reset_email, tasks.send_account_exists_email):
        monkeypatch.setattr(task, "apply_async", refuse)


@pytest.mark.django_db(transaction=True)
def test_forgot_password_answers_as_usual_when_the_email_cannot_be_queued(anon_client, broker_down, caplog):
    # given an account, and a broker that refuses tasks
    patient = PatientFactory(email="known@example.test")
    caplog.set_level(logging.DEBUG)

    # when someone asks for a reset link for it
    response = anon_client.post(PASSWORD_FORGOT, {"email": patient.email})

    # then the answer is the one an unknown address gets
    assert response.status_code == 202, response.content
    assert response.json() == {"detail": "If the address belongs to an account, a reset link is on its way."}
    assert mail.outbox == []
    # and the failure is logged, naming the task but not the address
    assert any("Could not queue" in record.getMessage() for record in caplog.records)
    _assert_no_phi_logged(caplog, patient.email)


@pytest.mark.django_db(transaction=True)
def test_resend_answers_as_usual_when_the_email_cannot_be_queued(anon_client, broker_down, caplog):
    patient = PatientFactory(email="unconfirmed@example.test", email_verified=False)
    caplog.set_level(logging.DEBUG)

    response = anon_client.post(EMAIL_RESEND, {"email": patient.email})

    assert response.status_code == 202, response.content
    assert mail.outbox == []
    _assert_no_phi_logged(caplog, patient.email)


@pytest.mark.django_db(transaction=True)
def test_registration_stands_when_the_confirmation_cannot_be_queued(anon_client, broker_down, caplog):
    caplog.set_level(logging.DEBUG)

    response = anon_client.post(REGISTER, register_body())

    assert response.status_code == 202, response.content
    assert User.objects.filter(email="margaret.hamilton@example.test").exists()
    _assert_no_phi_logged(caplog, "margaret.hamilton@example.test")


# --- Email: the SMTP server refuses ------------------------------------------------------------


class RefusingEmailBackend:
    """An SMTP server that refuses the recipient, quoting the address as real servers do."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def send_messages(self, messages) -> int:
        import smtplib

        address = messages[0].to[0]
        raise smtplib.SMTPRecipientsRefused({address: (550, f"5.1.1 <{address}>: mailbox unavailable".encode())})


@override_settings(EMAIL_BACKEND="tests.accounts.test_delivery_failures.RefusingEmailBackend")
def test_a_refused_email_is_retried_and_its_failure_names_no_address(caplog):
    # given an account whose mail server refuses the address
    patient = PatientFactory(email="refused@example.test")
    caplog.set_level(logging.DEBUG)

    # when the worker tries to send the reset link (in-process, the first retry propagates)
    with pytest.raises(Retry) as retried:
        tasks.send_password_reset_email.apply(args=[str(patient.pk)])

    # then it is retried as an undelivered email
    assert isinstance(retried.value.exc, tasks.EmailNotSent)
    assert str(retried.value.exc) == "SMTPRecipientsRefused"
    # and neither the logs nor what Celery reports and stores (the whole traceback) quote the address
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert patient.email not in logged
    assert patient.email not in "".join(traceback.format_exception(retried.value))
