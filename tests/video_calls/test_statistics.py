"""Call statistics: totals by status, kind and media and the average duration of completed
calls over a period, for the user's calls (staff: all calls), in one aggregate query."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from tests.assertions import assert_error
from tests.factories import DoctorFactory, PatientFactory
from tests.video_calls.factories import CallFactory, CallParticipantFactory
from video_calls.models import Call, CallKind, CallMedia, CallStatus, ParticipantRole, ParticipantStatus

pytestmark = pytest.mark.django_db

STATISTICS_URL = "/api/v1/calls/statistics/"

NO_STATUSES = dict.fromkeys(CallStatus.values, 0)


def call_aged(days: float, *, between: tuple, **fields) -> Call:
    """A call created ``days`` ago in which every user of ``between`` took part."""
    call = CallFactory(initiated_by=between[0], **fields)
    for user in between:
        CallParticipantFactory(call=call, user=user, status=ParticipantStatus.LEFT, role=ParticipantRole.GUEST)
    Call.objects.filter(pk=call.pk).update(created_at=timezone.now() - timedelta(days=days))
    return call


def completed(seconds: int) -> dict:
    return {"status": CallStatus.COMPLETED, "duration_seconds": seconds}


@pytest.fixture
def calls(doctor, patient, outsider, staff):
    pair = (doctor, patient)
    return {
        "video_1d": call_aged(1, between=pair, **completed(600)),
        "voice_missed_2d": call_aged(2, between=pair, media=CallMedia.VOICE, status=CallStatus.MISSED),
        "voice_10d": call_aged(10, between=pair, media=CallMedia.VOICE, **completed(1200)),
        "declined_40d": call_aged(40, between=pair, status=CallStatus.DECLINED),
        "session_80d": call_aged(80, between=pair, kind=CallKind.SESSION, **completed(300)),
        "video_100d": call_aged(100, between=pair, **completed(999)),
        "outsiders_1d": call_aged(1, between=(DoctorFactory(), outsider), **completed(5000)),
        "staff_group_1d": call_aged(1, between=(staff, PatientFactory()), kind=CallKind.GROUP, **completed(60)),
    }


def test_the_last_7_days_of_a_patients_calls(calls, patient_client, time_machine):
    now = timezone.now()
    time_machine.move_to(now, tick=False)

    response = patient_client.get(STATISTICS_URL, {"period": "7d"})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "scope": "all",
        "period_start": (now - timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        "period_end": now.isoformat().replace("+00:00", "Z"),
        "total": 2,
        "by_status": {**NO_STATUSES, "completed": 1, "missed": 1},
        "by_kind": {"session": 0, "ad_hoc": 2, "group": 0},
        "by_media": {"video": 1, "voice": 1},
        "average_duration_seconds": 600.0,
        "total_duration_seconds": 600,
    }


def test_30_days_is_the_default_period(calls, patient_client):
    default = patient_client.get(STATISTICS_URL).json()
    explicit = patient_client.get(STATISTICS_URL, {"period": "30d"}).json()

    assert default["total"] == explicit["total"] == 3
    assert default["by_status"] == {**NO_STATUSES, "completed": 2, "missed": 1}
    assert default["average_duration_seconds"] == 900.0


def test_the_last_90_days(calls, doctor_client):
    body = doctor_client.get(STATISTICS_URL, {"period": "90d"}).json()

    assert body["total"] == 5
    assert body["by_status"] == {**NO_STATUSES, "completed": 3, "missed": 1, "declined": 1}
    assert body["by_kind"] == {"session": 1, "ad_hoc": 4, "group": 0}
    assert body["by_media"] == {"video": 3, "voice": 2}
    assert body["average_duration_seconds"] == 700.0
    assert body["total_duration_seconds"] == 2100


def test_staff_count_every_call_or_only_their_own(calls, staff_client):
    everyone = staff_client.get(STATISTICS_URL, {"period": "7d"}).json()
    own = staff_client.get(STATISTICS_URL, {"period": "7d", "scope": "mine"}).json()

    assert (everyone["scope"], everyone["total"], everyone["average_duration_seconds"]) == ("all", 4, 1886.7)
    assert everyone["by_kind"] == {"session": 0, "ad_hoc": 3, "group": 1}
    assert (own["scope"], own["total"], own["by_kind"]["group"], own["average_duration_seconds"]) == (
        "mine",
        1,
        1,
        60.0,
    )


def test_for_a_patient_mine_and_all_are_the_same_calls(calls, patient_client, time_machine):
    time_machine.move_to(timezone.now(), tick=False)

    everyone = patient_client.get(STATISTICS_URL, {"period": "90d"}).json()
    own = patient_client.get(STATISTICS_URL, {"period": "90d", "scope": "mine"}).json()

    assert {**everyone, "scope": "mine"} == own


def test_whole_utc_days_from_and_to(doctor, patient, patient_client):
    pair = (doctor, patient)
    inside = [call_aged(0, between=pair, **completed(100)), call_aged(0, between=pair, **completed(300))]
    outside = [call_aged(0, between=pair, **completed(10_000)), call_aged(0, between=pair, **completed(10_000))]
    for call, moment in zip(
        [*inside, *outside],
        [
            datetime(2025, 3, 10, 0, 0, 0, tzinfo=UTC),
            datetime(2025, 3, 12, 23, 59, 59, tzinfo=UTC),
            datetime(2025, 3, 9, 23, 59, 59, tzinfo=UTC),
            datetime(2025, 3, 13, 0, 0, 0, tzinfo=UTC),
        ],
        strict=True,
    ):
        Call.objects.filter(pk=call.pk).update(created_at=moment)

    response = patient_client.get(STATISTICS_URL, {"date_from": "2025-03-10", "date_to": "2025-03-12"})

    body = response.json()
    assert (body["period_start"], body["period_end"]) == ("2025-03-10T00:00:00Z", "2025-03-13T00:00:00Z")
    assert (body["total"], body["average_duration_seconds"]) == (2, 200.0)


def test_an_open_ended_range(calls, patient_client):
    since = patient_client.get(STATISTICS_URL, {"date_from": "2000-01-01"}).json()
    until = patient_client.get(STATISTICS_URL, {"date_to": "9999-12-31"}).json()

    assert (since["period_end"], since["total"]) == (None, 6)
    assert (until["period_start"], until["period_end"], until["total"]) == (None, None, 6)


def test_no_completed_calls_means_no_average(patient_client):
    body = patient_client.get(STATISTICS_URL).json()

    assert (body["total"], body["average_duration_seconds"], body["total_duration_seconds"]) == (0, None, 0)


def test_statistics_are_one_aggregate_query(calls, staff_client, django_assert_num_queries):
    with django_assert_num_queries(3):  # the user, every figure in one SELECT, the audit entry
        response = staff_client.get(STATISTICS_URL, {"period": "90d"})

    assert response.json()["total"] == 7


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"period": "1y"}, "period"),
        ({"period": "7"}, "period"),
        ({"date_from": "2025-02-30"}, "date_from"),
        ({"date_to": "tomorrow"}, "date_to"),
        ({"date_from": "2025-03-12", "date_to": "2025-03-10"}, "date_to"),
        ({"period": "7d", "date_from": "2025-03-10"}, "non_field_errors"),
        ({"scope": "everyone"}, "scope"),
    ],
)
def test_bad_periods_and_dates_are_refused(patient_client, query, field):
    response = patient_client.get(STATISTICS_URL, query)

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert list(error["details"]) == [field]


def test_statistics_need_authentication(anon_client):
    assert_error(anon_client.get(STATISTICS_URL), 401, "NOT_AUTHENTICATED")
