"""Fixtures of the accounts tests."""

import argon2
import pytest


@pytest.fixture
def argon2_hashes(monkeypatch, settings) -> list[str]:
    """Records each Argon2 computation ("hash" or "verify") the request makes, so a test can
    show that an unknown account costs the same work as a known one (equal timing). Puts the
    production hashers (Argon2 first) in place of the suite's fast one."""
    settings.PASSWORD_HASHERS = settings.PRODUCTION_PASSWORD_HASHERS
    calls: list[str] = []
    hash_secret = argon2.low_level.hash_secret
    verify = argon2.PasswordHasher.verify

    def counting_hash_secret(*args, **kwargs):
        calls.append("hash")
        return hash_secret(*args, **kwargs)

    def counting_verify(self, *args, **kwargs):
        calls.append("verify")
        return verify(self, *args, **kwargs)

    monkeypatch.setattr(argon2.low_level, "hash_secret", counting_hash_secret)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting_verify)
    return calls
