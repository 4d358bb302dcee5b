"""Concurrent sends on PostgreSQL, each from its own thread and database connection: numbers
stay unique and in commit order, unread counts and receipts come out exact, and racing retries
with one client key store one message."""

import threading

import pytest
from django.db import connection
from django.db.models import F

from messaging.models import Conversation, Message, MessageReceipt
from messaging.services.conversations import conversation_direct_open
from messaging.services.messages import message_send
from messaging.services.receipts import unread_count
from tests.factories import DoctorFactory, PatientFactory
from tests.video_calls.factories import SessionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_together(jobs: list) -> list:
    """Run each job on its own thread, released together; return what each returned or raised."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list = [None] * len(jobs)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = jobs[index]()
        except Exception as error:  # reported to the test
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_concurrent_sends_from_both_sides_give_exact_unread_counts_and_receipts():
    # given a patient and their doctor in one conversation
    doctor, patient = DoctorFactory(), PatientFactory()
    SessionFactory(doctor=doctor, patient=patient)
    conversation, _ = conversation_direct_open(user=patient, other_id=doctor.pk)

    # when both send ten messages at once, twenty threads in all
    def sender(user, n):
        return lambda: message_send(sender=user, conversation_id=conversation.pk, body=f"{user.pk}-{n}").message

    outcomes = _run_together([sender(user, n) for n in range(10) for user in (doctor, patient)])

    # then every send was stored, numbered 1..20 without a gap or a repeat
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert sorted(Message.objects.values_list("seq", flat=True)) == list(range(1, 21))
    assert Conversation.objects.get(pk=conversation.pk).last_seq == 20
    # and each side has exactly the other's ten unread, one receipt per message
    assert unread_count(user=patient, conversation_id=conversation.pk) == 10
    assert unread_count(user=doctor, conversation_id=conversation.pk) == 10
    assert MessageReceipt.objects.count() == 20
    assert not MessageReceipt.objects.filter(recipient_id=F("message__sender_id")).exists()  # never to oneself


def test_racing_retries_with_one_client_key_store_one_message():
    doctor, patient = DoctorFactory(), PatientFactory()
    SessionFactory(doctor=doctor, patient=patient)
    conversation, _ = conversation_direct_open(user=patient, other_id=doctor.pk)

    def retry():
        return message_send(
            sender=patient, conversation_id=conversation.pk, body="Taking it now", client_message_id="tab-7"
        )

    outcomes = _run_together([retry for _ in range(8)])

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert sorted(outcome.created for outcome in outcomes) == [False] * 7 + [True]
    assert len({outcome.message.pk for outcome in outcomes}) == 1
    assert Message.objects.count() == 1
    assert unread_count(user=doctor, conversation_id=conversation.pk) == 1


def test_two_first_messages_at_once_share_one_conversation():
    doctor, patient = DoctorFactory(), PatientFactory()
    SessionFactory(doctor=doctor, patient=patient)

    outcomes = _run_together(
        [
            lambda: message_send(sender=patient, user_id=doctor.pk, body="Hello doctor"),
            lambda: message_send(sender=doctor, user_id=patient.pk, body="Hello patient"),
        ]
    )

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 2
