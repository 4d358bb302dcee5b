"""Querysets compiled once (core/compiled.py): the same rows as the queryset they come from, on
whichever database the suite runs against, for every value they are run with."""

import uuid

import django
import pytest
from django.db import transaction
from django.db.models import Count

from core.compiled import VERIFIED_DJANGO, CompiledQuery, prefetched
from core.exceptions import NotFound
from tests.video_calls.factories import CallFactory, CallParticipantFactory
from video_calls.models import Call, CallParticipant, ParticipantStatus
from video_calls.selectors.calls import call_get_for_user, call_list_own

pytestmark = pytest.mark.django_db

joined_rows = CompiledQuery(
    lambda call_id: CallParticipant.objects.filter(call_id=call_id, status=ParticipantStatus.JOINED).order_by("id"),
    "call_id",
)


def test_a_compiled_query_reads_what_its_queryset_reads_for_each_value():
    calls = [CallFactory(), CallFactory()]
    for call in calls:
        CallParticipantFactory(call=call, status=ParticipantStatus.JOINED)
        CallParticipantFactory(call=call, status=ParticipantStatus.JOINED)
        CallParticipantFactory(call=call, status=ParticipantStatus.LEFT)

    for call in calls:  # the second run uses the SQL the first compiled
        expected = list(CallParticipant.objects.filter(call=call, status=ParticipantStatus.JOINED).order_by("id"))
        assert list(joined_rows.all(call_id=call.pk)) == expected
        assert [row.status for row in joined_rows.all(call_id=str(call.pk))] == ["joined", "joined"]
    assert joined_rows.first(call_id=uuid.uuid4()) is None


def test_rows_come_back_as_the_model_reads_them():
    call = CallFactory()
    participant = CallParticipantFactory(call=call, status=ParticipantStatus.JOINED)

    row = joined_rows.first(call_id=call.pk)

    assert row.pk == participant.pk
    assert row.user_id == participant.user_id and isinstance(row.user_id, uuid.UUID)
    assert row.invited_at == participant.invited_at


def test_the_join_lookup_answers_only_the_calls_the_user_may_see(doctor, patient, outsider):
    own = CallFactory(initiated_by=doctor)
    CallParticipantFactory(call=own, user=patient)
    others = CallFactory()

    with transaction.atomic():
        assert call_get_for_user(user=doctor, call_id=own.pk, lock=True) == own  # initiated it
        assert call_get_for_user(user=patient, call_id=own.pk, lock=True) == own  # takes part
        for user, call in [(outsider, own), (patient, others), (doctor, others)]:
            assert not call_list_own(user=user).filter(pk=call.pk).exists()
            with pytest.raises(NotFound) as refused:
                call_get_for_user(user=user, call_id=call.pk, lock=True)
            assert refused.value.code == "CALL_NOT_FOUND"


def test_related_rows_asked_for_come_filled_in(django_assert_num_queries):
    call = CallFactory()
    participant = CallParticipantFactory(call=call)
    with_users = CompiledQuery(
        lambda call_id: CallParticipant.objects.select_related("user", "call").filter(call_id=call_id), "call_id"
    )

    with django_assert_num_queries(1):
        row = with_users.first(call_id=call.pk)
        assert (row.user.email, row.call.room_name) == (participant.user.email, call.room_name)


def test_prefetched_rows_answer_the_relation_without_a_query(django_assert_num_queries):
    call = CallFactory()
    CallParticipantFactory(call=call)
    CallParticipantFactory(call=call)
    rows = list(CallParticipant.objects.filter(call=call).order_by("id"))
    call = Call.objects.get(pk=call.pk)

    prefetched(call, "participants", rows)

    with django_assert_num_queries(0):
        assert list(call.participants.all()) == rows


def test_an_annotated_builder_is_refused():
    query = CompiledQuery(lambda call_id: Call.objects.filter(pk=call_id).annotate(n=Count("participants")), "call_id")

    with pytest.raises(ValueError, match="annotations"):
        query.first(call_id=uuid.uuid4())


def test_the_django_release_the_compiler_was_read_against_is_installed():
    """A failure here: read ``ModelIterable`` (django/db/models/query.py) of the installed Django
    again, check what core/compiled.py takes from the compiler, then update ``VERIFIED_DJANGO``."""
    assert f"{django.VERSION[0]}.{django.VERSION[1]}" == VERIFIED_DJANGO


def test_a_parameter_the_query_does_not_use_is_refused():
    query = CompiledQuery(lambda call_id, user_id: Call.objects.filter(pk=call_id), "call_id", "user_id")

    with pytest.raises(ValueError, match="user_id"):
        query.first(call_id=uuid.uuid4(), user_id=uuid.uuid4())
