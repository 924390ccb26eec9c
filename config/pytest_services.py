"""pytest plugin: real PostgreSQL + pgvector and real Redis for the test run.

Loaded with `-p config.pytest_services` (pyproject) so it runs before Django's
settings are read. When DATABASE_URL / REDIS_URL are unset, it starts the embedded
servers under DESKPILOT_HOME/test (kept between runs, for speed) and stops them at
the end; when they are set, it uses them as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apps.core.embedded import EmbeddedPostgres, EmbeddedRedis, services_start

_started: list[EmbeddedPostgres | EmbeddedRedis] = []


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):  # type: ignore[no-untyped-def]
    # Importing this plugin imported config/celery.py, which defaults the settings module to
    # production settings; tests always use the test overrides.
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    home = Path(os.environ.get("DESKPILOT_HOME", ".deskpilot")).resolve() / "test"
    os.environ["DESKPILOT_HOME"] = str(home)
    _started.extend(services_start(home))
    if any(isinstance(service, EmbeddedRedis) for service in _started):
        # Our own throwaway Redis: start from empty queues, not an earlier run's tasks.
        import redis as redis_client

        redis_client.Redis.from_url(os.environ["REDIS_URL"]).flushall()


def pytest_unconfigure(config):  # type: ignore[no-untyped-def]
    # Worker processes started by xdist inherit the URLs and start nothing themselves.
    while _started:
        _started.pop().stop()
