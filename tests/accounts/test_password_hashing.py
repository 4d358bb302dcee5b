"""Passwords are stored as Argon2 hashes in production.

The test settings put a fast hasher first so the suite does not pay Argon2's cost on every
sign-in; these tests put the production list back and check what a real deployment stores."""

import importlib

import pytest
from django.conf import settings as django_settings

from accounts.models import User
from tests.accounts.helpers import REGISTER, STRONG_PASSWORD, register_body

pytestmark = pytest.mark.django_db


def test_production_settings_hash_new_passwords_with_argon2id():
    base = importlib.import_module("config.settings.base")
    prod_source = importlib.util.find_spec("config.settings.prod").loader.get_source("config.settings.prod")

    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert base.PASSWORD_HASHERS == django_settings.PRODUCTION_PASSWORD_HASHERS
    # prod inherits base's list and does not replace it
    assert "PASSWORD_HASHERS" not in prod_source


def test_registering_stores_an_argon2_hash_of_the_password(anon_client, settings):
    # given the production hashers
    settings.PASSWORD_HASHERS = settings.PRODUCTION_PASSWORD_HASHERS

    # when a visitor registers
    response = anon_client.post(REGISTER, register_body())

    # then the stored password is an Argon2id hash of what they chose
    assert response.status_code == 202
    user = User.objects.get(email="margaret.hamilton@example.test")
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password(STRONG_PASSWORD)
