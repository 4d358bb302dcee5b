"""Admin pages show times in the staff member's time zone (their profile's, else
``CLINIC_TIME_ZONE``); the header names the zone (staff/admin_site.py). The API stays in UTC."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from staff.admin_site import staff_time_zone


class AdminTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.admin_prefix = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.admin_prefix is None:
            self.admin_prefix = reverse("admin:index")
        if not request.path.startswith(self.admin_prefix):
            return self.get_response(request)
        # Rendering happens inside get_response (template responses too), so it sees the zone.
        with timezone.override(staff_time_zone(request.user)):
            return self.get_response(request)
