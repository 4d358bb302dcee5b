"""Routes of the audit trail, included under ``/api/v1/``."""

from django.urls import path

from audit import apis

urlpatterns = [
    path("audit/entries/", apis.AuditEntryListApi.as_view(), name="audit-entry-list"),
    path("audit/entries/export/", apis.AuditEntryExportApi.as_view(), name="audit-entry-export"),
]
