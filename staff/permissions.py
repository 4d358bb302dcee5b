"""Who may use the staff console: clinic staff, the staff role. The services it calls decide by
that role too (staff may end any call, host any room), so an admin-site flag alone
(``is_staff`` on a patient or doctor account) does not open it, as for the audit trail."""

from rest_framework.permissions import BasePermission

from core.exceptions import PermissionDenied


def is_console_user(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_clinic_staff)


class IsClinicStaff(BasePermission):
    """A signed-in patient or doctor is told 403 ``PERMISSION_DENIED``: the console's paths are
    public knowledge (the schema lists them), so refusing them reveals nothing; anonymous
    callers get 401 first."""

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if not is_console_user(request.user):
            raise PermissionDenied("Only clinic staff can use the staff console.")
        return True
