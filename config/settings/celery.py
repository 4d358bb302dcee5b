"""Celery: Redis as broker and result backend when ``REDIS_URL`` is set; otherwise kombu's
filesystem transport, so a real worker and beat run on a laptop with no server at all."""

from pathlib import Path

from config.settings.env import BASE_DIR, env

_REDIS_URL = env.str("REDIS_URL", default="")
_VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
_QUEUE_DIR = _VAR_DIR / "celery"

if _REDIS_URL:
    CELERY_BROKER_URL = _REDIS_URL
    CELERY_RESULT_BACKEND = _REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_RESULT_BACKEND = f"file://{_QUEUE_DIR / 'results'}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_QUEUE_DIR / "queue"),
        "data_folder_out": str(_QUEUE_DIR / "queue"),
        "processed_folder": str(_QUEUE_DIR / "processed"),
        "control_folder": str(_QUEUE_DIR / "control"),
        "store_processed": False,
    }
    # The filesystem transport expects its folders to exist.
    for _folder in ("queue", "processed", "results", "control"):
        (_QUEUE_DIR / _folder).mkdir(parents=True, exist_ok=True)

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXPIRES = 60 * 60
CELERY_BEAT_SCHEDULE_FILENAME = str(_VAR_DIR / "celerybeat-schedule")
# Periodic sweeps are listed next to the rules they enforce (settings/consultations.py,
# settings/calls.py) and merged into CELERY_BEAT_SCHEDULE in base.py.
