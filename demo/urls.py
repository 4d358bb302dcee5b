"""Routes of the reference web client, mounted at ``/demo/`` by config/urls.py."""

from django.urls import path

from demo.views import demo_client

urlpatterns = [
    path("", demo_client, name="demo-client"),
]
