"""The audit trail in the admin: read-only, filterable; no add, change or delete for anyone."""

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "outcome",
        "status_code",
        "ip_address",
    ]
    list_filter = ["action", "outcome", "object_type", "occurred_at"]
    search_fields = ["=object_id", "=actor__id", "=request_id", "=ip_address", "route"]
    date_hierarchy = "occurred_at"
    list_select_related = ["actor"]
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj: AuditEntry | None = None) -> list[str]:
        return [field.name for field in AuditEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return request.user.is_active and request.user.is_staff
