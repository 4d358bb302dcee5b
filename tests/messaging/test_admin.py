"""The admin shows who wrote to whom and when, never what: no body, not even its ciphertext."""

import pytest
from django.test import Client

from messaging.models import Message
from tests.factories import StaffFactory
from tests.messaging.conftest import send

pytestmark = pytest.mark.django_db

SECRET = "my HIV test came back"


@pytest.fixture
def admin_browser() -> Client:
    browser = Client()
    browser.force_login(StaffFactory(is_superuser=True))
    return browser


def test_message_pages_show_metadata_and_never_the_body(admin_browser, direct, patient):
    message = send(patient, direct, SECRET)
    ciphertext = Message.objects.get(pk=message.pk).body_encrypted

    pages = [
        admin_browser.get("/admin/messaging/message/"),
        admin_browser.get(f"/admin/messaging/message/{message.pk}/change/"),
        admin_browser.get(f"/admin/messaging/conversation/{direct.pk}/change/"),
    ]

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert SECRET not in html
        assert ciphertext[:40] not in html
    assert message.key_id in pages[1].content.decode()


def test_the_admin_cannot_delete_a_message(admin_browser, direct, patient):
    message = send(patient, direct, "kept")

    response = admin_browser.post(f"/admin/messaging/message/{message.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert Message.objects.filter(pk=message.pk).exists()
