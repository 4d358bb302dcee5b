"""Settings of the processes a fault drill starts (servers, Celery worker and beat): the test
settings, whose secret key signs the tokens the test process issues, with Celery tasks sent to the
broker instead of run in the sender's process, so a worker that is down really leaves them
waiting and a reconnect grace really waits."""

from config.settings.test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = False
