"""Call history list and call detail: scoped to who asks, filtered and ordered, with a quality
assessment per row and a query count that does not grow with the number of calls."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.assertions import assert_error
from tests.factories import DoctorFactory, PatientFactory
from tests.video_calls.factories import (
    CallEventFactory,
    CallFactory,
    CallParticipantFactory,
    CallQualitySampleFactory,
    SessionFactory,
)
from video_calls.models import (
    Call,
    CallEventType,
    CallKind,
    CallMedia,
    CallParticipant,
    CallStatus,
    ParticipantRole,
    ParticipantStatus,
)

pytestmark = pytest.mark.django_db

HISTORY_URL = "/api/v1/calls/history/"


def detail_url(call_id) -> str:
    return f"/api/v1/calls/{call_id}/"


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def call_between(doctor, patient, **fields) -> Call:
    """A call the doctor started with the patient; both took part."""
    call = CallFactory(initiated_by=doctor, **fields)
    CallParticipantFactory(call=call, user=doctor, role=ParticipantRole.DOCTOR, status=ParticipantStatus.LEFT)
    CallParticipantFactory(call=call, user=patient, role=ParticipantRole.PATIENT, status=ParticipantStatus.LEFT)
    return call


def created_on(call: Call, moment: datetime) -> Call:
    Call.objects.filter(pk=call.pk).update(created_at=moment)
    call.refresh_from_db()
    return call


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- Rows ---------------------------------------------------------------------------------------


def test_a_patient_sees_their_calls_newest_first_with_the_other_side_named(doctor, patient, patient_client):
    older = created_on(call_between(doctor, patient, completed=True), timezone.now() - timedelta(days=2))
    newer = call_between(doctor, patient, status=CallStatus.MISSED, media=CallMedia.VOICE, end_reason="ring_timeout")
    call_between(DoctorFactory(), PatientFactory(), completed=True)  # someone else's

    response = patient_client.get(HISTORY_URL)

    assert ids(response) == [str(newer.id), str(older.id)]
    assert response.json()["count"] == 2
    assert response.json()["results"][1] == {
        "id": str(older.id),
        "kind": "ad_hoc",
        "media": "video",
        "status": "completed",
        "session_id": None,
        "initiated_by": {"id": str(doctor.id), "name": "Gregory House", "role": "doctor"},
        "created_at": iso(older.created_at),
        "accepted_at": iso(older.accepted_at),
        "started_at": iso(older.started_at),
        "ended_at": iso(older.ended_at),
        "duration_seconds": 1200,
        "end_reason": "hangup",
        "quality_assessment": None,
        "other_participants": [
            {"user_id": str(doctor.id), "name": "Gregory House", "role": "doctor", "status": "left"}
        ],
    }


def test_the_doctor_sees_the_patient_as_the_other_participant(doctor, patient, doctor_client):
    call_between(doctor, patient, completed=True)

    response = doctor_client.get(HISTORY_URL)

    [row] = response.json()["results"]
    assert row["other_participants"] == [
        {"user_id": str(patient.id), "name": "Alice Patient", "role": "patient", "status": "left"}
    ]


def test_a_call_the_user_started_without_a_participant_row_is_listed(patient, patient_client):
    call = CallFactory(initiated_by=patient, status=CallStatus.CANCELLED)

    response = patient_client.get(HISTORY_URL)

    assert ids(response) == [str(call.id)]


def test_staff_see_every_call_with_all_participants(doctor, patient, staff_client):
    mine = call_between(doctor, patient)
    theirs = call_between(DoctorFactory(), PatientFactory())

    response = staff_client.get(HISTORY_URL)

    assert set(ids(response)) == {str(mine.id), str(theirs.id)}
    assert all(len(row["other_participants"]) == 2 for row in response.json()["results"])


def test_history_needs_authentication(anon_client):
    assert_error(anon_client.get(HISTORY_URL), 401, "NOT_AUTHENTICATED")


# --- Quality assessment on rows -----------------------------------------------------------------


def test_each_row_is_assessed_by_its_worst_participant(doctor, patient, patient_client):
    good = call_between(doctor, patient, completed=True)
    for participant in good.participants.all():
        CallQualitySampleFactory(participant=participant, rtt_ms=60, packet_loss_percent="0.10", jitter_ms=10)
    fair = call_between(doctor, patient, completed=True)
    doctor_leg, patient_leg = fair.participants.order_by("role")  # doctor, patient
    CallQualitySampleFactory(participant=doctor_leg, rtt_ms=60, packet_loss_percent="0.10", jitter_ms=10)
    CallQualitySampleFactory(participant=patient_leg, rtt_ms=100, packet_loss_percent="3.00", jitter_ms=10)
    CallQualitySampleFactory(participant=patient_leg, rtt_ms=120, packet_loss_percent="1.00", jitter_ms=12)
    poor = call_between(doctor, patient, completed=True)
    CallQualitySampleFactory(
        participant=poor.participants.first(), rtt_ms=900, packet_loss_percent=None, jitter_ms=None
    )
    unmeasured = call_between(doctor, patient, completed=True)
    CallQualitySampleFactory(
        participant=unmeasured.participants.first(), rtt_ms=None, packet_loss_percent=None, jitter_ms=None
    )

    response = patient_client.get(HISTORY_URL)

    assessments = {row["id"]: row["quality_assessment"] for row in response.json()["results"]}
    assert assessments == {str(good.id): "good", str(fair.id): "fair", str(poor.id): "poor", str(unmeasured.id): None}


# --- Filters and ordering -----------------------------------------------------------------------


@pytest.fixture
def assorted_calls(doctor, patient):
    session = SessionFactory(doctor=doctor, patient=patient)
    return {
        "video_completed": call_between(doctor, patient, completed=True),
        "voice_missed": call_between(doctor, patient, media=CallMedia.VOICE, status=CallStatus.MISSED),
        "voice_declined": call_between(doctor, patient, media=CallMedia.VOICE, status=CallStatus.DECLINED),
        "session_ongoing": call_between(doctor, patient, kind=CallKind.SESSION, session=session),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"media": "voice"}, {"voice_missed", "voice_declined"}),
        ({"media": "video"}, {"video_completed", "session_ongoing"}),
        ({"kind": "session"}, {"session_ongoing"}),
        ({"kind": "ad_hoc", "media": "video"}, {"video_completed"}),
        ({"status": "missed"}, {"voice_missed"}),
        ({"status": ["missed", "completed"]}, {"voice_missed", "video_completed"}),
    ],
)
def test_history_filters_by_kind_media_and_status(assorted_calls, patient_client, query, expected):
    response = patient_client.get(HISTORY_URL, query)

    assert set(ids(response)) == {str(assorted_calls[name].id) for name in expected}


def test_history_filters_by_session(assorted_calls, patient_client):
    session_id = assorted_calls["session_ongoing"].session_id

    response = patient_client.get(HISTORY_URL, {"session": str(session_id)})

    assert ids(response) == [str(assorted_calls["session_ongoing"].id)]


def test_date_bounds_are_whole_utc_days_inclusive(doctor, patient, patient_client):
    before = created_on(call_between(doctor, patient), datetime(2025, 3, 9, 23, 59, 59, tzinfo=UTC))
    first_moment = created_on(call_between(doctor, patient), datetime(2025, 3, 10, 0, 0, 0, tzinfo=UTC))
    last_moment = created_on(call_between(doctor, patient), datetime(2025, 3, 12, 23, 59, 59, tzinfo=UTC))
    after = created_on(call_between(doctor, patient), datetime(2025, 3, 13, 0, 0, 0, tzinfo=UTC))

    between = patient_client.get(HISTORY_URL, {"date_from": "2025-03-10", "date_to": "2025-03-12"})
    since = patient_client.get(HISTORY_URL, {"date_from": "2025-03-13"})
    until = patient_client.get(HISTORY_URL, {"date_to": "2025-03-09"})

    assert ids(between) == [str(last_moment.id), str(first_moment.id)]
    assert ids(since) == [str(after.id)]
    assert ids(until) == [str(before.id)]


def test_extreme_dates_are_accepted(doctor, patient, patient_client):
    call = call_between(doctor, patient)

    response = patient_client.get(HISTORY_URL, {"date_from": "0001-01-01", "date_to": "9999-12-31"})

    assert ids(response) == [str(call.id)]


def test_ordering_by_duration_puts_calls_without_one_last_both_ways(doctor, patient, patient_client):
    short = call_between(doctor, patient, completed=True, duration_seconds=60)
    long = call_between(doctor, patient, completed=True, duration_seconds=3600)
    unfinished = call_between(doctor, patient, status=CallStatus.MISSED)

    ascending = patient_client.get(HISTORY_URL, {"ordering": "duration_seconds"})
    descending = patient_client.get(HISTORY_URL, {"ordering": "-duration_seconds"})

    assert ids(ascending) == [str(short.id), str(long.id), str(unfinished.id)]
    assert ids(descending) == [str(long.id), str(short.id), str(unfinished.id)]


def test_ordering_oldest_first(doctor, patient, patient_client):
    old = created_on(call_between(doctor, patient), timezone.now() - timedelta(hours=3))
    new = call_between(doctor, patient)

    response = patient_client.get(HISTORY_URL, {"ordering": "created_at"})

    assert ids(response) == [str(old.id), str(new.id)]


def test_history_is_paginated(doctor, patient, patient_client):
    for _ in range(3):
        call_between(doctor, patient)

    response = patient_client.get(HISTORY_URL, {"page_size": 2, "page": 2})

    body = response.json()
    assert (body["count"], len(body["results"]), body["next"]) == (3, 1, None)
    assert body["previous"] is not None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"media": "fax"}, "media"),
        ({"kind": "conference"}, "kind"),
        ({"status": "lost"}, "status"),
        ({"session": "not-a-uuid"}, "session"),
        ({"date_from": "2025-13-01"}, "date_from"),
        ({"date_to": "yesterday"}, "date_to"),
        ({"date_from": "2025-03-12", "date_to": "2025-03-10"}, "date_to"),
        ({"ordering": "room_name"}, "ordering"),
        ({"ordering": "-passcode_hash"}, "ordering"),
    ],
)
def test_bad_filters_are_refused_with_the_field_named(patient_client, query, field):
    response = patient_client.get(HISTORY_URL, query)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == [field]
    assert error["details"][field][0]["message"]


def test_a_page_past_the_end_is_not_found(patient_client):
    assert_error(patient_client.get(HISTORY_URL, {"page": 5}), 404, "NOT_FOUND")


# --- Query budget -------------------------------------------------------------------------------


def _bulk_calls(count: int, *, doctor, patient) -> None:
    """``count`` completed calls with two participants each, written in a few statements."""
    calls = Call.objects.bulk_create(
        [
            Call(
                kind=CallKind.AD_HOC,
                media=CallMedia.VOICE if index % 3 else CallMedia.VIDEO,
                status=CallStatus.COMPLETED,
                initiated_by=doctor,
                duration_seconds=60 + index,
            )
            for index in range(count)
        ],
        batch_size=500,
    )
    CallParticipant.objects.bulk_create(
        [
            CallParticipant(call=call, user=user, role=role, status=ParticipantStatus.LEFT)
            for call in calls
            for user, role in ((doctor, ParticipantRole.DOCTOR), (patient, ParticipantRole.PATIENT))
        ],
        batch_size=1000,
    )


# user; count; the page with initiators and quality figures; the page's participants with users;
# the audit entry
HISTORY_QUERIES = 5


def test_the_history_costs_the_same_queries_with_10_or_10000_calls(
    doctor, patient, patient_client, django_assert_num_queries
):
    _bulk_calls(10, doctor=doctor, patient=patient)
    CallQualitySampleFactory(participant=CallParticipant.objects.filter(user=patient).first())
    with django_assert_num_queries(HISTORY_QUERIES):
        few = patient_client.get(HISTORY_URL, {"page_size": 100})
    _bulk_calls(9_990, doctor=doctor, patient=patient)

    with django_assert_num_queries(HISTORY_QUERIES):
        many = patient_client.get(HISTORY_URL, {"page_size": 100})
    with django_assert_num_queries(HISTORY_QUERIES):
        filtered = patient_client.get(
            HISTORY_URL, {"media": "voice", "status": "completed", "ordering": "-duration_seconds", "page": 3}
        )

    assert (few.json()["count"], len(few.json()["results"])) == (10, 10)
    assert (many.json()["count"], len(many.json()["results"])) == (10_000, 100)
    assert len(filtered.json()["results"]) == 20
    assert {row["media"] for row in filtered.json()["results"]} == {"voice"}
    assert all(len(row["other_participants"]) == 1 for row in many.json()["results"])


# --- Detail -------------------------------------------------------------------------------------


def test_detail_has_times_participants_with_quality_summaries_and_the_timeline(doctor, patient, patient_client):
    call = call_between(doctor, patient, completed=True)
    doctor_leg = call.participants.get(user=doctor)
    patient_leg = call.participants.get(user=patient)
    CallParticipant.objects.filter(pk=patient_leg.pk).update(connected_seconds=1150, video_enabled=False)
    for rtt, loss, jitter, audio in ((40, "0.10", 10, "excellent"), (80, "0.50", 20, "fair"), (60, "0.30", 30, "good")):
        CallQualitySampleFactory(
            participant=doctor_leg, rtt_ms=rtt, packet_loss_percent=loss, jitter_ms=jitter, audio_quality=audio
        )
    CallQualitySampleFactory(participant=patient_leg, rtt_ms=500, packet_loss_percent="7.00", video_quality="poor")
    start = call.created_at
    ended = CallEventFactory(call=call, type=CallEventType.ENDED, actor=doctor, at=start + timedelta(minutes=20))
    initiated = CallEventFactory(call=call, type=CallEventType.INITIATED, actor=doctor, at=start)
    joined = CallEventFactory(
        call=call, type=CallEventType.JOINED, actor=patient, subject=patient, at=start + timedelta(seconds=30)
    )

    response = patient_client.get(detail_url(call.id))

    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in ("id", "status", "created_at", "accepted_at", "started_at", "ended_at")} == {
        "id": str(call.id),
        "status": "completed",
        "created_at": iso(call.created_at),
        "accepted_at": iso(call.accepted_at),
        "started_at": iso(call.started_at),
        "ended_at": iso(call.ended_at),
    }
    assert (body["duration_seconds"], body["end_reason"], body["quality_assessment"]) == (1200, "hangup", "poor")
    assert body["host"] == body["initiated_by"] == {"id": str(doctor.id), "name": "Gregory House", "role": "doctor"}
    doctor_row, patient_row = body["participants"]
    assert doctor_row["user"] == {"id": str(doctor.id), "name": "Gregory House", "role": "doctor"}
    assert doctor_row["quality"] == {
        "sample_count": 3,
        "avg_rtt_ms": 60.0,
        "min_rtt_ms": 40,
        "max_rtt_ms": 80,
        "avg_packet_loss_percent": 0.3,
        "avg_jitter_ms": 20.0,
        "avg_audio_bitrate_kbps": 64.0,
        "avg_video_bitrate_kbps": 2500.0,
        "avg_frame_rate": 30.0,
        "worst_audio_quality": "fair",
        "worst_video_quality": "excellent",
        "assessment": "good",
    }
    assert patient_row["role"] == "patient"
    assert patient_row["status"] == "left"
    assert patient_row["connected_seconds"] == 1150
    assert (patient_row["audio_enabled"], patient_row["video_enabled"], patient_row["screen_sharing"]) == (
        True,
        False,
        False,
    )
    assert patient_row["joined_at"] == iso(patient_leg.joined_at)
    assert patient_row["quality"]["assessment"] == "poor"
    assert patient_row["quality"]["worst_video_quality"] == "poor"
    assert [event["type"] for event in body["timeline"]] == ["initiated", "joined", "ended"]
    assert body["timeline"][1] == {
        "type": "joined",
        "at": iso(joined.at),
        "actor": {"id": str(patient.id), "name": "Alice Patient", "role": "patient"},
        "subject": {"id": str(patient.id), "name": "Alice Patient", "role": "patient"},
        "data": {},
    }
    assert body["timeline"][0]["at"] == iso(initiated.at)
    assert body["timeline"][2]["at"] == iso(ended.at)


def test_a_participant_without_samples_has_an_empty_summary(doctor, patient, patient_client):
    call = call_between(doctor, patient)

    response = patient_client.get(detail_url(call.id))

    summaries = [row["quality"] for row in response.json()["participants"]]
    assert summaries == [summaries[0]] * 2
    assert summaries[0]["sample_count"] == 0
    assert summaries[0]["assessment"] is None
    assert summaries[0]["avg_rtt_ms"] is None


def test_another_users_call_is_not_found(doctor, patient, outsider_client):
    call = call_between(doctor, patient)

    assert_error(outsider_client.get(detail_url(call.id)), 404, "CALL_NOT_FOUND")


def test_an_unknown_call_is_not_found(patient_client):
    assert_error(patient_client.get(detail_url("00000000-0000-4000-8000-000000000000")), 404, "CALL_NOT_FOUND")


def test_a_malformed_call_id_is_not_found(patient_client):
    assert_error(patient_client.get("/api/v1/calls/12345/"), 404, "NOT_FOUND")


def test_staff_see_any_calls_detail(doctor, patient, staff_client):
    call = call_between(doctor, patient)

    response = staff_client.get(detail_url(call.id))

    assert response.status_code == 200
    assert len(response.json()["participants"]) == 2


def test_detail_costs_the_same_queries_however_big_the_call(doctor, patient, patient_client, django_assert_num_queries):
    small = call_between(doctor, patient)
    big = call_between(doctor, patient)
    for _ in range(4):
        guest = CallParticipantFactory(call=big, user=PatientFactory(), role=ParticipantRole.GUEST)
        CallQualitySampleFactory.create_batch(3, participant=guest)
        CallEventFactory.create_batch(3, call=big, actor=guest.user, type=CallEventType.JOINED)

    # user; call with initiator, host and quality figures; participants; events; quality summary;
    # the audit entry
    with django_assert_num_queries(6):
        patient_client.get(detail_url(small.id))
    with django_assert_num_queries(6):
        response = patient_client.get(detail_url(big.id))

    assert len(response.json()["participants"]) == 6
    assert len(response.json()["timeline"]) == 12
