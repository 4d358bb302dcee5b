"""Account writes: registration, sign-in, token lifecycle, verification, profiles, suspension.

Every function is keyword-only and transactional. Emails are queued with
``transaction.on_commit`` so nobody is told about a change that rolled back. The SMS with a phone
code is the exception: it is sent before the code is stored (see ``phone_code_send``), because
its failure must reach the client and must leave nothing behind.
"""

import contextlib
import hashlib
import hmac
import logging
import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from celery import Task
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import tasks
from accounts.backends import password_match
from accounts.email_tokens import email_verification_token_generator
from accounts.models import DoctorProfile, PatientProfile, PhoneVerification, Role, User
from accounts.sms import SmsDeliveryFailed, send_sms
from accounts.tokens import GENERATION_CLAIM, token_pair_for
from core.events import close_user_connections_on_commit
from core.exceptions import ApplicationError, Conflict, InvalidInput, NotFound

logger = logging.getLogger(__name__)


class InvalidCredentials(ApplicationError):
    code = "INVALID_CREDENTIALS"
    status = 401
    default_message = "The email, phone number or password is incorrect."


class AccountNotVerified(ApplicationError):
    """Only ever after a correct password: a wrong one is ``InvalidCredentials`` whatever the
    account's state, so this reveals nothing to someone who does not know the password."""

    code = "ACCOUNT_NOT_VERIFIED"
    status = 401
    default_message = "Confirm your email address or phone number before signing in."


class TokenInvalid(ApplicationError):
    code = "TOKEN_INVALID"
    status = 401
    default_message = "The token is invalid, expired or already used."


class InvalidVerificationToken(ApplicationError):
    """A bad email-verification link: the counterpart of the SMS code's error, 400 like it, and
    not ``TOKEN_INVALID``, which a client reads as "my access or refresh token is dead"."""

    code = "INVALID_VERIFICATION_TOKEN"
    status = 400
    default_message = "The verification link is invalid, expired or already used."


class InvalidVerificationCode(ApplicationError):
    code = "INVALID_VERIFICATION_CODE"
    status = 400
    default_message = "The code is invalid or has expired. Request a new one."


class SmsUnavailable(ApplicationError):
    code = "SMS_UNAVAILABLE"
    status = 503
    default_message = "The text message could not be sent. Try again in a few minutes."


def _email_on_commit(task: Task, user_id: str) -> None:
    """Queue an account email task once the transaction commits.

    A broker that cannot take the task (Redis down: kombu's ``OperationalError``, or a
    ``RuntimeError`` from the result backend) is logged and otherwise ignored, never raised: the
    change it follows has committed, so an error would be a 500 for work that was done, and these
    endpoints answer the same whether or not an email goes out (an error only for known
    addresses would reveal who has an account). The user can ask again. The log line names the
    task and the error type only: no address.
    """

    def queue() -> None:
        try:
            task.delay(user_id)
        except Exception as exc:
            logger.error("Could not queue %s (%s)", task.name, type(exc).__name__)

    transaction.on_commit(queue)


def _password_errors(password: str, user: User | None) -> list[str]:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as error:
        return list(error.messages)
    return []


def _check_password(password: str, *, user: User, field: str = "password") -> None:
    errors = _password_errors(password, user)
    if errors:
        raise InvalidInput(details={field: [{"message": message, "code": "weak_password"} for message in errors]})


# --- Registration ---------------------------------------------------------------------------


@transaction.atomic
def user_register(
    *,
    password: str,
    first_name: str,
    last_name: str,
    email: str = "",
    phone_number: str = "",
    role: str = Role.PATIENT,
    time_zone: str = "UTC",
    date_of_birth: date | None = None,
    specialty: str = "",
    license_number: str = "",
    bio: str = "",
    consultation_fee: Decimal = Decimal("0"),
    currency: str = "USD",
) -> User | None:
    """Create a patient, or an unverified doctor, with an email, a phone number or both. Staff
    accounts are made in the admin.

    An already registered email gets no error (that would tell anyone who is a patient here):
    its owner is emailed instead, and ``None`` is returned. So does a phone-only registration
    with a number already verified on an account (nobody is texted: that costs, and the number's
    owner did not ask).
    """
    if role not in (Role.PATIENT, Role.DOCTOR):
        raise InvalidInput(details={"role": [{"message": "Choose patient or doctor.", "code": "invalid_choice"}]})
    email = User.objects.normalize_email(email)
    if not email and not phone_number:
        raise InvalidInput(
            details={"non_field_errors": [{"message": EMAIL_OR_PHONE_REQUIRED, "code": "email_or_phone"}]}
        )
    candidate = User(email=email or None, first_name=first_name, last_name=last_name)
    _check_password(password, user=candidate)
    # Hash before looking the address up, so a known email answers as slowly as a new one.
    password_hash = make_password(password)

    existing = User.objects.filter(email=email).first() if email else None
    if existing is not None:
        _email_on_commit(tasks.send_account_exists_email, str(existing.pk))
        return None
    if not email and User.objects.filter(phone_number=phone_number, phone_verified=True).exists():
        return None

    user = User(
        email=email or None,
        first_name=first_name,
        last_name=last_name,
        role=role,
        phone_number=phone_number or "",
        password=password_hash,
    )
    try:
        with transaction.atomic():
            user.save()
            if role == Role.DOCTOR:
                DoctorProfile.objects.create(
                    user=user,
                    specialty=specialty,
                    license_number=license_number,
                    bio=bio,
                    consultation_fee=consultation_fee,
                    currency=currency,
                    time_zone=time_zone,
                )
            else:
                PatientProfile.objects.create(user=user, date_of_birth=date_of_birth, time_zone=time_zone)
    except IntegrityError:
        # Two registrations racing for one email, or a license number already on file.
        if role == Role.DOCTOR and DoctorProfile.objects.filter(license_number=license_number).exists():
            raise Conflict(
                "This license number is already registered.",
                code="LICENSE_NUMBER_TAKEN",
            ) from None
        return None

    if user.email:
        _email_on_commit(tasks.send_email_verification, str(user.pk))
    if user.phone_number:
        # If the code cannot be texted, the account stands, with the number on it unverified;
        # the user asks for a code through auth/phone/send-code/. A 503 here would answer a new
        # email differently from a known one, which gets no SMS. send_sms logs the failure.
        with contextlib.suppress(SmsUnavailable):
            phone_code_send(user=user, phone_number=user.phone_number)
    return user


# --- Sign-in and tokens ---------------------------------------------------------------------


@transaction.atomic
def user_login(*, password: str, email: str = "", phone_number: str = "", request=None) -> tuple[User, dict]:
    """Check credentials and issue a token pair.

    Every failure of the credentials looks the same to the client (``INVALID_CREDENTIALS``):
    unknown account, wrong password, suspended account, whatever the account's verification.
    Only then, with ``LOGIN_REQUIRES_VERIFIED_CONTACT``, an account with neither its email nor
    its phone number verified is refused ``ACCOUNT_NOT_VERIFIED``; ``details.unverified`` lists
    what it can verify (``email``: the emailed link; ``phone_number``: auth/phone/confirm/).
    """
    if email:
        user = authenticate(request, email=email, password=password)
    else:
        user = authenticate(request, phone_number=phone_number, password=password)
    if user is None:
        raise InvalidCredentials()
    if settings.LOGIN_REQUIRES_VERIFIED_CONTACT and not user.has_verified_contact:
        raise AccountNotVerified(details={"unverified": _unverified_contacts(user)})
    return user, _signed_in(user)


def _unverified_contacts(user: User) -> list[str]:
    return [name for name, value in (("email", user.email), ("phone_number", user.phone_number)) if value]


def _signed_in(user: User) -> dict:
    user.last_login = timezone.now()
    User.objects.filter(pk=user.pk).update(last_login=user.last_login)
    return token_pair_for(user)


@transaction.atomic
def tokens_refresh(*, refresh: str) -> dict:
    """Rotate a refresh token: the presented one is blacklisted and a new pair issued.

    A refresh token presented twice (a stolen copy, or a replay) is refused, as is one issued
    before the user's tokens were revoked.
    """
    try:
        token = RefreshToken(refresh)  # checks signature, expiry and the blacklist
    except TokenError:
        raise TokenInvalid() from None
    user = User.objects.filter(pk=token.get("user_id"), is_active=True).first()
    if user is None or token.get(GENERATION_CLAIM) != user.token_generation:
        raise TokenInvalid()
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=token["jti"],
        defaults={
            "user": user,
            "token": refresh,
            "expires_at": datetime.fromtimestamp(token["exp"], tz=UTC),
            "created_at": timezone.now(),
        },
    )
    _, newly_blacklisted = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not newly_blacklisted:  # another request rotated the same token a moment ago
        raise TokenInvalid()
    return token_pair_for(user)


@transaction.atomic
def user_tokens_revoke(*, user: User) -> User:
    """Invalidate every access and refresh token the user holds, on every device, and close
    their open WebSockets (a client reconnects with a new ticket)."""
    User.objects.filter(pk=user.pk).update(token_generation=F("token_generation") + 1)
    user.refresh_from_db(fields=["token_generation"])
    close_user_connections_on_commit(user.pk)
    return user


# --- Passwords ------------------------------------------------------------------------------


@transaction.atomic
def password_change(*, user: User, current_password: str, new_password: str) -> dict:
    """Change the password, sign out every other device, and return a fresh pair for this one."""
    if not user.check_password(current_password):
        raise InvalidInput(
            details={"current_password": [{"message": "The current password is incorrect.", "code": "incorrect"}]}
        )
    _check_password(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    user_tokens_revoke(user=user)
    return token_pair_for(user)


@transaction.atomic
def password_reset_request(*, email: str) -> None:
    """Email a reset link if the address belongs to an active user. Silent either way."""
    email = User.objects.normalize_email(email)
    user = User.objects.filter(email=email, is_active=True).first() if email else None
    if user is not None:
        _email_on_commit(tasks.send_password_reset_email, str(user.pk))


def _user_from_uid(uid: str) -> User | None:
    """The active user an emailed link names, locked until the transaction ends so that two
    requests presenting one single-use token are served one after the other."""
    try:
        pk = force_str(urlsafe_base64_decode(uid))
        return User.objects.select_for_update().filter(pk=pk, is_active=True).first()
    except (ValueError, TypeError, OverflowError, DjangoValidationError):
        return None


@transaction.atomic
def password_reset_confirm(*, uid: str, token: str, new_password: str) -> None:
    """Set a new password from an emailed link. The link stops working once used (the token
    depends on the password hash) or after ``PASSWORD_RESET_TIMEOUT``; all sessions end."""
    user = _user_from_uid(uid)
    if user is None or not default_token_generator.check_token(user, token):
        raise TokenInvalid("The reset link is invalid, expired or already used.")
    _check_password(new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password", "updated_at"])
    user_tokens_revoke(user=user)


# --- Email verification ---------------------------------------------------------------------


@transaction.atomic
def email_verify(*, uid: str, token: str) -> User:
    user = _user_from_uid(uid)
    if user is None or not email_verification_token_generator.check_token(user, token):
        raise InvalidVerificationToken()
    User.objects.filter(pk=user.pk).update(email_verified=True, updated_at=timezone.now())
    user.email_verified = True
    return user


@transaction.atomic
def email_verification_resend(*, email: str) -> None:
    """Send a new verification link to an unverified account. Silent either way."""
    email = User.objects.normalize_email(email)
    user = User.objects.filter(email=email, is_active=True, email_verified=False).first() if email else None
    if user is not None:
        _email_on_commit(tasks.send_email_verification, str(user.pk))


# --- Phone verification ---------------------------------------------------------------------


def _code_hash(code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), code.encode(), hashlib.sha256).hexdigest()


@transaction.atomic
def phone_code_send(*, user: User, phone_number: str = "") -> PhoneVerification:
    """Set the user's (unverified) phone number and text them a 6-digit code; without a new
    number, the code goes to the number already on the account.

    Earlier codes stop working. Only the code's keyed hash is stored. The SMS goes directly
    through the SMS backend, so the code never sits in a task queue.

    1. The text is sent first, before anything is written. If the provider fails, this raises
       ``SmsUnavailable`` (503 ``SMS_UNAVAILABLE``) with nothing changed: no undelivered code
       exists, the code sent earlier still works, the number on the account is as it was.
    2. Only then are the number set and the code stored (and earlier codes retired).

    Why not after commit, like emails: the failure would surface once the code was already
    stored, as a 500, leaving a code nobody received in place of the one they had. The reverse
    risk, a commit that fails after the text went out, leaves a code that never works and
    nothing else; the user asks again. Nothing this function writes is locked while the provider
    answers.
    """
    phone_number = phone_number or user.phone_number
    if not phone_number:
        raise InvalidInput(details={"phone_number": [{"message": "This field is required.", "code": "required"}]})
    code = f"{secrets.randbelow(10**6):06d}"
    try:
        send_sms(phone_number, f"Your verification code is {code}. It expires soon.")
    except SmsDeliveryFailed:
        raise SmsUnavailable() from None
    if phone_number != user.phone_number:
        User.objects.filter(pk=user.pk).update(phone_number=phone_number, phone_verified=False)
        user.phone_number, user.phone_verified = phone_number, False
    PhoneVerification.objects.filter(user=user, consumed_at__isnull=True).update(consumed_at=timezone.now())
    return PhoneVerification.objects.create(
        user=user,
        phone_number=phone_number,
        code_hash=_code_hash(code),
        expires_at=timezone.now() + timedelta(seconds=settings.PHONE_CODE_TTL_SECONDS),
    )


def phone_verify(*, user: User, code: str) -> User:
    """Check a code against the newest live one; a few wrong tries burn it.

    The transaction commits before a wrong code is reported, so the failed attempt counts.
    """
    now = timezone.now()
    with transaction.atomic():
        verification = (
            PhoneVerification.objects.select_for_update()
            .filter(user=user, consumed_at__isnull=True, expires_at__gt=now, phone_number=user.phone_number)
            .order_by("-created_at")
            .first()
        )
        usable = verification is not None and verification.attempts < settings.PHONE_CODE_MAX_ATTEMPTS
        matches = usable and hmac.compare_digest(verification.code_hash, _code_hash(code))
        if usable and not matches:
            PhoneVerification.objects.filter(pk=verification.pk).update(attempts=F("attempts") + 1)
        if matches:
            taken = (
                User.objects.filter(phone_number=user.phone_number, phone_verified=True).exclude(pk=user.pk).exists()
            )
            if taken:
                raise Conflict("This phone number is verified on another account.", code="PHONE_NUMBER_TAKEN")
            try:
                # The unique constraint settles a race between two accounts verifying one number.
                with transaction.atomic():
                    User.objects.filter(pk=user.pk).update(phone_verified=True, updated_at=now)
            except IntegrityError:
                raise Conflict("This phone number is verified on another account.", code="PHONE_NUMBER_TAKEN") from None
            PhoneVerification.objects.filter(pk=verification.pk).update(consumed_at=now)
            user.phone_verified = True
    if not matches:
        raise InvalidVerificationCode()
    return user


def _account_with_unverified_phone(*, phone_number: str, password: str) -> User | None:
    """The active account whose unverified number is ``phone_number`` and whose password is
    ``password`` (unverified numbers are not unique), or None, in about the same time."""
    candidates = User.objects.filter(phone_number=phone_number, phone_verified=False, is_active=True).order_by(
        "date_joined"
    )[:5]
    return password_match(candidates, password)


def phone_confirm(*, phone_number: str, password: str, code: str) -> tuple[User, dict]:
    """Verify a number without a signed-in session, and sign in: how a phone-only account (which
    cannot sign in before it is verified) enters the code texted at registration.

    Wrong number or password: ``INVALID_CREDENTIALS``, as sign-in. Then the code is checked as
    ``phone_verify`` checks it (wrong tries count, ``PHONE_NUMBER_TAKEN`` if verified elsewhere).
    Not one transaction: a wrong code's attempt must commit before it is reported.
    """
    user = _account_with_unverified_phone(phone_number=phone_number, password=password)
    if user is None:
        raise InvalidCredentials()
    user = phone_verify(user=user, code=code)
    return user, _signed_in(user)


def phone_code_resend(*, phone_number: str, password: str) -> None:
    """Text a new code to an unverified number, for an account that cannot sign in yet. Silent
    unless the number and password match an account (then 503 ``SMS_UNAVAILABLE`` can reach the
    one who knows the password)."""
    user = _account_with_unverified_phone(phone_number=phone_number, password=password)
    if user is not None:
        phone_code_send(user=user)


# --- Profiles and administration ------------------------------------------------------------

EMAIL_OR_PHONE_REQUIRED = "Give an email address, a phone number, or both."
USER_EDITABLE_FIELDS = (
    "first_name",
    "last_name",
    "display_name",
    "preferred_language",
    "default_video_enabled",
    "default_audio_enabled",
    "auto_join_audio",
)
PATIENT_EDITABLE_FIELDS = ("date_of_birth", "time_zone")
DOCTOR_EDITABLE_FIELDS = ("bio", "consultation_fee", "currency", "consultation_minutes", "time_zone")


@transaction.atomic
def user_update_profile(*, user: User, data: dict) -> User:
    """Update what a user may change about themselves. Role, verification flags, email,
    specialty and license number are not among them (staff change those in the admin)."""
    user_fields = [name for name in USER_EDITABLE_FIELDS if name in data]
    for name in user_fields:
        setattr(user, name, data[name])
    if user_fields:
        user.save(update_fields=[*user_fields, "updated_at"])

    # Each role edits its own profile only: a patient's "doctor_profile" (or the reverse) is ignored.
    if user.is_patient:
        profile_data, allowed = data.get("patient_profile") or {}, PATIENT_EDITABLE_FIELDS
    elif user.is_doctor:
        profile_data, allowed = data.get("doctor_profile") or {}, DOCTOR_EDITABLE_FIELDS
    else:
        return user
    profile_fields = [name for name in allowed if name in profile_data]
    if not profile_fields:
        return user
    if user.is_patient:
        profile, _ = PatientProfile.objects.get_or_create(user=user)
        user.patient_profile = profile
    else:
        # A doctor account made in the admin may lack a profile; only staff can add one (license).
        profile = DoctorProfile.objects.filter(user=user).first()
        if profile is None:
            raise NotFound("This doctor account has no profile yet; the clinic staff create it.")
    for name in profile_fields:
        setattr(profile, name, profile_data[name])
    profile.save(update_fields=profile_fields)
    return user


@transaction.atomic
def doctor_verify(*, doctor: User) -> User:
    """Mark the doctor's license as checked; from then on patients can find and book them."""
    DoctorProfile.objects.filter(user=doctor, is_verified=False).update(is_verified=True, verified_at=timezone.now())
    return doctor


@transaction.atomic
def user_suspend(*, user: User) -> User:
    """Block sign-in and end every session the user has, at once."""
    User.objects.filter(pk=user.pk).update(is_active=False, token_generation=F("token_generation") + 1)
    user.refresh_from_db(fields=["is_active", "token_generation"])
    close_user_connections_on_commit(user.pk)
    return user


@transaction.atomic
def user_reactivate(*, user: User) -> User:
    """Allow sign-in again. Tokens revoked by the suspension stay revoked."""
    User.objects.filter(pk=user.pk).update(is_active=True)
    user.refresh_from_db(fields=["is_active"])
    return user
