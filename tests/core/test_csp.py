"""Content-Security-Policy: the admin's pages allow only this host's scripts and frame nothing;
the API docs pages keep their own same-host policy (core/api_docs.py); API answers get none
from the admin's middleware."""

import pytest
from django.test import Client

from core.api_docs import DOCS_CONTENT_SECURITY_POLICY
from core.middleware import ADMIN_CONTENT_SECURITY_POLICY
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def directives(policy: str) -> dict[str, str]:
    return {part.split()[0]: part.split(" ", 1)[1] for part in policy.split("; ")}


def test_the_admin_login_page_has_the_admin_policy():
    response = Client().get("/admin/login/")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == ADMIN_CONTENT_SECURITY_POLICY


def test_the_admin_pages_of_a_signed_in_staff_member_have_the_policy():
    client = Client()
    client.force_login(StaffFactory(is_staff=True, is_superuser=True))

    for path in ("/admin/", "/admin/accounts/user/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response["Content-Security-Policy"] == ADMIN_CONTENT_SECURITY_POLICY, path


def test_the_admin_policy_runs_no_inline_or_foreign_script_and_frames_nothing():
    policy = directives(ADMIN_CONTENT_SECURITY_POLICY)

    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_pages_keep_their_own_policy(path):
    response = Client().get(path)

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == DOCS_CONTENT_SECURITY_POLICY


def test_api_answers_get_no_admin_policy(anon_client):
    assert "Content-Security-Policy" not in anon_client.get("/api/health/live")
