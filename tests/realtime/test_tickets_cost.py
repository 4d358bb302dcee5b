"""What a ticket costs, issued and redeemed: on the hour every client of every call takes one
and opens its socket with it, so the statements each needs are pinned here."""

import pytest
from django.core.cache import cache

from realtime.tickets import _key, ticket_issue, ticket_redeem
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_issuing_a_ticket_costs_one_statement_the_user(patient, django_assert_num_queries):
    client = client_for(patient)

    # the access token's user (accounts/authentication.py); the ticket endpoint is not audited
    with django_assert_num_queries(1):
        response = client.post("/api/v1/realtime/tickets/")

    assert response.status_code == 201
    assert ticket_redeem(ticket=response.json()["ticket"]) == patient


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


@pytest.mark.django_db(transaction=True)
def test_the_ticket_endpoint_gives_its_pooled_connection_back_before_the_redis_work(patient, monkeypatch):
    """On the hour the pool is what the ticket requests queue for: each holds a connection only
    for its user's statement, not through its rate limits, the ticket and the rendering."""
    from django.db import connection

    import realtime.apis

    if getattr(connection, "pool", None) is None:
        pytest.skip("needs PostgreSQL's connection pool (DATABASE_URL)")
    held_while_issuing = []
    issue = realtime.apis.ticket_issue

    def issue_and_look(*, user):
        held_while_issuing.append(connection.connection is not None)
        return issue(user=user)

    monkeypatch.setattr(realtime.apis, "ticket_issue", issue_and_look)
    response = client_for(patient).post("/api/v1/realtime/tickets/")

    assert response.status_code == 201
    assert held_while_issuing == [False]
    assert ticket_redeem(ticket=response.json()["ticket"]) == patient
