"""Request and response shapes of the account endpoints."""

from datetime import date

from django.utils import timezone
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


class UserSerializer(serializers.ModelSerializer):
    """The signed-in user's own account, and what staff see of anyone."""

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
            "role",
            "phone_number",
            "phone_verified",
            "email_verified",
            "is_active",
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


class DoctorDirectorySerializer(serializers.ModelSerializer):
    """What any signed-in user may see of a doctor."""

    profile = DoctorPublicProfileSerializer(
        source="doctor_profile", read_only=True, allow_null=True, help_text="Null for an account without a profile."
    )

    class Meta:
        model = User
        fields = ["id", "first_name", "last_name", "full_name", "profile"]
        read_only_fields = fields


class PatientDirectorySerializer(serializers.ModelSerializer):
    """What a patient's doctors and staff see of them."""

    profile = PatientProfileSerializer(
        source="patient_profile", read_only=True, allow_null=True, help_text="Null for an account without a profile."
    )

    class Meta:
        model = User
        fields = ["id", "first_name", "last_name", "full_name", "email", "phone_number", "profile"]
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
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=[Role.PATIENT, Role.DOCTOR], default=Role.PATIENT)
    phone_number = PhoneNumberField(required=False, allow_blank=True)
    time_zone = TimeZoneField(default="UTC")
    date_of_birth = DateOfBirthField(required=False, allow_null=True, help_text="Patients only.")
    specialty = serializers.CharField(max_length=120, required=False, help_text="Doctors: required.")
    license_number = serializers.CharField(max_length=64, required=False, help_text="Doctors: required.")
    bio = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    consultation_fee = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, required=False)
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)

    def validate(self, attrs: dict) -> dict:
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
    patient_profile = PatientProfileUpdateSerializer(required=False)
    doctor_profile = DoctorProfileUpdateSerializer(required=False)


class DirectorySearchSerializer(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, max_length=100)
    specialty = serializers.CharField(required=False, allow_blank=True, max_length=120)
