"""Production settings pass Django's deployment checks and refuse to start without secrets."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "SECRET_KEY": "x7!Qm#2vLp9$Rt4&Wz8^Yk3*Nb6(Hc1)Jd5_Fg0+Ts-Ue=Va;Xo:Ir,Pq.Ml?Sn",
    "ALLOWED_HOSTS": "api.clinic.example",
    "DATABASE_URL": "postgres://telehealth@db.internal:5432/telehealth",
    "REDIS_URL": "redis://cache.internal:6379/0",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base_env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base_env, "DJANGO_SETTINGS_MODULE": "config.settings.prod", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_no_issues_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_refuse_to_start_without_their_variables():
    result = _manage("check", env={"SECRET_KEY": PRODUCTION_ENV["SECRET_KEY"]})

    assert result.returncode != 0
    assert "ALLOWED_HOSTS, DATABASE_URL, REDIS_URL" in result.stderr
