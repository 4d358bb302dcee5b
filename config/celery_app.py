"""The Celery application. Tasks live in each app's ``tasks.py`` and are found automatically.

Two hooks carry a request's context into the tasks it starts: the publisher puts the current
request id in the message's headers (``request_id``), and the worker sets it again while the
task runs, so the task's log lines name the request (or socket connection) that queued it. The
same hooks count and time each task (core/metrics.py).
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("telehealth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _keep_the_projects_logging(**kwargs) -> None:
    """A worker logs as the server does: settings.LOGGING, which django.setup() applied when the
    worker loaded the project (JSON lines with the request id, core/logging.py). Without a
    receiver here Celery configures logging itself, replacing the root logger's handlers with
    its own plain-text one (and, for a worker started inside a test, for every later test)."""


# Header of a task message that names the request that queued it.
REQUEST_ID_HEADER = "request_id"
_request_id_tokens: dict[str, object] = {}


@signals.before_task_publish.connect
def _stamp_request_id(headers: dict | None = None, **kwargs) -> None:
    from core.request_context import request_id_var

    if headers is not None and request_id_var.get() != "-":
        headers.setdefault(REQUEST_ID_HEADER, request_id_var.get())


@signals.task_prerun.connect
def _task_prerun(task_id: str, task, **kwargs) -> None:
    from core import metrics
    from core.request_context import request_id_var

    # Custom headers of a message become attributes of the task's request; an eager run keeps
    # the caller's context (and its request id) as it is.
    request_id = getattr(task.request, REQUEST_ID_HEADER, None)
    if request_id:
        _request_id_tokens[task_id] = request_id_var.set(request_id)
    metrics.task_started(task_id)


@signals.task_postrun.connect
def _task_postrun(task_id: str, task, state: str | None = None, **kwargs) -> None:
    from core import metrics
    from core.request_context import request_id_var

    metrics.task_finished(task_id, task.name, state)
    token = _request_id_tokens.pop(task_id, None)
    if token is not None:
        request_id_var.reset(token)
