"""Admin for calls: participants, recording consents and the event history inline, filters, and
an "end call" action that goes through the same state machine as the API (participants are told,
the session completes). Recording consents are evidence: read-only here and in their own list.
The participant limit is checked by the model field's validator, the same as the API's."""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from core.exceptions import ApplicationError
from video_calls.models import ROOM_STATUSES, Call, CallEvent, CallParticipant, EndReason, RecordingConsent
from video_calls.selectors.calls import participants_with_users
from video_calls.services.common import lock_call
from video_calls.services.lifecycle import call_finish


class CallParticipantInline(admin.TabularInline):
    model = CallParticipant
    extra = 0
    can_delete = False
    fields = [
        "user",
        "display_name",
        "role",
        "status",
        "waiting_since",
        "admitted_at",
        "first_joined_at",
        "joined_at",
        "left_at",
        "connected_seconds",
        "audio_enabled",
        "video_enabled",
        "screen_sharing",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False


class CallEventInline(admin.TabularInline):
    model = CallEvent
    extra = 0
    can_delete = False
    fields = ["at", "type", "actor", "subject", "data"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False


class RecordingConsentInline(admin.TabularInline):
    model = RecordingConsent
    extra = 0
    can_delete = False
    fields = ["user", "consented_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Call | None = None) -> bool:
        return False


@admin.register(RecordingConsent)
class RecordingConsentAdmin(admin.ModelAdmin):
    """Who agreed to be recorded in which call, and when; nobody adds, edits or deletes one."""

    list_display = ["consented_at", "call", "user"]
    list_filter = ["consented_at"]
    search_fields = ["call__id", "user__email"]
    date_hierarchy = "consented_at"
    list_select_related = ["call", "user"]
    fields = ["call", "user", "consented_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RecordingConsent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RecordingConsent | None = None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    # Names rather than UUIDs (a short id links to the call); times in the staff member's zone
    # (staff/middleware.py), named on the admin's index.
    list_display = [
        "short_id",
        "kind",
        "media",
        "status",
        "host_name",
        "participant_names",
        "created_at",
        "duration_seconds",
        "end_reason",
    ]
    list_filter = ["status", "kind", "media", "end_reason", "waiting_room_enabled", "recording_enabled", "created_at"]
    search_fields = ["id", "room_name", "session__id", "initiated_by__email", "host__email"]
    date_hierarchy = "created_at"
    list_select_related = ["session", "host"]
    inlines = [CallParticipantInline, RecordingConsentInline, CallEventInline]
    actions = ["end_calls"]
    # Status and times change only through the state machine; the planned times and recording
    # only through the API, which applies the rules once the call started and tells participants.
    readonly_fields = [
        "scheduled_start",
        "scheduled_end",
        "recording_enabled",
        "auto_recording",
        "kind",
        "media",
        "session",
        "room_name",
        "status",
        "initiated_by",
        "host",
        "passcode_hash",
        "created_at",
        "accepted_at",
        "started_at",
        "ended_at",
        "duration_seconds",
        "end_reason",
        "ended_by",
        "updated_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Call]:
        return super().get_queryset(request).prefetch_related(participants_with_users())

    @admin.display(description="Call", ordering="created_at")
    def short_id(self, call: Call) -> str:
        return call.title or str(call.pk)[:8]

    @admin.display(description="Host", ordering="host__last_name")
    def host_name(self, call: Call) -> str:
        return call.host.shown_name if call.host else "-"

    @admin.display(description="Participants")
    def participant_names(self, call: Call) -> str:
        return ", ".join(participant.user.shown_name for participant in call.participants.all()) or "-"

    @admin.action(description="End the selected calls for everyone")
    def end_calls(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        ended = skipped = 0
        for call in queryset.filter(status__in=ROOM_STATUSES):
            try:
                with transaction.atomic():
                    call_finish(
                        call=lock_call(call), at=timezone.now(), reason=EndReason.STAFF_ENDED, actor=request.user
                    )
                ended += 1
            except ApplicationError:
                skipped += 1
        skipped += queryset.exclude(status__in=ROOM_STATUSES).count()
        self.message_user(request, f"Ended {ended} call(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} call(s) were not live and were left alone.", messages.WARNING)
