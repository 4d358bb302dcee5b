"""Request and response shapes of the account endpoints."""

from datetime import date

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import DoctorProfile, PatientProfile, Role, User
from accounts.validators import validate_e164, validate_time_zone


class DateOfBirthField(serializers.DateField):
    """A birth date that has happened: not in the future, not before 1900."""

    def to_internal_value(self, value) -> date:
        born = super().to_internal_value(value)
        if born > timezone.localdate() or born.year < 1900:
            raise serializers.ValidationError("Enter a real date of birth.", code="invalid")
        return born


class TimeZoneField(serializers.CharField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("help_text", "An IANA time zone name, e.g. Europe/Berlin.")
        super().__init__(validators=[validate_time_zone], **kwargs)


class PhoneNumberField(serializers.CharField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 16)
        super().__init__(validators=[validate_e164], **kwargs)


class PreferredLanguageField(serializers.ChoiceField):
    """A code of ``settings.LANGUAGES``; none chosen is ``null`` (stored blank)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("help_text", "A language code of settings.LANGUAGES (e.g. en, de, fr); null for none chosen.")
        kwargs.setdefault("allow_blank", True)  # accepted as input; answers say null
        super().__init__(choices=list(settings.LANGUAGES), allow_null=True, **kwargs)

    def run_validation(self, data=serializers.empty):
        if data is None or data == "":
            return ""  # none chosen: stored blank
        return super().run_validation(data)

    def to_representation(self, value):
        return value or None


def avatar_url(user: User) -> str | None:
    """The API path of a user's avatar, versioned by the stored name (a new upload, a new URL,
    so a client may cache one for as long as it likes)."""
    if not user.avatar:
        return None
    version = user.avatar.rsplit("/", 1)[-1].split(".", 1)[0]
    return f"{reverse('user-avatar', kwargs={'user_id': user.pk})}?v={version}"


class _ShownProfileMixin(serializers.Serializer):
    """What every view of a person shows: the name they chose to be shown by, and their avatar."""

    display_name = serializers.CharField(
        source="shown_name", read_only=True, help_text="The name chosen to be shown by; the full name if none."
    )
    avatar_url = serializers.SerializerMethodField(
        help_text="GET it with the access token (users/<id>/avatar/); null without an avatar."
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_avatar_url(self, user: User) -> str | None:
        return avatar_url(user)


# --- Output ---------------------------------------------------------------------------------


class DoctorProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = DoctorProfile
        fields = [
            "specialty",
            "license_number",
            "bio",
            "consultation_fee",
            "currency",
            "consultation_minutes",
            "time_zone",
            "is_verified",
            "verified_at",
        ]
        read_only_fields = fields


class PatientProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = PatientProfile
        fields = ["date_of_birth", "time_zone"]
        read_only_fields = fields


class UserSerializer(_ShownProfileMixin, serializers.ModelSerializer):
    """The signed-in user's own account, and what staff see of anyone."""

    preferred_language = PreferredLanguageField(read_only=True, allow_blank=False)
    doctor_profile = DoctorProfileSerializer(read_only=True, allow_null=True, default=None)
    patient_profile = PatientProfileSerializer(read_only=True, allow_null=True, default=None)

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "full_name",
            "display_name",
            "avatar_url",
            "role",
            "phone_number",
            "phone_verified",
            "email_verified",
            "is_active",
            "preferred_language",
            "default_video_enabled",
            "default_audio_enabled",
            "auto_join_audio",
            "date_joined",
            "last_login",
            "doctor_profile",
            "patient_profile",
        ]
        read_only_fields = fields

    def to_representation(self, instance: User) -> dict:
        data = super().to_representation(instance)
        if not instance.is_doctor:
            data["doctor_profile"] = None
        if not instance.is_patient:
            data["patient_profile"] = None
        return data


class DoctorPublicProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = DoctorProfile
        fields = [
            "specialty",
            "bio",
            "consultation_fee",
            "currency",
            "consultation_minutes",
            "time_zone",
            "is_verified",
        ]
        read_only_fields = fields


class DoctorDirectorySerializer(_ShownProfileMixin, serializers.ModelSerializer):
    """What any signed-in user may see of a doctor."""

    profile = DoctorPublicProfileSerializer(
        source="doctor_profile", read_only=True, allow_null=True, help_text="Null for an account without a profile."
    )

    class Meta:
        model = User
        fields = ["id", "first_name", "last_name", "full_name", "display_name", "avatar_url", "profile"]
        read_only_fields = fields


class PatientDirectorySerializer(_ShownProfileMixin, serializers.ModelSerializer):
    """What a patient's doctors and staff see of them."""

    profile = PatientProfileSerializer(
        source="patient_profile", read_only=True, allow_null=True, help_text="Null for an account without a profile."
    )

    class Meta:
        model = User
        fields = [
            "id",
            "first_name",
            "last_name",
            "full_name",
            "display_name",
            "avatar_url",
            "email",
            "phone_number",
            "profile",
        ]
        read_only_fields = fields


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")


class LoginResponseSerializer(TokenPairSerializer):
    user = UserSerializer()


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


# --- Input ----------------------------------------------------------------------------------


class RegisterSerializer(serializers.Serializer):
    """An email, a phone number, or both; ``confirm_password``, when sent, equal to ``password``."""

    email = serializers.EmailField(
        max_length=254, required=False, allow_blank=True, allow_null=True, help_text="Email, phone_number, or both."
    )
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    confirm_password = serializers.CharField(
        write_only=True, max_length=128, trim_whitespace=False, required=False, help_text="Optional; must match."
    )
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=[Role.PATIENT, Role.DOCTOR], default=Role.PATIENT)
    phone_number = PhoneNumberField(
        required=False, allow_blank=True, help_text="E.164; texted a code. Signs in once verified."
    )
    time_zone = TimeZoneField(default="UTC")
    date_of_birth = DateOfBirthField(required=False, allow_null=True, help_text="Patients only.")
    specialty = serializers.CharField(max_length=120, required=False, help_text="Doctors: required.")
    license_number = serializers.CharField(max_length=64, required=False, help_text="Doctors: required.")
    bio = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    consultation_fee = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, required=False)
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)

    def validate(self, attrs: dict) -> dict:
        attrs["email"] = attrs.get("email") or ""
        if not attrs["email"] and not attrs.get("phone_number"):
            raise serializers.ValidationError("Give an email address, a phone number, or both.", code="email_or_phone")
        confirm = attrs.pop("confirm_password", None)
        if confirm is not None and confirm != attrs["password"]:
            raise serializers.ValidationError(
                {"confirm_password": [serializers.ErrorDetail("The passwords do not match.", code="password_mismatch")]}
            )
        if attrs.get("role") == Role.DOCTOR:
            missing = {
                name: [serializers.ErrorDetail("This field is required for doctors.", code="required")]
                for name in ("specialty", "license_number")
                if not attrs.get(name)
            }
            if missing:
                raise serializers.ValidationError(missing)
        return attrs


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, help_text="Either email or phone_number.")
    phone_number = PhoneNumberField(required=False, help_text="A verified phone number, in E.164 form.")
    password = serializers.CharField(max_length=128, trim_whitespace=False)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("email")) == bool(attrs.get("phone_number")):
            raise serializers.ValidationError("Give either an email or a phone number.", code="email_or_phone")
        return attrs


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=2048)


class PasswordChangeSerializer(serializers.Serializer):
    current_password = serializers.CharField(max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class EmailSerializer(serializers.Serializer):
    email = serializers.EmailField()


class PasswordResetSerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)


class EmailVerifySerializer(serializers.Serializer):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)


class PhoneSendCodeSerializer(serializers.Serializer):
    phone_number = PhoneNumberField(required=False, help_text="Defaults to the number on the account.")


class PhoneVerifySerializer(serializers.Serializer):
    code = serializers.RegexField(r"^\d{6}$", error_messages={"invalid": "Enter the 6-digit code."})


class PhoneResendSerializer(serializers.Serializer):
    phone_number = PhoneNumberField(help_text="The account's unverified number, in E.164 form.")
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class PhoneConfirmSerializer(PhoneResendSerializer):
    code = serializers.RegexField(r"^\d{6}$", error_messages={"invalid": "Enter the 6-digit code."})


class AvatarUploadSerializer(serializers.Serializer):
    avatar = serializers.FileField(
        help_text="A JPEG, PNG or WebP image up to AVATAR_MAX_BYTES; stored re-encoded, without metadata."
    )


class PatientProfileUpdateSerializer(serializers.Serializer):
    date_of_birth = DateOfBirthField(required=False, allow_null=True)
    time_zone = TimeZoneField(required=False)


class DoctorProfileUpdateSerializer(serializers.Serializer):
    bio = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    consultation_fee = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, required=False)
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)
    consultation_minutes = serializers.IntegerField(min_value=10, max_value=240, required=False)
    time_zone = TimeZoneField(required=False)


class ProfileUpdateSerializer(serializers.Serializer):
    """Only these fields can be changed by the user; anything else sent is ignored."""

    first_name = serializers.CharField(max_length=150, required=False)
    last_name = serializers.CharField(max_length=150, required=False)
    display_name = serializers.CharField(
        max_length=150, required=False, allow_blank=True, help_text="Blank: shown by the full name."
    )
    preferred_language = PreferredLanguageField(required=False)
    default_video_enabled = serializers.BooleanField(required=False, help_text="Camera on when joining a call.")
    default_audio_enabled = serializers.BooleanField(required=False, help_text="Microphone on when joining a call.")
    auto_join_audio = serializers.BooleanField(required=False, help_text="Connect the call's audio on joining.")
    patient_profile = PatientProfileUpdateSerializer(required=False)
    doctor_profile = DoctorProfileUpdateSerializer(required=False)


class DirectorySearchSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=100)
    specialty = serializers.CharField(required=False, allow_blank=True, max_length=120)
