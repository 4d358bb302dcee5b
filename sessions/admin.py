"""Admin for sessions and payments: search, filters, and the confirm / cancel / mark paid / mark
refunded actions, which call the same services as the API (so the same rules and conditional
updates apply; a session in the wrong state is reported, not forced)."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from core.exceptions import ApplicationError
from sessions import services
from sessions.models import Payment, Session


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "status", "amount", "currency", "source", "provider_payment_id", "note"]
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "scheduled_start",
        "doctor",
        "patient",
        "status",
        "payment_status",
        "price",
        "currency",
        "no_show_party",
        "refund_requested_at",
    ]
    list_filter = ["status", "payment_status", "session_type", "no_show_party", "scheduled_start"]
    search_fields = [
        "=id",
        "doctor__email",
        "doctor__last_name",
        "patient__email",
        "patient__last_name",
    ]
    date_hierarchy = "scheduled_start"
    list_select_related = ["doctor", "patient"]
    raw_id_fields = ["doctor", "patient", "cancelled_by", "created_by"]
    readonly_fields = [
        "id",
        "blocked_until",
        "status",
        "payment_status",
        "confirmed_at",
        "actual_start",
        "actual_end",
        "doctor_joined_at",
        "patient_joined_at",
        "no_show_party",
        "refund_requested_at",
        "cancelled_by",
        "cancelled_at",
        "created_by",
        "created_at",
        "updated_at",
    ]
    inlines = [PaymentInline]
    actions = ["confirm_sessions", "cancel_sessions", "mark_paid", "mark_refunded"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Bookings go through session_book (overlap, buffer, verified doctor); the API does that.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        # Times and statuses change only through the services (actions here, or the API).
        return False

    def _apply(self, request: HttpRequest, queryset: QuerySet[Session], action: Callable, done: str) -> None:
        changed = 0
        for session in queryset:
            try:
                action(session=session, user=request.user)
            except ApplicationError as error:
                self.message_user(request, f"Session {session.pk}: {error.message}", level=messages.WARNING)
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} session(s) {done}.", level=messages.SUCCESS)

    @admin.action(description="Confirm selected sessions")
    def confirm_sessions(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        self._apply(request, queryset, services.session_confirm, "confirmed")

    @admin.action(description="Cancel selected sessions")
    def cancel_sessions(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        self._apply(request, queryset, services.session_cancel, "cancelled")

    @admin.action(description="Mark selected sessions paid")
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        self._apply(request, queryset, services.session_mark_paid, "marked paid")

    @admin.action(description="Mark selected sessions refunded")
    def mark_refunded(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        self._apply(request, queryset, services.session_mark_refunded, "marked refunded")


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "kind", "status", "amount", "currency", "source", "created_at"]
    list_filter = ["kind", "status", "source"]
    search_fields = ["=id", "=session__id", "provider_payment_id", "provider_event_id"]
    list_select_related = ["session"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Payment | None = None) -> bool:
        return False
