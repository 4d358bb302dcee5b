"""Fault drill: Redis restarts in the middle of a call.

Two server processes share a throwaway Redis (channel layer, cache, broker); the doctor is on one,
the patient on the other, so every signal and chat event crosses Redis. Redis is stopped and
started again, empty. What the protocol promises (docs/realtime.md, close code 4503 and
"Overload and retrying"): each socket is closed with 4503; the client gets a new ticket,
reconnects, sends ``call.join`` and gets the call's current state; signaling works again; and
chat is exactly-once in the database: what was stored before the restart is still there, and a
message re-sent with its ``client_message_id`` (the client never saw its ack) is stored once.

Written against the protocol, not the channel layer behind it.
"""

import pytest

from messaging.models import Message
from presence.models import PresenceConnection
from tests.drills.clients import DrillSocket, http, reconnect
from tests.drills.processes import process_environment, run_database_url, server, wait_for
from video_calls.models import CallParticipant, CallStatus, ParticipantStatus

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LAYER_LOST = 4503
SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def _chat(socket: DrillSocket, call_id: str, key: str) -> dict:
    return socket.request(
        {
            "type": "chat.send",
            "id": key,
            "data": {"call_id": call_id, "body": f"body of {key}", "client_message_id": key},
        }
    )


def _join(socket: DrillSocket, call_id: str) -> dict:
    return socket.request({"type": "call.join", "id": "join", "data": {"call_id": call_id}})


def test_a_redis_restart_closes_with_4503_and_the_call_resumes_with_chat_stored_once(
    processes, redis_instance, ongoing_call, doctor, patient, tmp_path
):
    from accounts.tokens import token_pair_for

    call_id = str(ongoing_call.pk)
    environment = process_environment(
        database_url=run_database_url(),
        redis_url=redis_instance.url,
        var_dir=tmp_path,
        SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS="1",
    )
    server_a, server_b = server("server-a", environment, tmp_path), server("server-b", environment, tmp_path)
    processes.start(server_a, server_b)
    server_a.wait_until_live()
    server_b.wait_until_live()
    doctor_token, patient_token = token_pair_for(doctor)["access"], token_pair_for(patient)["access"]

    # Given the doctor on one process and the patient on the other, in the call, chatting
    doctor_socket = DrillSocket(server_a, doctor_token)
    patient_socket = DrillSocket(server_b, patient_token)
    assert _join(doctor_socket, call_id)["type"] == "ack"
    assert _join(patient_socket, call_id)["type"] == "ack"
    before = [_chat(doctor_socket, call_id, "d1"), _chat(patient_socket, call_id, "p1")]
    last_acked = _chat(doctor_socket, call_id, "d2")
    patient_socket.event("chat.message", client_message_id="d2")

    # When Redis restarts (stopped, then started again empty), and the patient sends a message
    # as it goes down, whose answer may never come
    redis_instance.stop()
    patient_socket.try_send(
        {"type": "chat.send", "id": "p2", "data": {"call_id": call_id, "body": "body of p2", "client_message_id": "p2"}}
    )
    redis_instance.start()
    doctor_close, patient_close = doctor_socket.wait_closed(), patient_socket.wait_closed()

    # And each client reconnects with a new ticket, joins again, and re-sends what it is unsure of
    doctor_socket, doctor_refusals = reconnect(server_a, doctor_token)
    patient_socket, patient_refusals = reconnect(server_b, patient_token)
    doctor_rejoined = _join(doctor_socket, call_id)
    patient_rejoined = _join(patient_socket, call_id)
    resent = _chat(doctor_socket, call_id, "d2")
    _chat(patient_socket, call_id, "p2")
    since = patient_socket.mark()
    doctor_socket.send({"type": "signal.offer", "data": {"call_id": call_id, "to": str(patient.pk), "sdp": SDP}})
    offer = patient_socket.event("signal.offer", since=since)
    since = doctor_socket.mark()
    patient_socket.send({"type": "signal.answer", "data": {"call_id": call_id, "to": str(doctor.pk), "sdp": SDP}})
    answer = doctor_socket.event("signal.answer", since=since)
    after = _chat(doctor_socket, call_id, "d3")
    delivered_after = patient_socket.event("chat.message", client_message_id="d3")
    conversation_id = after["data"]["message"]["conversation_id"]
    messages_url = f"{server_b.http}/api/v1/conversations/{conversation_id}/messages/"
    history = http("GET", messages_url, patient_token)
    caught_up = http("GET", f"{messages_url}?after={last_acked['data']['message']['id']}", patient_token)

    # Then both were closed with 4503 and got back in
    assert (doctor_close, patient_close) == (LAYER_LOST, LAYER_LOST), processes.logs()
    assert all("500" not in refusal for refusal in doctor_refusals + patient_refusals)
    # And the join answered the call's current state: still ongoing, both in it
    for rejoined in (doctor_rejoined, patient_rejoined):
        assert rejoined["type"] == "ack", rejoined
        assert (rejoined["data"]["participant_status"], rejoined["data"]["waiting"]) == (
            ParticipantStatus.JOINED,
            False,
        )
        state = rejoined["data"]["call"]
        assert (state["id"], state["status"]) == (call_id, CallStatus.ONGOING)
        assert {str(doctor.pk), str(patient.pk)} <= {p["user"]["id"] for p in state["participants"]}
    # And signaling crossed the processes again, both ways
    assert offer["data"] == {"call_id": call_id, "from": str(doctor.pk), "sdp": SDP}
    assert answer["data"] == {"call_id": call_id, "from": str(patient.pk), "sdp": SDP}
    # And chat: the re-sent message answered the stored one, and nothing was lost or doubled
    assert [reply["type"] for reply in [*before, last_acked, after]] == ["ack"] * 4
    assert (resent["type"], resent["data"]["created"]) == ("ack", False)
    assert resent["data"]["message"]["id"] == last_acked["data"]["message"]["id"]
    assert delivered_after["data"]["id"] == after["data"]["message"]["id"]
    assert (history.status, caught_up.status) == (200, 200), (history.body, caught_up.body)
    assert [m["client_message_id"] for m in history.body["results"]] == ["d3", "p2", "d2", "p1", "d1"]
    assert [m["client_message_id"] for m in caught_up.body["results"]] == ["p2", "d3"]
    stored = Message.objects.filter(conversation_id=conversation_id).order_by("seq")
    assert [m.client_message_id for m in stored] == ["d1", "p1", "d2", "p2", "d3"]
    assert [m.seq for m in stored] == [1, 2, 3, 4, 5]
    # And the database shows the call going on, with one live connection per user
    ongoing_call.refresh_from_db()
    assert ongoing_call.status == CallStatus.ONGOING
    assert set(CallParticipant.objects.filter(call=ongoing_call).values_list("user_id", "status")) == {
        (doctor.pk, ParticipantStatus.JOINED),
        (patient.pk, ParticipantStatus.JOINED),
    }
    wait_for(
        lambda: PresenceConnection.objects.filter(user__in=[doctor, patient]).count() == 2,
        timeout=10,
        message="the closed connections stopped counting",
    )
    doctor_socket.close()
    patient_socket.close()
