from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class StaffConfig(AppConfig):
    """The staff console: the clinic's dashboard, analytics, user and call management (REST and
    the admin's index), and the admin's branding."""

    name = "staff"
    verbose_name = "Staff console"

    def ready(self) -> None:
        from staff.admin_site import brand_admin_site

        brand_admin_site()


class StaffAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with the clinic's site (staff/admin_site.py) as ``admin.site``."""

    default = False  # named explicitly in INSTALLED_APPS
    default_site = "staff.admin_site.ClinicAdminSite"
