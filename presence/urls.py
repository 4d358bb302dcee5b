from django.urls import path

from presence import apis

urlpatterns = [
    path("presence/me/", apis.MyPresenceApi.as_view(), name="presence-me"),
    path("presence/doctors/", apis.OnlineDoctorListApi.as_view(), name="presence-online-doctors"),
    path("presence/online/", apis.OnlineUserListApi.as_view(), name="presence-online-users"),
    path("presence/<uuid:user_id>/", apis.UserPresenceApi.as_view(), name="presence-user"),
]
