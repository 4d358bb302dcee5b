"""Opening the socket with the access token offered as a subprotocol (realtime/bearer.py): what
it opens, what it refuses, what it echoes, and what it costs."""

import json
import logging
from datetime import timedelta

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from accounts.tokens import token_pair_for
from config.asgi import application
from realtime.bearer import (
    BEARER_PREFIX,
    SUBPROTOCOL,
    BearerClaims,
    bearer_claims,
    bearer_offered,
    bearer_subprotocols,
)
from realtime.tickets import connection_user, ticket_issue
from tests.realtime.conftest import ORIGIN, open_socket, receive, served_url, serving

pytestmark = pytest.mark.django_db(transaction=True)


def _access(user) -> str:
    return token_pair_for(user)["access"]


@pytest.mark.asyncio
async def test_an_access_token_opens_the_socket_through_either_transport(patient, transport):
    socket = await open_socket(token=await database_sync_to_async(_access)(patient))

    ready = await receive(socket)

    assert ready["type"] == "connection.ready"
    assert ready["data"]["user_id"] == str(patient.pk)
    await socket.disconnect()


@pytest.mark.asyncio
async def test_the_server_answers_the_protocol_and_never_echoes_the_token(patient, served):
    token = await database_sync_to_async(_access)(patient)

    async with connect(served_url() + "/ws/", origin=ORIGIN[1].decode(), subprotocols=bearer_subprotocols(token)) as ws:
        assert json.loads(await ws.recv())["type"] == "connection.ready"
        assert ws.subprotocol == SUBPROTOCOL
        assert token not in str(ws.response.headers)


@pytest.mark.asyncio
async def test_a_ticket_client_offering_no_subprotocol_is_answered_with_none(patient):
    ticket = await database_sync_to_async(ticket_issue)(user=patient)
    socket = WebsocketCommunicator(application, f"/ws/?ticket={ticket}", headers=[ORIGIN])

    connected, subprotocol = await socket.connect(timeout=5)

    assert (connected, subprotocol) == (True, None)
    assert (await receive(socket))["type"] == "connection.ready"
    await socket.disconnect()


def _refresh(user) -> str:
    return token_pair_for(user)["refresh"]


def _expired(user) -> str:
    with time_machine.travel(timezone.now() - timedelta(minutes=16), tick=False):  # they last fifteen
        return _access(user)


def _forged(user) -> str:
    header, payload, signature = _access(user).split(".")
    return f"{header}.{payload}.{signature[::-1]}"


@pytest.mark.asyncio
@pytest.mark.parametrize("make_token", [_refresh, _expired, _forged, lambda user: "", lambda user: "not-a-jwt"])
async def test_anything_but_a_valid_access_token_closes_with_4401(patient, make_token):
    socket = await open_socket(token=await database_sync_to_async(make_token)(patient))

    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


@pytest.mark.asyncio
@pytest.mark.parametrize("revoke", ["sign_out", "suspend"])
async def test_a_revoked_token_or_a_suspended_users_token_closes_with_4401(patient, revoke):
    """The signature and lifetime hold, so only the user's row refuses it: its generation (raised
    by a sign-out everywhere) or ``is_active``."""
    from accounts.services import user_tokens_revoke

    token = await database_sync_to_async(_access)(patient)
    if revoke == "sign_out":
        await database_sync_to_async(user_tokens_revoke)(user=patient)
    else:
        patient.is_active = False
        await database_sync_to_async(patient.save)(update_fields=["is_active"])

    socket = await open_socket(token=token)

    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


@pytest.mark.asyncio
async def test_the_access_token_wins_over_a_ticket_in_the_url(patient, doctor):
    ticket = await database_sync_to_async(ticket_issue)(user=doctor)

    socket = await open_socket(ticket=ticket, token=await database_sync_to_async(_access)(patient))

    assert (await receive(socket))["data"]["user_id"] == str(patient.pk)
    await socket.disconnect()


@pytest.mark.asyncio
async def test_an_invalid_token_is_refused_even_beside_a_valid_ticket(patient):
    ticket = await database_sync_to_async(ticket_issue)(user=patient)

    socket = await open_socket(ticket=ticket, token=await database_sync_to_async(_forged)(patient))

    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


@pytest.mark.asyncio
async def test_the_connection_limit_counts_token_connections_too(patient, settings):
    settings.REALTIME_CONNECT_THROTTLE_RATE = "1/min"
    token = await database_sync_to_async(_access)(patient)
    first = await open_socket(token=token)
    await receive(first)

    refused = await open_socket(token=token)

    assert (await receive(refused))["data"]["code"] == "RATE_LIMITED"
    assert await refused.receive_output(timeout=5) == {"type": "websocket.close", "code": 4429}
    await first.disconnect()


@pytest.mark.asyncio
async def test_the_token_is_not_logged_when_a_handshake_is_refused(patient, caplog):
    """The server logging everything it can (uvicorn at debug, with its access log): the handshake
    is logged, its token is not. (The test's own client logs its headers; it is left out.)"""
    token = await database_sync_to_async(_access)(patient)
    await database_sync_to_async(lambda: type(patient).objects.filter(pk=patient.pk).update(is_active=False))()

    with caplog.at_level(logging.DEBUG):
        async with serving(log_config=None, log_level="debug", access_log=True):
            socket = await open_socket(token=token)
            with pytest.raises(ConnectionClosed, match="4401"):
                await socket.receive_from(timeout=5)

    server_side = [record for record in caplog.records if not record.name.startswith("websockets.client")]
    assert any("/ws/" in record.getMessage() for record in server_side)  # the access log's line
    logged = "\n".join(f"{record.getMessage()} {record.args}" for record in server_side)
    assert token.split(".")[2] not in logged  # the signature, the token's secret part


def test_the_offered_token_is_found_among_the_subprotocols():
    assert bearer_offered(["chat", SUBPROTOCOL, BEARER_PREFIX + "abc"]) == "abc"
    assert bearer_offered([SUBPROTOCOL]) is None


def test_checking_a_token_reads_no_database_and_the_user_one_statement(patient, django_assert_num_queries):
    token = _access(patient)

    with django_assert_num_queries(0):
        claims = bearer_claims(token)
    with django_assert_num_queries(1):
        user = connection_user(user_id=claims.user_id, generation=claims.generation)

    assert claims == BearerClaims(user_id=str(patient.pk), generation=str(patient.token_generation))
    assert user == patient


def test_an_overlong_token_is_refused_unread():
    assert bearer_claims("a" * 5000) is None
