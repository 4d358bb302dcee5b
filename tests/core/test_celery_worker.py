"""A real Celery worker consumes our tasks from the configured broker: kombu's filesystem
transport on embedded defaults, Redis when REDIS_URL is set."""

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from config.celery_app import app as celery_app
from tests.factories import PatientFactory


@pytest.fixture
def real_worker():
    celery_app.conf.task_always_eager = False
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield
    finally:
        celery_app.conf.task_always_eager = True


@pytest.mark.django_db(transaction=True)
def test_worker_sends_a_password_reset_email_queued_through_the_broker(real_worker, settings):
    from accounts.tasks import send_password_reset_email

    patient = PatientFactory(email="queued@example.test")

    result = send_password_reset_email.delay(str(patient.pk))
    result.get(timeout=30)

    assert result.successful()
    assert [message.to for message in mail.outbox] == [["queued@example.test"]]
    assert "reset-password?uid=" in mail.outbox[0].body


@pytest.mark.redis
def test_broker_is_redis_when_configured(settings):
    assert celery_app.conf.broker_url == settings.REDIS_URL
    assert celery_app.conf.result_backend == settings.REDIS_URL
