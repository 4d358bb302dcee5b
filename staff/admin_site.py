"""The clinic's admin site: branded with ``CLINIC_NAME``, the staff dashboard on its index (the
same figures as ``GET /api/v1/staff/dashboard/``, from the same selector), times shown in the
staff member's zone and named in the header, "View site" pointing at the API docs, and the
internal token tables hidden.

It is the project's default admin site (``staff.apps.StaffAdminConfig`` replaces
``django.contrib.admin`` in ``INSTALLED_APPS``), so every ``admin.site.register`` lands here.
"""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from staff.selectors import dashboard_figures


def staff_time_zone(user) -> ZoneInfo:
    """The zone a staff member reads times in: their profile's, if they have one, else the clinic's."""
    for profile_name in ("doctor_profile", "patient_profile"):
        profile = getattr(user, profile_name, None) if user.is_authenticated else None
        if profile is not None:
            try:
                return ZoneInfo(profile.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                break
    return ZoneInfo(settings.CLINIC_TIME_ZONE)


class ClinicAdminSite(admin.AdminSite):
    index_template = "staff/admin/index.html"
    site_url = "/api/docs/"  # "View site": the API docs (the clinic's app lives elsewhere)

    def each_context(self, request: HttpRequest) -> dict:
        context = super().each_context(request)
        context["site_title"] = f"{settings.CLINIC_NAME} admin"
        # The zone is activated for admin pages by staff.middleware.AdminTimeZoneMiddleware and
        # named on every page, since Django's date formats do not show it.
        zone = timezone.get_current_timezone_name()
        context["site_header"] = f"{settings.CLINIC_NAME} administration · times in {zone}"
        context["time_zone_name"] = zone
        return context

    def index(self, request: HttpRequest, extra_context: dict | None = None):
        extra = {"title": f"{settings.CLINIC_NAME}: today", "dashboard": dashboard_figures(), **(extra_context or {})}
        return super().index(request, extra)


def brand_admin_site() -> None:
    """Hide the token tables: rows the token service writes and reads, not for hand edits."""
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    for model in (OutstandingToken, BlacklistedToken):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
