"""The Celery application: queues split by cost (pipeline, ingest, eval) plus default."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("deskpilot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "pipeline", "ingest", "eval")]
app.autodiscover_tasks()
