"""A write refused by a unique constraint (a concurrent request got there first) is 409
CONFLICT, whichever view it happens in; other integrity errors remain bugs (500). The errors
come from the real database."""

import pytest
from django.db import connection

from accounts.models import User
from tests.assertions import assert_error

pytestmark = pytest.mark.django_db


def test_a_unique_constraint_refusing_a_write_is_conflict(patient_client, patient, monkeypatch):
    def duplicate_account(**kwargs):
        User.objects.create(email=patient.email, first_name="Second", last_name="Copy")

    monkeypatch.setattr("accounts.selectors.doctor_list_for_user", duplicate_account)

    response = patient_client.get("/api/v1/doctors/")

    assert_error(response, 409, "CONFLICT")


def test_other_integrity_errors_remain_internal_errors(patient_client, monkeypatch):
    def broken_write(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("UPDATE accounts_user SET email = NULL")

    monkeypatch.setattr("accounts.selectors.doctor_list_for_user", broken_write)

    response = patient_client.get("/api/v1/doctors/")

    assert_error(response, 500, "INTERNAL_ERROR")
