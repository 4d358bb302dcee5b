"""Call messages over the socket leave audit entries as REST's call endpoints do: the join
(which answers the call's details and participants), leave, ringing and media changes, with the
call's id; an outsider's attempt is recorded as denied."""

import json

import pytest
from channels.db import database_sync_to_async

from audit.models import AuditEntry
from tests.factories import PatientFactory
from tests.realtime.conftest import open_socket, receive
from tests.realtime.test_signaling import _ongoing_call
from tests.sessions.factories import SessionFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@database_sync_to_async
def _entries() -> list[tuple]:
    return list(
        AuditEntry.objects.order_by("id").values_list(
            "actor_id", "action", "object_type", "object_id", "outcome", "status_code", "method", "route"
        )
    )


async def _reply(socket, message: dict) -> dict:
    await socket.send_to(text_data=json.dumps(message))
    while (answer := await receive(socket))["type"] not in ("ack", "error"):
        pass
    return answer


async def test_join_media_and_leave_are_audited_with_the_call(doctor, patient):
    call = await database_sync_to_async(_ongoing_call)(doctor, patient)
    socket = await open_socket(patient)
    call_id = str(call.pk)

    joined = await _reply(socket, {"type": "call.join", "id": "j", "data": {"call_id": call_id}})
    muted = await _reply(
        socket, {"type": "media.update", "id": "m", "data": {"call_id": call_id, "audio_enabled": False}}
    )
    entries = await _entries()
    await socket.disconnect()

    assert [joined["type"], muted["type"]] == ["ack", "ack"]
    assert entries == [
        (patient.pk, "update", "call", call_id, "allowed", 200, "WS", "ws:call.join"),
        (patient.pk, "update", "call", call_id, "allowed", 200, "WS", "ws:media.update"),
    ]


async def test_a_ring_is_audited_with_the_new_call(doctor, patient):
    await database_sync_to_async(SessionFactory)(doctor=doctor, patient=patient)  # their care relationship
    socket = await open_socket(doctor)

    rang = await _reply(socket, {"type": "call.initiate", "id": "r", "data": {"callee_id": str(patient.pk)}})
    entries = await _entries()
    await socket.disconnect()

    assert rang["type"] == "ack", rang
    assert entries[-1] == (doctor.pk, "create", "call", rang["data"]["id"], "allowed", 200, "WS", "ws:call.initiate")


async def test_an_outsiders_join_is_recorded_as_denied(doctor, patient):
    call = await database_sync_to_async(_ongoing_call)(doctor, patient)
    outsider = await database_sync_to_async(PatientFactory)()
    socket = await open_socket(outsider)

    refused = await _reply(socket, {"type": "call.join", "id": "j", "data": {"call_id": str(call.pk)}})
    entries = await _entries()
    await socket.disconnect()

    assert refused["data"]["code"] == "CALL_NOT_FOUND"
    assert entries == [(outsider.pk, "update", "call", str(call.pk), "denied", 404, "WS", "ws:call.join")]
