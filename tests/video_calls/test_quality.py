"""Quality metrics: participants connected to a call submit samples (validated, throttled,
broadcast as ``quality.recorded``); anyone who may see the call lists them."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.events import call_group
from tests.assertions import assert_error
from tests.conftest import client_for
from tests.factories import PatientFactory
from tests.video_calls.call_helpers import EventRecorder
from tests.video_calls.factories import CallFactory, CallParticipantFactory, CallQualitySampleFactory
from video_calls.models import CallQualitySample, CallStatus, ParticipantRole, ParticipantStatus

pytestmark = pytest.mark.django_db

FULL_SAMPLE = {
    "rtt_ms": 45.4,
    "packet_loss_percent": 0.225,
    "jitter_ms": 8,
    "audio_bitrate_kbps": 64,
    "video_bitrate_kbps": 2500,
    "resolution_width": 1280,
    "resolution_height": 720,
    "frame_rate": 29.97,
    "cpu_percent": 25.5,
    "memory_mb": 512,
    "audio_quality": "good",
    "video_quality": "excellent",
}


def quality_url(call_id) -> str:
    return f"/api/v1/calls/{call_id}/quality/"


@pytest.fixture
def live_call(doctor, patient):
    """An ongoing video call between the doctor and the patient, both connected."""
    call = CallFactory(initiated_by=doctor)
    CallParticipantFactory(call=call, user=doctor, role=ParticipantRole.DOCTOR)
    CallParticipantFactory(call=call, user=patient, role=ParticipantRole.PATIENT)
    return call


@pytest.fixture
def call_events():
    """Subscribe to a call's group before acting; ``received()`` then returns what arrived."""

    def subscribe(call_id):
        recorder = EventRecorder()
        recorder.listen_group(call_group(call_id))
        return lambda timeout=0.3: recorder.drain_group(call_group(call_id), timeout)

    return subscribe


# --- Submitting ---------------------------------------------------------------------------------


def test_participant_records_a_sample_and_the_call_hears_it(
    live_call, patient, patient_client, call_events, django_capture_on_commit_callbacks, time_machine
):
    now = timezone.now().replace(microsecond=0)
    time_machine.move_to(now, tick=False)
    received = call_events(live_call.id)

    with django_capture_on_commit_callbacks(execute=True):
        response = patient_client.post(quality_url(live_call.id), FULL_SAMPLE, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    sample = CallQualitySample.objects.get()
    assert body == {
        "id": sample.pk,
        "call_id": str(live_call.id),
        "user": {"id": str(patient.id), "name": "Alice Patient", "role": "patient"},
        "role": "patient",
        "recorded_at": now.isoformat().replace("+00:00", "Z"),
        "rtt_ms": 45,
        "packet_loss_percent": 0.23,
        "jitter_ms": 8,
        "audio_bitrate_kbps": 64,
        "video_bitrate_kbps": 2500,
        "resolution_width": 1280,
        "resolution_height": 720,
        "frame_rate": 29.97,
        "cpu_percent": 25.5,
        "memory_mb": 512,
        "audio_quality": "good",
        "video_quality": "excellent",
        "assessment": "good",
    }
    assert sample.participant.user == patient
    assert sample.recorded_at == now
    assert sample.packet_loss_percent == Decimal("0.23")
    assert sample.frame_rate == Decimal("29.97")
    assert received() == [
        {
            "type": "quality.recorded",
            "data": {
                "call_id": str(live_call.id),
                "sample_id": sample.pk,
                "user_id": str(patient.id),
                "recorded_at": now.isoformat().replace("+00:00", "Z"),
                "rtt_ms": 45,
                "packet_loss_percent": 0.23,
                "jitter_ms": 8,
                "audio_bitrate_kbps": 64,
                "video_bitrate_kbps": 2500,
                "resolution_width": 1280,
                "resolution_height": 720,
                "frame_rate": 29.97,
                "audio_quality": "good",
                "video_quality": "excellent",
                "assessment": "good",
            },
        }
    ]


def test_a_partial_sample_stores_only_what_was_measured(
    live_call, doctor_client, call_events, django_capture_on_commit_callbacks
):
    received = call_events(live_call.id)

    with django_capture_on_commit_callbacks(execute=True):
        response = doctor_client.post(quality_url(live_call.id), {"rtt_ms": 420, "jitter_ms": None}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["rtt_ms"] == 420
    assert body["packet_loss_percent"] is None
    assert body["audio_quality"] is None
    assert body["assessment"] == "poor"
    sample = CallQualitySample.objects.get()
    assert (sample.rtt_ms, sample.jitter_ms, sample.audio_quality) == (420, None, "")
    [event] = received()
    assert {name: event["data"][name] for name in ("rtt_ms", "jitter_ms", "audio_quality", "assessment")} == {
        "rtt_ms": 420,
        "jitter_ms": None,
        "audio_quality": None,
        "assessment": "poor",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rtt_ms", -1),
        ("rtt_ms", 60_001),
        ("rtt_ms", 10**30),
        ("rtt_ms", "fast"),
        ("rtt_ms", True),
        ("rtt_ms", [45]),
        ("rtt_ms", {"value": 45}),
        ("packet_loss_percent", -0.01),
        ("packet_loss_percent", 100.01),
        ("packet_loss_percent", "NaN"),
        ("packet_loss_percent", "Infinity"),
        ("jitter_ms", -5),
        ("jitter_ms", 1e12),
        ("audio_bitrate_kbps", -64),
        ("video_bitrate_kbps", 100_001),
        ("resolution_width", 0),
        ("resolution_width", 7681),
        ("resolution_height", -720),
        ("resolution_height", 4321),
        ("frame_rate", -1),
        ("frame_rate", 241),
        ("cpu_percent", 100.5),
        ("cpu_percent", -3),
        ("memory_mb", -1),
        ("memory_mb", 1_048_577),
        ("audio_quality", "superb"),
        ("video_quality", 5),
        ("video_quality", ""),
    ],
)
def test_negative_absurd_or_mistyped_metrics_are_refused_per_field(
    live_call, patient_client, call_events, django_capture_on_commit_callbacks, field, value
):
    received = call_events(live_call.id)
    sample = {"rtt_ms": 45, **({"resolution_width": 1280, "resolution_height": 720} if "resolution" in field else {})}
    sample[field] = value

    with django_capture_on_commit_callbacks(execute=True):
        response = patient_client.post(quality_url(live_call.id), sample, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == [field]
    assert error["details"][field][0]["code"]
    assert not CallQualitySample.objects.exists()
    assert received(timeout=0.1) == []


def test_a_number_too_large_for_a_float_is_refused(live_call, patient_client):
    response = patient_client.post(quality_url(live_call.id), '{"rtt_ms": 1e400}', content_type="application/json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["rtt_ms"]


def test_an_empty_sample_is_refused(live_call, patient_client):
    response = patient_client.post(quality_url(live_call.id), {"rtt_ms": None}, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"] == {"non_field_errors": [{"message": "Send at least one metric.", "code": "empty_sample"}]}


def test_a_resolution_needs_both_sides(live_call, patient_client):
    response = patient_client.post(quality_url(live_call.id), {"resolution_width": 1280}, format="json")

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"]["resolution_height"][0]["code"] == "incomplete_resolution"


def test_a_body_that_is_not_an_object_is_refused(live_call, patient_client):
    response = patient_client.post(quality_url(live_call.id), [1, 2], format="json")

    assert_error(response, 400, "VALIDATION_ERROR")
    assert not CallQualitySample.objects.exists()


# --- Who may submit -----------------------------------------------------------------------------


def test_someone_outside_the_call_is_told_it_does_not_exist(live_call, outsider_client):
    response = outsider_client.post(quality_url(live_call.id), {"rtt_ms": 45}, format="json")

    assert_error(response, 404, "CALL_NOT_FOUND")
    assert not CallQualitySample.objects.exists()


def test_staff_who_are_not_in_the_call_cannot_submit_for_it(live_call, staff_client):
    response = staff_client.post(quality_url(live_call.id), {"rtt_ms": 45}, format="json")

    assert_error(response, 404, "CALL_NOT_FOUND")


def test_an_unknown_call_is_not_found(patient_client):
    response = patient_client.post(quality_url("00000000-0000-4000-8000-000000000000"), {"rtt_ms": 45}, format="json")

    assert_error(response, 404, "CALL_NOT_FOUND")


def test_a_malformed_call_id_is_not_found(patient_client):
    response = patient_client.post("/api/v1/calls/not-a-uuid/quality/", {"rtt_ms": 45}, format="json")

    assert_error(response, 404, "NOT_FOUND")


def test_submitting_needs_authentication(live_call, anon_client):
    response = anon_client.post(quality_url(live_call.id), {"rtt_ms": 45}, format="json")

    assert_error(response, 401, "NOT_AUTHENTICATED")


@pytest.mark.parametrize(
    ("participant_status", "call_status"),
    [
        (ParticipantStatus.LEFT, CallStatus.ONGOING),
        (ParticipantStatus.INVITED, CallStatus.RINGING),
        (ParticipantStatus.WAITING, CallStatus.WAITING),
        (ParticipantStatus.REMOVED, CallStatus.ONGOING),
        (ParticipantStatus.JOINED, CallStatus.COMPLETED),
    ],
)
def test_a_participant_not_connected_to_an_ongoing_call_is_refused(
    patient, patient_client, participant_status, call_status
):
    call = CallFactory(status=call_status)
    CallParticipantFactory(call=call, user=patient, status=participant_status)

    response = patient_client.post(quality_url(call.id), {"rtt_ms": 45}, format="json")

    error = assert_error(response, 409, "NOT_IN_CALL")
    assert error["details"] == {"call_status": call_status, "participant_status": participant_status}
    assert not CallQualitySample.objects.exists()


# --- Throttle -----------------------------------------------------------------------------------


def test_one_sample_per_second_per_user_per_call(live_call, patient_client, time_machine):
    time_machine.move_to(timezone.now(), tick=False)

    first = patient_client.post(quality_url(live_call.id), {"rtt_ms": 45}, format="json")
    second = patient_client.post(quality_url(live_call.id), {"rtt_ms": 46}, format="json")
    time_machine.shift(timedelta(seconds=1.01))
    third = patient_client.post(quality_url(live_call.id), {"rtt_ms": 47}, format="json")

    assert first.status_code == 201
    error = assert_error(second, 429, "RATE_LIMITED")
    assert second["Retry-After"] == "1"
    assert error["details"] == {"retry_after": 1}
    assert third.status_code == 201
    assert list(CallQualitySample.objects.values_list("rtt_ms", flat=True)) == [45, 47]


def test_the_limit_is_separate_for_each_participant_and_each_call(
    live_call, patient, patient_client, doctor_client, time_machine
):
    other_call = CallFactory()
    CallParticipantFactory(call=other_call, user=patient)
    time_machine.move_to(timezone.now(), tick=False)

    by_patient = patient_client.post(quality_url(live_call.id), {"rtt_ms": 45}, format="json")
    by_doctor = doctor_client.post(quality_url(live_call.id), {"rtt_ms": 45}, format="json")
    by_patient_elsewhere = patient_client.post(quality_url(other_call.id), {"rtt_ms": 45}, format="json")

    assert [by_patient.status_code, by_doctor.status_code, by_patient_elsewhere.status_code] == [201, 201, 201]
    assert CallQualitySample.objects.count() == 3


def test_reading_samples_is_not_throttled(live_call, patient_client, time_machine):
    time_machine.move_to(timezone.now(), tick=False)

    statuses = [patient_client.get(quality_url(live_call.id)).status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


# --- Listing ------------------------------------------------------------------------------------


def _samples(call, count: int) -> list[CallQualitySample]:
    participants = list(call.participants.order_by("id"))
    start = timezone.now() - timedelta(minutes=10)
    return [
        CallQualitySampleFactory(
            participant=participants[index % len(participants)],
            recorded_at=start + timedelta(seconds=index),
            rtt_ms=40 + index,
        )
        for index in range(count)
    ]


def test_participants_list_the_samples_of_their_call_oldest_first(live_call, patient_client, doctor, patient):
    samples = _samples(live_call, 4)
    CallQualitySampleFactory()  # another call's sample

    response = patient_client.get(quality_url(live_call.id))

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [row["id"] for row in body["results"]] == [sample.pk for sample in samples]
    assert [row["user"]["id"] for row in body["results"]] == [str(doctor.id), str(patient.id)] * 2
    assert body["results"][0]["rtt_ms"] == 40
    assert body["results"][0]["packet_loss_percent"] == 0.2


def test_samples_can_be_narrowed_to_one_participant_and_paged(live_call, doctor_client, patient):
    _samples(live_call, 6)

    response = doctor_client.get(quality_url(live_call.id), {"participant": str(patient.id), "page_size": 2})

    body = response.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert {row["user"]["id"] for row in body["results"]} == {str(patient.id)}
    assert body["next"] is not None


def test_a_malformed_participant_filter_is_refused(live_call, patient_client):
    response = patient_client.get(quality_url(live_call.id), {"participant": "doctor"})

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == ["participant"]


def test_an_unknown_participant_filter_lists_nothing(live_call, patient_client):
    _samples(live_call, 2)

    response = patient_client.get(quality_url(live_call.id), {"participant": str(PatientFactory().id)})

    assert response.json()["count"] == 0


def test_outsiders_cannot_list_a_calls_samples(live_call, outsider_client):
    _samples(live_call, 1)

    response = outsider_client.get(quality_url(live_call.id))

    assert_error(response, 404, "CALL_NOT_FOUND")


def test_staff_list_any_calls_samples(live_call, staff_client):
    _samples(live_call, 2)

    response = staff_client.get(quality_url(live_call.id))

    assert response.json()["count"] == 2


def test_a_page_past_the_end_is_not_found(live_call, patient_client):
    response = patient_client.get(quality_url(live_call.id), {"page": 99})

    assert_error(response, 404, "NOT_FOUND")


def test_listing_costs_the_same_queries_for_few_or_many_samples(live_call, patient_client, django_assert_num_queries):
    _samples(live_call, 2)
    # user, call scope, count, page with participants and users, the audit entry
    with django_assert_num_queries(5):
        few = patient_client.get(quality_url(live_call.id))
    _samples(live_call, 40)

    with django_assert_num_queries(5):
        many = patient_client.get(quality_url(live_call.id))

    assert (len(few.json()["results"]), len(many.json()["results"])) == (2, 20)


def test_a_sample_submitted_by_http_appears_in_the_list(live_call, patient_client, doctor):
    client_for(doctor).post(quality_url(live_call.id), {"rtt_ms": 80, "packet_loss_percent": 2}, format="json")

    response = patient_client.get(quality_url(live_call.id))

    [row] = response.json()["results"]
    assert (row["user"]["id"], row["rtt_ms"], row["packet_loss_percent"], row["assessment"]) == (
        str(doctor.id),
        80,
        2.0,
        "fair",
    )
