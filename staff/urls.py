"""Routes of the staff console, included under ``/api/v1/``."""

from django.urls import path

from staff import apis

urlpatterns = [
    path("staff/dashboard/", apis.DashboardApi.as_view(), name="staff-dashboard"),
    path("staff/analytics/", apis.AnalyticsApi.as_view(), name="staff-analytics"),
    path("staff/users/", apis.UserListApi.as_view(), name="staff-user-list"),
    path("staff/users/<uuid:user_id>/", apis.UserDetailApi.as_view(), name="staff-user-detail"),
    path("staff/users/<uuid:user_id>/suspend/", apis.UserSuspendApi.as_view(), name="staff-user-suspend"),
    path("staff/users/<uuid:user_id>/reactivate/", apis.UserReactivateApi.as_view(), name="staff-user-reactivate"),
    path("staff/calls/", apis.CallListApi.as_view(), name="staff-call-list"),
    path("staff/calls/<uuid:call_id>/", apis.CallDetailApi.as_view(), name="staff-call-detail"),
    path("staff/calls/<uuid:call_id>/end/", apis.CallEndApi.as_view(), name="staff-call-end"),
    path(
        "staff/calls/<uuid:call_id>/participants/",
        apis.CallParticipantListApi.as_view(),
        name="staff-call-participants",
    ),
    path(
        "staff/calls/<uuid:call_id>/participants/<uuid:user_id>/remove/",
        apis.CallParticipantRemoveApi.as_view(),
        name="staff-call-participant-remove",
    ),
]
