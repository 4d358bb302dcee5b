from django.urls import path

from core import views

urlpatterns = [
    path("live", views.live, name="health-live"),
    path("ready", views.ready, name="health-ready"),
    path("info", views.info, name="health-info"),
    path("metrics", views.metrics, name="health-metrics"),
]
