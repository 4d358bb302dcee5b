from django.urls import path

from accounts import apis

urlpatterns = [
    path("auth/register/", apis.RegisterApi.as_view(), name="auth-register"),
    path("auth/login/", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/token/refresh/", apis.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout/", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/password/change/", apis.PasswordChangeApi.as_view(), name="auth-password-change"),
    path("auth/password/forgot/", apis.PasswordForgotApi.as_view(), name="auth-password-forgot"),
    path("auth/password/reset/", apis.PasswordResetApi.as_view(), name="auth-password-reset"),
    path("auth/email/verify/", apis.EmailVerifyApi.as_view(), name="auth-email-verify"),
    path("auth/email/resend/", apis.EmailResendApi.as_view(), name="auth-email-resend"),
    path("auth/phone/send-code/", apis.PhoneSendCodeApi.as_view(), name="auth-phone-send-code"),
    path("auth/phone/verify/", apis.PhoneVerifyApi.as_view(), name="auth-phone-verify"),
    path("auth/phone/resend/", apis.PhoneResendApi.as_view(), name="auth-phone-resend"),
    path("auth/phone/confirm/", apis.PhoneConfirmApi.as_view(), name="auth-phone-confirm"),
    path("me/", apis.MeApi.as_view(), name="me"),
    path("me/avatar/", apis.MeAvatarApi.as_view(), name="me-avatar"),
    path("users/<uuid:user_id>/avatar/", apis.UserAvatarApi.as_view(), name="user-avatar"),
    path("doctors/", apis.DoctorListApi.as_view(), name="doctor-list"),
    path("doctors/<uuid:doctor_id>/", apis.DoctorDetailApi.as_view(), name="doctor-detail"),
    path("patients/", apis.PatientListApi.as_view(), name="patient-list"),
    path("patients/<uuid:patient_id>/", apis.PatientDetailApi.as_view(), name="patient-detail"),
]
