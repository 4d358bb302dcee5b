"""Account endpoints: each validates its input, calls one service or selector, and serializes."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.serializers import (
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
    PhoneSendCodeSerializer,
    PhoneVerifySerializer,
    ProfileUpdateSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenPairSerializer,
    UserSerializer,
)
from accounts.throttles import AUTH_THROTTLES
from core.pagination import PageNumberPagination
from core.schema import error_response
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
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Register a patient or (unverified) doctor. The answer is the same whether or not the
        email was already registered; a confirmation link is emailed."""
        services.user_register(**validated(RegisterSerializer, request.data))
        return Response(
            {"detail": "Registration received. Check your email to confirm your address, then sign in."},
            status=status.HTTP_202_ACCEPTED,
        )


class LoginApi(_PublicAuthApi):
    throttle_name = "login"

    @extend_schema(tags=["auth"], request=LoginSerializer, responses={200: LoginResponseSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        """Sign in with email or verified phone number and password."""
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

    @extend_schema(tags=["auth"], request=RefreshSerializer, responses={200: TokenPairSerializer}, auth=[])
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

    @extend_schema(tags=["auth"], request=PasswordResetSerializer, responses={204: None}, auth=[])
    def post(self, request: Request) -> Response:
        """Set a new password with the uid and token from the emailed link; signs out everywhere."""
        services.password_reset_confirm(**validated(PasswordResetSerializer, request.data))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EmailVerifyApi(_PublicAuthApi):
    throttle_name = "email-verify"

    @extend_schema(tags=["auth"], request=EmailVerifySerializer, responses={200: DetailSerializer}, auth=[])
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
        },
    )
    def post(self, request: Request) -> Response:
        """Confirm the account's phone number with the texted code; it then works as a login."""
        user = services.phone_verify(user=request.user, **validated(PhoneVerifySerializer, request.data))
        return Response(UserSerializer(user).data)


class MeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["users"], responses={200: UserSerializer})
    def get(self, request: Request) -> Response:
        """The signed-in user's account and profile."""
        return Response(UserSerializer(request.user).data)

    @extend_schema(tags=["users"], request=ProfileUpdateSerializer, responses={200: UserSerializer})
    def patch(self, request: Request) -> Response:
        """Update names and profile details. Role, email, verification flags, specialty and
        license number cannot be changed here."""
        user = services.user_update_profile(user=request.user, data=validated(ProfileUpdateSerializer, request.data))
        return Response(UserSerializer(user).data)


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
    @extend_schema(tags=["directory"], responses={200: DoctorDirectorySerializer})
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
        responses={200: PatientDirectorySerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        """A doctor's patients (anyone they have or had a session with); staff see all."""
        filters = validated(DirectorySearchSerializer, request.query_params)
        patients = selectors.patient_list_for_user(user=request.user, search=filters.get("search", ""))
        return self.paginated(request, patients, PatientDirectorySerializer)


class PatientDetailApi(APIView):
    @extend_schema(tags=["directory"], responses={200: PatientDirectorySerializer})
    def get(self, request: Request, patient_id) -> Response:
        patient = selectors.patient_get_for_user(user=request.user, patient_id=patient_id)
        return Response(PatientDirectorySerializer(patient).data)
