"""Call history, detail, statistics and quality-metric endpoints."""

urlpatterns: list = []
