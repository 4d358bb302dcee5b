"""Admin for users and their profiles: search, filters, and the verify/suspend/reactivate
actions, which go through the same services as the API (suspending revokes tokens)."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import DoctorProfile, PatientProfile, Role, User


class DoctorProfileInline(admin.StackedInline):
    model = DoctorProfile
    can_delete = False
    extra = 0
    readonly_fields = ["verified_at"]


class PatientProfileInline(admin.StackedInline):
    model = PatientProfile
    can_delete = False
    extra = 0


class RevokingPasswordChangeForm(AdminPasswordChangeForm):
    """A password set by staff (say, for a compromised account) also signs the user out everywhere."""

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=commit)
        if commit:
            services.user_tokens_revoke(user=user)
        return user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    change_password_form = RevokingPasswordChangeForm
    ordering = ["last_name", "first_name"]
    list_display = [
        "email",
        "full_name",
        "role",
        "is_active",
        "email_verified",
        "phone_verified",
        "doctor_verified",
        "date_joined",
    ]
    list_filter = ["role", "is_active", "email_verified", "phone_verified", "doctor_profile__is_verified", "is_staff"]
    search_fields = ["email", "first_name", "last_name", "phone_number", "doctor_profile__license_number"]
    readonly_fields = ["last_login", "date_joined", "updated_at", "token_generation"]
    actions = ["verify_doctors", "suspend_users", "reactivate_users"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["first_name", "last_name", "role", "phone_number", "phone_verified", "email_verified"]}),
        (
            "Profile",
            {"fields": ["display_name", "default_video_enabled", "default_audio_enabled", "auto_join_audio"]},
        ),
        (
            "Access",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions", "token_generation"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined", "updated_at"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "phone_number", "first_name", "last_name", "role", "password1", "password2"],
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).select_related("doctor_profile")

    def get_inlines(self, request: HttpRequest, obj: User | None):
        if obj is None:
            return []
        if obj.is_doctor:
            return [DoctorProfileInline]
        if obj.is_patient:
            return [PatientProfileInline]
        return []

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        """Unticking "active" on the form suspends like the action does: the user's tokens end too."""
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            services.user_tokens_revoke(user=obj)

    @admin.display(boolean=True, description="Doctor verified")
    def doctor_verified(self, user: User) -> bool | None:
        profile = getattr(user, "doctor_profile", None)
        return profile.is_verified if profile else None

    @admin.action(description="Verify selected doctors (they can then be booked)")
    def verify_doctors(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        doctors = queryset.filter(role=Role.DOCTOR)
        for doctor in doctors:
            services.doctor_verify(doctor=doctor)
        self.message_user(request, f"Verified {doctors.count()} doctor(s).", messages.SUCCESS)

    @admin.action(description="Suspend selected users (signs them out everywhere)")
    def suspend_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(queryset.exclude(pk=request.user.pk))
        for user in users:
            services.user_suspend(user=user)
        self.message_user(request, f"Suspended {len(users)} user(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected users")
    def reactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = list(queryset)
        for user in users:
            services.user_reactivate(user=user)
        self.message_user(request, f"Reactivated {len(users)} user(s).", messages.SUCCESS)


@admin.register(DoctorProfile)
class DoctorProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "specialty", "license_number", "consultation_fee", "currency", "is_verified"]
    list_filter = ["is_verified", "specialty"]
    search_fields = ["user__email", "user__first_name", "user__last_name", "license_number", "specialty"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]


@admin.register(PatientProfile)
class PatientProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "date_of_birth", "time_zone"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
