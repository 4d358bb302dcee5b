"""Room, join and ad-hoc call endpoints."""

urlpatterns: list = []
