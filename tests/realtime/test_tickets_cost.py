"""What a ticket costs, issued and redeemed: on the hour every client of every call takes one
and opens its socket with it, so the statements each needs are pinned here: none to issue
it, the user's row to redeem it."""

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from realtime.tickets import _key, ticket_issue, ticket_redeem
from tests.accounts.helpers import MALFORMED_BEARER_HEADERS
from tests.assertions import assert_error
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_issuing_a_ticket_costs_no_statement(patient, django_assert_num_queries):
    client = client_for(patient)

    # the access token's signature and claims only (accounts/authentication.py); not audited
    with django_assert_num_queries(0):
        response = client.post("/api/v1/realtime/tickets/")

    assert response.status_code == 201
    assert ticket_redeem(ticket=response.json()["ticket"]) == patient


@pytest.mark.parametrize("revoke", ["sign_out", "suspend"])
def test_a_revoked_tokens_ticket_opens_nothing(patient, revoke):
    """The endpoint does not read the user, so a signed-out or suspended user's unexpired token
    still gets a ticket; redeeming it reads the user and refuses it (the socket closes 4401)."""
    from accounts.services import user_tokens_revoke

    client = client_for(patient)
    if revoke == "sign_out":
        user_tokens_revoke(user=patient)
    else:  # is_active alone (user_suspend also bumps the generation): the active check refuses it
        patient.is_active = False
        patient.save(update_fields=["is_active"])

    response = client.post("/api/v1/realtime/tickets/")

    assert response.status_code == 201
    assert ticket_redeem(ticket=response.json()["ticket"]) is None


@MALFORMED_BEARER_HEADERS
def test_a_malformed_token_gets_no_ticket(header, code):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    assert_error(client.post("/api/v1/realtime/tickets/"), 401, code)


def test_an_expired_token_gets_no_ticket(patient):
    """The signature and lifetime are what the endpoint checks itself."""
    with time_machine.travel(timezone.now() - timedelta(minutes=16), tick=False):
        client = client_for(patient)  # an access token issued sixteen minutes ago (they last fifteen)

    assert_error(client.post("/api/v1/realtime/tickets/"), 401, "TOKEN_INVALID")


def test_redeeming_a_ticket_costs_one_statement_the_user(patient, django_assert_num_queries):
    ticket = ticket_issue(user=patient)

    with django_assert_num_queries(1):
        assert ticket_redeem(ticket=ticket) == patient


def test_a_redeemed_ticket_is_gone_and_opens_nothing_again(patient, django_assert_num_queries):
    ticket = ticket_issue(user=patient)
    assert ticket_redeem(ticket=ticket) == patient

    assert cache.get(_key(ticket)) is None
    with django_assert_num_queries(0):  # unknown: refused before the database
        assert ticket_redeem(ticket=ticket) is None


@pytest.mark.redis
def test_on_redis_a_ticket_is_taken_in_one_step(patient):
    """GETDEL: the ticket read and deleted together, so two redemptions cannot both get it."""
    ticket = ticket_issue(user=patient)
    stored_key = cache.make_and_validate_key(_key(ticket))
    client = cache._cache.get_client(stored_key, write=True)
    assert client.exists(stored_key)

    assert ticket_redeem(ticket=ticket) == patient
    assert not client.exists(stored_key)
    assert ticket_redeem(ticket=ticket) is None
