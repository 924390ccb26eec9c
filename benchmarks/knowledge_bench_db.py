"""Shared setup for the benchmarks: a throwaway database, migrated, Django ready.

With DATABASE_URL set, a fresh database named `bench_<name>` is created on that server;
without it, an embedded PostgreSQL is started under .deskpilot/bench (and stopped at exit).
With `redis=True`, REDIS_URL or else an embedded Redis under .deskpilot/bench (stopped at
exit); without it, a Redis URL that is never contacted.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def database_setup(name: str, *, redis: bool = False) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.chdir(BASE_DIR)
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(key, value)
    url = os.environ.get("DATABASE_URL")
    if not url:
        from apps.core.embedded import EmbeddedPostgres

        home = Path(os.environ.get("DESKPILOT_HOME", BASE_DIR / ".deskpilot")).resolve() / "bench"
        os.environ["DESKPILOT_HOME"] = str(home)
        postgres = EmbeddedPostgres(home)
        already_running = (postgres.pgdata / "postmaster.pid").exists()
        url = postgres.start()
        if not already_running:
            # Another benchmark may share this server: only its starter stops it.
            atexit.register(postgres.stop)
    import psycopg

    database = f"bench_{name}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}"')
        connection.execute(f'CREATE DATABASE "{database}"')
    parts = urlsplit(url)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + database))
    if redis and not os.environ.get("REDIS_URL"):
        from apps.core.embedded import EmbeddedRedis

        home = Path(os.environ.get("DESKPILOT_HOME", BASE_DIR / ".deskpilot")).resolve()
        embedded = EmbeddedRedis(home if home.name == "bench" else home / "bench")
        os.environ["REDIS_URL"] = embedded.start()
        atexit.register(embedded.stop)
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # never contacted
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 60)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
