"""Account endpoints: each validates its input, calls one service or selector, and serializes."""

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import avatars, selectors, services
from accounts.serializers import (
    AvatarUploadSerializer,
    DetailSerializer,
    DirectorySearchSerializer,
    DoctorDirectorySerializer,
    EmailSerializer,
    EmailVerifySerializer,
    LoginResponseSerializer,
    LoginSerializer,
    PasswordChangeSerializer,
    PasswordResetSerializer,
    PatientDirectorySerializer,
    PhoneConfirmSerializer,
    PhoneResendSerializer,
    PhoneSendCodeSerializer,
    PhoneVerifySerializer,
    ProfileUpdateSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenPairSerializer,
    UserSerializer,
)
from accounts.throttles import AUTH_THROTTLES
from core.exceptions import NotFound
from core.pagination import PageNumberPagination
from core.schema import error_codes, error_response
from core.validation import validated


class _PublicAuthApi(APIView):
    """Unauthenticated auth endpoints: rate-limited per IP and per account named in the body."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = AUTH_THROTTLES


class RegisterApi(_PublicAuthApi):
    throttle_name = "register"

    @extend_schema(
        tags=["auth"],
        request=RegisterSerializer,
        responses={
            202: DetailSerializer,
            409: error_response("LICENSE_NUMBER_TAKEN: a doctor's license number is already on file."),
            **error_codes({503: ("SMS_UNAVAILABLE",)}),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Register a patient or (unverified) doctor with an email, a phone number (E.164) or
        both. The answer is the same whether or not the email or number was already registered;
        a confirmation link is emailed, a code texted. ``confirm_password``, when sent, must
        equal ``password``."""
        data = validated(RegisterSerializer, request.data)
        services.user_register(**data)
        # The answer depends on what was sent, never on what exists.
        detail = (
            "Registration received. Check your email to confirm your address, then sign in."
            if data["email"]
            else "Registration received. Confirm your phone number with the texted code (auth/phone/confirm/)."
        )
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)


class LoginApi(_PublicAuthApi):
    throttle_name = "login"

    @extend_schema(
        tags=["auth"],
        request=LoginSerializer,
        responses={
            200: LoginResponseSerializer,
            401: error_response(
                "INVALID_CREDENTIALS: unknown account, wrong password or suspended (one answer). "
                "ACCOUNT_NOT_VERIFIED: the password is right but neither the email nor the phone number "
                "is verified yet (details.unverified lists which can be)."
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Sign in with email or verified phone number and password. With
        ``LOGIN_REQUIRES_VERIFIED_CONTACT`` (the default) the account needs a verified email or
        phone number: otherwise 401 ``ACCOUNT_NOT_VERIFIED``, given only for the right password."""
        data = validated(LoginSerializer, request.data)
        user, tokens = services.user_login(
            email=data.get("email", ""),
            phone_number=data.get("phone_number", ""),
            password=data["password"],
            request=request,
        )
        return Response({**tokens, "user": UserSerializer(user).data})


class TokenRefreshApi(_PublicAuthApi):
    throttle_name = "token-refresh"

    @extend_schema(
        tags=["auth"],
        request=RefreshSerializer,
        responses={200: TokenPairSerializer, **error_codes({401: ("TOKEN_INVALID",)})},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Exchange a refresh token for a new pair. Each refresh token works once."""
        return Response(services.tokens_refresh(**validated(RefreshSerializer, request.data)))


class LogoutApi(APIView):
    @extend_schema(tags=["auth"], request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        """Sign out on every device: all of the user's access and refresh tokens stop working."""
        services.user_tokens_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeApi(APIView):
    throttle_classes = AUTH_THROTTLES
    throttle_name = "password-change"

    @extend_schema(tags=["auth"], request=PasswordChangeSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        """Change the password. Other devices are signed out; this one gets a fresh token pair."""
        return Response(
            services.password_change(user=request.user, **validated(PasswordChangeSerializer, request.data))
        )


class PasswordForgotApi(_PublicAuthApi):
    throttle_name = "password-forgot"

    @extend_schema(tags=["auth"], request=EmailSerializer, responses={202: DetailSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        """Email a reset link. The answer never says whether the address is registered."""
        services.password_reset_request(**validated(EmailSerializer, request.data))
        return Response(
            {"detail": "If the address belongs to an account, a reset link is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


class PasswordResetApi(_PublicAuthApi):
    throttle_name = "password-reset"

    @extend_schema(
        tags=["auth"],
        request=PasswordResetSerializer,
        responses={204: None, **error_codes({401: ("TOKEN_INVALID",)})},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Set a new password with the uid and token from the emailed link; signs out everywhere."""
        services.password_reset_confirm(**validated(PasswordResetSerializer, request.data))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyApi(_PublicAuthApi):
    throttle_name = "email-verify"

    @extend_schema(
        tags=["auth"],
        request=EmailVerifySerializer,
        responses={
            200: DetailSerializer,
            400: error_response(
                "INVALID_VERIFICATION_TOKEN: the link is forged, expired, already used or for an address "
                "changed since. (Or VALIDATION_ERROR.)"
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Confirm an email address with the uid and token from the emailed link."""
        services.email_verify(**validated(EmailVerifySerializer, request.data))
        return Response({"detail": "Email address confirmed."})


class EmailResendApi(_PublicAuthApi):
    throttle_name = "email-resend"

    @extend_schema(tags=["auth"], request=EmailSerializer, responses={202: DetailSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        """Send a new confirmation link. The answer never says whether the address is registered."""
        services.email_verification_resend(**validated(EmailSerializer, request.data))
        return Response(
            {"detail": "If the address belongs to an unconfirmed account, a new link is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


class PhoneSendCodeApi(APIView):
    throttle_classes = AUTH_THROTTLES
    throttle_name = "phone-send-code"

    @extend_schema(
        tags=["auth"],
        request=PhoneSendCodeSerializer,
        responses={
            202: DetailSerializer,
            503: error_response(
                "SMS_UNAVAILABLE: the SMS provider failed; nothing changed, try again later. "
                "(Or SERVICE_UNAVAILABLE, as on every endpoint, when a dependency is down.)"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Text a 6-digit code to the given number (which becomes the account's, unverified) or to
        the number already on the account. If the SMS provider fails: 503 ``SMS_UNAVAILABLE``,
        and the account and any earlier code are left as they were."""
        data = validated(PhoneSendCodeSerializer, request.data)
        services.phone_code_send(user=request.user, phone_number=data.get("phone_number", ""))
        return Response({"detail": "A code is on its way."}, status=status.HTTP_202_ACCEPTED)


class PhoneVerifyApi(APIView):
    throttle_classes = AUTH_THROTTLES
    throttle_name = "phone-verify"

    @extend_schema(
        tags=["auth"],
        request=PhoneVerifySerializer,
        responses={
            200: UserSerializer,
            409: error_response("PHONE_NUMBER_TAKEN: the number is verified on another account."),
            **error_codes({400: ("INVALID_VERIFICATION_CODE",)}),
        },
    )
    def post(self, request: Request) -> Response:
        """Confirm the account's phone number with the texted code; it then works as a login."""
        user = services.phone_verify(user=request.user, **validated(PhoneVerifySerializer, request.data))
        return Response(UserSerializer(user).data)


class PhoneResendApi(_PublicAuthApi):
    throttle_name = "phone-resend"

    @extend_schema(
        tags=["auth"],
        request=PhoneResendSerializer,
        responses={
            202: DetailSerializer,
            503: error_response(
                "SMS_UNAVAILABLE: the number and password match an account and the SMS provider failed. "
                "(Or SERVICE_UNAVAILABLE.)"
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Text a new code to an account's unverified number, without signing in (a phone-only
        account cannot before it is verified). The answer is the same whether or not the number
        and password match an account."""
        services.phone_code_resend(**validated(PhoneResendSerializer, request.data))
        return Response(
            {"detail": "If the number and password match an unconfirmed account, a code is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


class PhoneConfirmApi(_PublicAuthApi):
    throttle_name = "phone-confirm"

    @extend_schema(
        tags=["auth"],
        request=PhoneConfirmSerializer,
        responses={
            200: LoginResponseSerializer,
            400: error_response("INVALID_VERIFICATION_CODE: wrong, expired or out of tries. (Or VALIDATION_ERROR.)"),
            401: error_response("INVALID_CREDENTIALS: no account with this unverified number and password."),
            409: error_response("PHONE_NUMBER_TAKEN: the number is verified on another account."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Confirm an account's phone number with its password and the texted code, and sign in:
        how a phone-only account finishes registering."""
        user, tokens = services.phone_confirm(**validated(PhoneConfirmSerializer, request.data))
        return Response({**tokens, "user": UserSerializer(user).data})


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["users"], responses={200: UserSerializer})
    def get(self, request: Request) -> Response:
        """The signed-in user's account and profile."""
        return Response(UserSerializer(request.user).data)

    @extend_schema(
        tags=["users"],
        request=ProfileUpdateSerializer,
        responses={200: UserSerializer, **error_codes({404: ("NOT_FOUND",)})},
    )
    def patch(self, request: Request) -> Response:
        """Update names, the display name, the preferred language, the call defaults and the
        role's profile details. Role, email, verification flags, specialty and license number
        cannot be changed here; the avatar has its own endpoint (me/avatar/)."""
        user = services.user_update_profile(user=request.user, data=validated(ProfileUpdateSerializer, request.data))
        return Response(UserSerializer(user).data)


class MeAvatarApi(APIView):
    parser_classes = [MultiPartParser]

    @classmethod
    def request_body_limit(cls) -> int:
        """This route's request body limit (core/asgi.py): the largest image and its framing."""
        return settings.AVATAR_MAX_BYTES + settings.ATTACHMENT_MULTIPART_OVERHEAD_BYTES

    @extend_schema(
        tags=["users"],
        request={"multipart/form-data": AvatarUploadSerializer},
        responses={
            200: UserSerializer,
            400: error_response("INVALID_IMAGE: the bytes do not decode as an image, or it has too many pixels."),
            413: error_response("PAYLOAD_TOO_LARGE: the image exceeds AVATAR_MAX_BYTES (details.limit)."),
            415: error_response(
                "UNSUPPORTED_MEDIA_TYPE: the body is not multipart/form-data, or the file's bytes are not "
                "JPEG, PNG or WebP (details.allowed), whatever its name or declared type."
            ),
        },
    )
    def put(self, request: Request) -> Response:
        """Set the avatar: an image whose type is read from its bytes, re-encoded (at most
        ``AVATAR_MAX_SIDE_PIXELS`` a side) without its metadata (EXIF, GPS, camera)."""
        data = validated(AvatarUploadSerializer, request.data)
        user = avatars.avatar_set(user=request.user, file=data["avatar"])
        return Response(UserSerializer(user).data)

    @extend_schema(tags=["users"], responses={204: None})
    def delete(self, request: Request) -> Response:
        """Remove the avatar (none to remove is not an error)."""
        avatars.avatar_remove(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _ImageOrJsonErrors(DefaultContentNegotiation):
    """The avatar answers its image type whatever ``Accept`` says; errors stay JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class UserAvatarApi(APIView):
    content_negotiation_class = _ImageOrJsonErrors

    @extend_schema(
        tags=["users"],
        parameters=[OpenApiParameter("v", str, description="The version in avatar_url; ignored.")],
        responses={
            (200, content_type): OpenApiResponse(OpenApiTypes.BINARY, description="The re-encoded image.")
            for content_type in sorted(set(avatars.CONTENT_TYPES.values()))
        }
        | error_codes({404: ("NOT_FOUND",)}),
    )
    def get(self, request: Request, user_id) -> HttpResponse:
        """A user's avatar, for those who may see the user (themselves, staff, anyone for a
        listed doctor, a doctor's patients and a patient's doctors); 404 for anyone else and for
        a user without one."""
        user = selectors.user_get_visible_to(viewer=request.user, user_id=user_id)
        if not user.avatar:
            raise NotFound("This user has no avatar.")
        response = HttpResponse(avatars.avatar_read(user.avatar), content_type=avatars.avatar_content_type(user.avatar))
        response["X-Content-Type-Options"] = "nosniff"
        # Private: a shared cache must not hand it to someone the rule would refuse.
        response["Cache-Control"] = "private, max-age=86400"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response


class _DirectoryApi(APIView):
    pagination_class = PageNumberPagination

    def paginated(self, request: Request, queryset, serializer_class) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)


class DoctorListApi(_DirectoryApi):
    @extend_schema(
        tags=["directory"],
        parameters=[
            OpenApiParameter("search", str, description="Words matched against names and specialty."),
            OpenApiParameter("specialty", str, description="Exact specialty (case-insensitive)."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: DoctorDirectorySerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """Verified doctors (staff also see unverified ones)."""
        filters = validated(DirectorySearchSerializer, request.query_params)
        doctors = selectors.doctor_list_for_user(user=request.user, **filters)
        return self.paginated(request, doctors, DoctorDirectorySerializer)


class DoctorDetailApi(APIView):
    @extend_schema(tags=["directory"], responses={200: DoctorDirectorySerializer, **error_codes({404: ("NOT_FOUND",)})})
    def get(self, request: Request, doctor_id) -> Response:
        return Response(
            DoctorDirectorySerializer(selectors.doctor_get_for_user(user=request.user, doctor_id=doctor_id)).data
        )


class PatientListApi(_DirectoryApi):
    @extend_schema(
        tags=["directory"],
        parameters=[
            OpenApiParameter("search", str, description="Words matched against names and email."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: PatientDirectorySerializer(many=True), **error_codes({403: ("PERMISSION_DENIED",)})},
    )
    def get(self, request: Request) -> Response:
        """A doctor's patients (anyone they have or had a session with); staff see all."""
        filters = validated(DirectorySearchSerializer, request.query_params)
        patients = selectors.patient_list_for_user(user=request.user, search=filters.get("search", ""))
        return self.paginated(request, patients, PatientDirectorySerializer)


class PatientDetailApi(APIView):
    @extend_schema(
        tags=["directory"],
        responses={200: PatientDirectorySerializer, **error_codes({403: ("PERMISSION_DENIED",), 404: ("NOT_FOUND",)})},
    )
    def get(self, request: Request, patient_id) -> Response:
        patient = selectors.patient_get_for_user(user=request.user, patient_id=patient_id)
        return Response(PatientDirectorySerializer(patient).data)
