"""Users and their role-specific profiles.

An account has an email, a phone number, or both. Either one signs in: the email, or the phone
number once verified; and signing in needs one of them verified (accounts.services.user_login,
``LOGIN_REQUIRES_VERIFIED_CONTACT``). ``token_generation`` is part
of every token we issue: raising it revokes all of a user's access and refresh tokens at once
(logout everywhere, password change, suspension).
"""

import uuid

from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.managers import UserManager
from accounts.validators import validate_e164, validate_time_zone


class Role(models.TextChoices):
    PATIENT = "patient", "Patient"
    DOCTOR = "doctor", "Doctor"
    STAFF = "staff", "Staff"


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Optional (a phone-only account has none): NULL when absent, so uniqueness holds only
    # between addresses that exist. Stored lower-cased (save), so it ignores case.
    email = models.EmailField("email address", max_length=254, unique=True, null=True, blank=True)
    first_name = models.CharField(max_length=150)
    last_name = models.CharField(max_length=150)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PATIENT)
    phone_number = models.CharField(max_length=16, blank=True, default="", validators=[validate_e164])
    phone_verified = models.BooleanField(default=False)
    email_verified = models.BooleanField(default=False)
    is_active = models.BooleanField(
        default=True, help_text="Unticked when the account is suspended; a suspended user cannot sign in."
    )
    is_staff = models.BooleanField(default=False, help_text="Can sign in to the admin site.")
    token_generation = models.PositiveIntegerField(default=0, editable=False)
    # Profile. ``display_name`` blank means "my full name" (see ``shown_name``).
    display_name = models.CharField(max_length=150, blank=True, default="")
    # Storage name of the re-encoded avatar in STORAGES["avatars"] (accounts/avatars.py), or blank.
    avatar = models.CharField(max_length=255, blank=True, default="", editable=False)
    # A code from settings.LANGUAGES, or blank for none chosen (checked by the API, not a DB choice,
    # so the list can change without a migration).
    preferred_language = models.CharField(max_length=16, blank=True, default="")
    # What a call join uses unless the join request says otherwise.
    default_video_enabled = models.BooleanField(default=True)
    default_audio_enabled = models.BooleanField(default=True)
    auto_join_audio = models.BooleanField(
        default=True, help_text="Connect the call's audio on joining, without asking first."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["first_name", "last_name"]

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            # A phone number identifies one account once verified (it becomes a login).
            models.UniqueConstraint(
                fields=["phone_number"],
                condition=models.Q(phone_verified=True),
                name="accounts_user_verified_phone_unique",
            ),
        ]
        indexes = [models.Index(fields=["role", "is_active"])]

    def __str__(self) -> str:
        return self.full_name or self.email or self.phone_number

    def save(self, *args, **kwargs) -> None:
        # Stored lower-cased, so uniqueness and sign-in ignore case on every database; no
        # address is NULL, never "", so any number of accounts may have none.
        self.email = type(self).objects.normalize_email(self.email) or None
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if not self.email and not self.phone_number:
            raise ValidationError("Give an email address, a phone number, or both.")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def shown_name(self) -> str:
        """The name others see: the chosen display name, else the full name."""
        return self.display_name.strip() or self.full_name

    @property
    def has_verified_contact(self) -> bool:
        """Whether an email or a phone number of this account has been proven to be theirs."""
        return bool((self.email and self.email_verified) or (self.phone_number and self.phone_verified))

    @property
    def is_patient(self) -> bool:
        return self.role == Role.PATIENT

    @property
    def is_doctor(self) -> bool:
        return self.role == Role.DOCTOR

    @property
    def is_clinic_staff(self) -> bool:
        return self.role == Role.STAFF


class DoctorProfile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="doctor_profile")
    specialty = models.CharField(max_length=120, db_index=True)
    license_number = models.CharField(max_length=64)
    bio = models.TextField(blank=True, default="")
    consultation_fee = models.DecimalField(
        max_digits=10, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default="USD")
    consultation_minutes = models.PositiveSmallIntegerField(default=50, help_text="Default length of a booked session.")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone], help_text="IANA name.")
    is_verified = models.BooleanField(
        default=False, help_text="Set by staff after checking the license; only verified doctors can be booked."
    )
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["license_number"], name="accounts_doctor_license_unique")]

    def __str__(self) -> str:
        return f"Dr. {self.user.full_name} ({self.specialty})"


class PatientProfile(models.Model):
    """The patient's phone number is the user's ``phone_number`` (it is also a login)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="patient_profile")
    date_of_birth = models.DateField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone], help_text="IANA name.")

    def __str__(self) -> str:
        return f"Patient {self.user.full_name}"


class PhoneVerification(models.Model):
    """A 6-digit code sent by SMS. Only its hash is stored; it expires and allows few attempts."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="phone_verifications")
    phone_number = models.CharField(max_length=16, validators=[validate_e164])
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"Phone verification for {self.user_id}"
