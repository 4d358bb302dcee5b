from django.urls import path

from realtime import apis

urlpatterns = [
    path("realtime/tickets/", apis.TicketApi.as_view(), name="realtime-ticket"),
]
