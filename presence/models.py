"""Presence: who is connected, and the status they chose.

Connections are rows, not counters in one process's memory, so every server process sees the
same count: a user is online while they have at least one live connection (tab, device) on any
process, and a connection is live while its heartbeats keep arriving.
"""

from django.conf import settings
from django.db import models


class PresenceStatus(models.TextChoices):
    ONLINE = "online", "Online"
    AWAY = "away", "Away"
    BUSY = "busy", "Busy"
    DO_NOT_DISTURB = "dnd", "Do not disturb"
    OFFLINE = "offline", "Offline"


# What a user may choose; busy comes from being in a call and offline from having no connection.
CHOOSABLE_STATUSES = (PresenceStatus.ONLINE, PresenceStatus.AWAY, PresenceStatus.DO_NOT_DISTURB)
CHOOSABLE_STATUS_CHOICES = [(status.value, status.label) for status in CHOOSABLE_STATUSES]


class UserPresence(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="presence"
    )
    chosen_status = models.CharField(max_length=16, choices=PresenceStatus.choices, default=PresenceStatus.ONLINE)
    status = models.CharField(
        max_length=16,
        choices=PresenceStatus.choices,
        default=PresenceStatus.OFFLINE,
        help_text="What others see: derived from connections, calls and the chosen status.",
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "user presence"
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.status}"


class PresenceConnection(models.Model):
    """One open WebSocket connection, on whichever server process holds it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence_connections")
    channel_name = models.CharField(max_length=200, unique=True)
    opened_at = models.DateTimeField()
    last_heartbeat_at = models.DateTimeField(db_index=True)
    call = models.ForeignKey(
        "video_calls.Call",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="connections",
        help_text="The call this connection joined over the socket: where signaling to this user goes.",
    )

    class Meta:
        indexes = [models.Index(fields=["user", "last_heartbeat_at"]), models.Index(fields=["call", "user"])]

    def __str__(self) -> str:
        return f"connection of {self.user_id}"
