"""Bodies are encrypted at rest under the newest configured key; keys rotate without losing a
message, and a body whose key was removed is refused clearly, not with a crash."""

import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from messaging.encryption import BodyUnreadable, decrypt_body, encrypt_body, key_id_of, keyring
from messaging.models import Message
from messaging.serializers import message_payload
from messaging.services.rotation import messages_pending_reencryption
from tests.messaging.conftest import raw_message_rows, send

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
SECRET = "Blood pressure 150/95, increase lisinopril to 20mg"


def test_the_database_holds_no_plaintext_body(settings, direct, patient):
    # given a configured key
    settings.MESSAGE_ENCRYPTION_KEYS = [OLD_KEY]

    # when a message is sent
    message = send(patient, direct, SECRET)

    # then no column of the stored row holds the body or a piece of it
    rows = raw_message_rows()
    assert len(rows) == 1
    assert not any("lisinopril" in column or "150/95" in column for column in rows[0])
    # and the row names the key it is under, which opens it
    assert Message.objects.get().key_id == key_id_of(OLD_KEY)
    assert decrypt_body(Message.objects.get(pk=message.pk).body_encrypted) == SECRET


def test_without_keys_a_key_is_derived_from_the_secret_key_and_a_warning_says_so(settings, caplog):
    settings.MESSAGE_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = "another-secret-for-this-test-only-0123456789"

    with caplog.at_level(logging.WARNING, logger="messaging.encryption"):
        token, key_id = encrypt_body(SECRET)

    assert "MESSAGE_ENCRYPTION_KEYS is not set" in caplog.text
    assert SECRET not in token
    assert decrypt_body(token) == SECRET
    assert key_id == keyring().current_key_id


def test_without_keys_and_without_the_derived_fallback_nothing_is_encrypted(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.MESSAGE_ENCRYPTION_KEYS = []
    settings.MESSAGE_ENCRYPTION_ALLOW_DERIVED_KEY = False  # as in production settings

    with pytest.raises(ImproperlyConfigured):
        encrypt_body(SECRET)


def test_rotation_moves_every_body_to_the_new_key_and_both_old_and_new_messages_read(settings, direct, patient, doctor):
    # given messages written under the old key
    settings.MESSAGE_ENCRYPTION_KEYS = [OLD_KEY]
    old = [send(patient, direct, f"old message {n}") for n in range(5)]
    old_tokens = set(Message.objects.values_list("body_encrypted", flat=True))

    # when the new key is put first, a message is written under it, and the command runs
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    new = send(doctor, direct, "new message")
    assert messages_pending_reencryption().count() == 5
    call_command("reencrypt_messages", "--batch-size", "2", stdout=io.StringIO())

    # then every body is under the new key, re-encrypted (not the same tokens), and reads
    assert set(Message.objects.values_list("key_id", flat=True)) == {key_id_of(NEW_KEY)}
    assert not old_tokens & set(Message.objects.values_list("body_encrypted", flat=True))
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY]  # the old key removed after the rotation
    bodies = {message.pk: message_payload(Message.objects.get(pk=message.pk))["body"] for message in [*old, new]}
    assert bodies == {**{m.pk: f"old message {n}" for n, m in enumerate(old)}, new.pk: "new message"}


def test_an_interrupted_rotation_resumes_where_it_stopped(settings, direct, patient):
    settings.MESSAGE_ENCRYPTION_KEYS = [OLD_KEY]
    for n in range(5):
        send(patient, direct, f"message {n}")
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]

    # when a run stops after one batch of two
    call_command("reencrypt_messages", "--batch-size", "2", "--max-batches", "1", stdout=io.StringIO())
    assert messages_pending_reencryption().count() == 3

    # then the next run finishes the rest
    call_command("reencrypt_messages", "--batch-size", "2", stdout=io.StringIO())
    assert messages_pending_reencryption().count() == 0


def test_a_body_under_a_removed_key_is_refused_clearly(settings, direct, patient, caplog):
    # given a message written under the old key alone, which is then removed (no rotation)
    settings.MESSAGE_ENCRYPTION_KEYS = [OLD_KEY]
    message = send(patient, direct, SECRET)
    settings.MESSAGE_ENCRYPTION_KEYS = [NEW_KEY]
    stored = Message.objects.get(pk=message.pk)

    # then decrypting it raises the one clear error
    with pytest.raises(BodyUnreadable) as refused:
        decrypt_body(stored.body_encrypted)
    assert refused.value.code == "MESSAGE_UNREADABLE"

    # and shown to a member it has no body and says why, and the log names the message, not the body
    with caplog.at_level(logging.ERROR, logger="messaging.serializers"):
        payload = message_payload(stored)
    assert (payload["body"], payload["body_unreadable"]) == (None, True)
    assert str(message.pk) in caplog.text and SECRET not in caplog.text

    # and the rotation leaves it as it is and reports it
    report = io.StringIO()
    call_command("reencrypt_messages", stdout=report)
    assert "1 unreadable" in report.getvalue()
    assert Message.objects.get(pk=message.pk).body_encrypted == stored.body_encrypted
