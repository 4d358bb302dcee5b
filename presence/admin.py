from django.contrib import admin

from presence.models import PresenceConnection, UserPresence


@admin.register(UserPresence)
class UserPresenceAdmin(admin.ModelAdmin):
    list_display = ["user", "status", "chosen_status", "last_seen_at"]
    list_filter = ["status"]
    search_fields = ["user__email", "user__last_name"]
    list_select_related = ["user"]
    readonly_fields = ["user", "status", "chosen_status", "last_seen_at", "updated_at"]


@admin.register(PresenceConnection)
class PresenceConnectionAdmin(admin.ModelAdmin):
    list_display = ["user", "opened_at", "last_heartbeat_at"]
    list_select_related = ["user"]
    readonly_fields = ["user", "channel_name", "opened_at", "last_heartbeat_at"]

    # Rows the socket writes and the sweep removes: read here, never added or edited by hand.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
