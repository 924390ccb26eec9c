"""Settings come from the environment; bad values are refused with a clear message."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import (
    ConfigurationError,
    database_from_url,
    env_bool,
    env_int,
    env_list,
    env_networks,
    env_url,
    mask_url,
)

BASE_DIR = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_values(tmp_path):
    # when
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="support.example.com",
        DATABASE_URL="postgresql://deskpilot:pw@db.internal:5432/deskpilot",
        REDIS_URL="redis://cache.internal:6379/0",
        DESKPILOT_HOME=str(tmp_path),
    )
    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_short_secret_key_is_refused_in_production(tmp_path):
    # when
    result = manage("check", DEBUG="false", SECRET_KEY="short", DESKPILOT_HOME=str(tmp_path))
    # then
    assert result.returncode == 2
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # runs may last 60 s + the longest model call (198 s) + 15 s; the sweep would
        # deliver them again after 100 s
        (
            {"PIPELINE_TIME_LIMIT": "60", "PIPELINE_SWEEP_PROCESSING_AFTER": "100"},
            "PIPELINE_SWEEP_PROCESSING_AFTER must be above the pipeline's hard time limit, "
            "273 s (PIPELINE_TIME_LIMIT + the longest model call + 15 s); it is 100",
        ),
        # the broker would hand an unacknowledged task out again after 1000 s
        (
            {
                "PIPELINE_TIME_LIMIT": "1000",
                "PIPELINE_SWEEP_PROCESSING_AFTER": "5000",
                "CELERY_VISIBILITY_TIMEOUT": "1000",
            },
            "CELERY_VISIBILITY_TIMEOUT must be above the pipeline's hard time limit, "
            "1213 s (PIPELINE_TIME_LIMIT + the longest model call + 15 s); it is 1000",
        ),
    ],
)
def test_settings_that_would_deliver_a_running_pipeline_again_are_refused(tmp_path, env, message):
    # when
    result = manage("check", DESKPILOT_HOME=str(tmp_path), **env)
    # then
    assert result.returncode == 2
    assert message in result.stderr


def test_secret_key_is_generated_once_and_kept_under_home(tmp_path):
    # when
    first = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        DESKPILOT_HOME=str(tmp_path),
    )
    second = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        DESKPILOT_HOME=str(tmp_path),
    )
    # then
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert len(first.stdout.strip()) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("YES", True), ("off", False), ("0", False), ("", False)],
)
def test_env_bool_reads_common_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("FLAG", value)
    assert env_bool("FLAG") is expected


def test_env_bool_refuses_anything_else(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ConfigurationError, match=r"FLAG='maybe' is not a boolean"):
        env_bool("FLAG")


def test_env_networks_reads_cidrs_and_refuses_anything_else(monkeypatch):
    monkeypatch.setenv("NETS", "10.20.0.0/16, 192.168.1.7 ,fd00::/8")
    assert env_networks("NETS") == ["10.20.0.0/16", "192.168.1.7/32", "fd00::/8"]
    monkeypatch.setenv("NETS", "10.0.0.0/8,intranet")
    with pytest.raises(ConfigurationError, match=r"NETS: 'intranet' is not an IP network"):
        env_networks("NETS")


def test_env_int_refuses_words_and_values_below_minimum(monkeypatch):
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ConfigurationError, match="N='ten' is not a whole number"):
        env_int("N", 1)
    monkeypatch.setenv("N", "-1")
    with pytest.raises(ConfigurationError, match="N=-1 is below the minimum of 0"):
        env_int("N", 1, minimum=0)


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example.com, ,b.example.com ")
    assert env_list("HOSTS") == ["a.example.com", "b.example.com"]


def test_env_url_refuses_a_wrong_scheme_and_masks_the_password(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://root:hunter2@db/x")
    with pytest.raises(ConfigurationError) as error:
        env_url("DATABASE_URL", schemes=("postgres", "postgresql"))
    assert "hunter2" not in str(error.value)
    assert "mysql://root:***@db/x" in str(error.value)


def test_mask_url_leaves_urls_without_password_alone():
    assert mask_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert mask_url("postgresql://u:p%40ss@h:5/d") == "postgresql://u:***@h:5/d"


def test_database_url_with_socket_folder_and_options():
    # when
    config = database_from_url(
        "postgresql://app:s%3Acret@/deskpilot?host=/var/run/pg&sslmode=require"
    )
    # then
    assert config["NAME"] == "deskpilot"
    assert config["USER"] == "app"
    assert config["PASSWORD"] == "s:cret"
    assert config["HOST"] == "/var/run/pg"
    assert config["OPTIONS"] == {"sslmode": "require"}


@pytest.mark.django_db
def test_a_query_past_the_statement_timeout_is_cancelled_by_postgresql():
    from tests.conftest import test_database_url

    # given: a process started with a 0.3 s statement timeout (a web process defaults to 30)
    script = (
        "from django.db import connection\n"
        "cursor = connection.cursor()\n"
        "cursor.execute('SHOW statement_timeout'); print('timeout', cursor.fetchone()[0])\n"
        "try:\n"
        "    cursor.execute('SELECT pg_sleep(3)')\n"
        "except Exception as error:\n"
        "    print('cancelled:', type(error).__name__, error)\n"
    )
    # when: one of its queries runs longer
    result = manage(
        "shell", "-c", script, DATABASE_URL=test_database_url(), DATABASE_STATEMENT_TIMEOUT="0.3"
    )
    # then: PostgreSQL cancelled it, and the process could say so
    assert "timeout 300ms" in result.stdout, result.stdout + result.stderr
    assert "cancelled: OperationalError canceling statement due to statement timeout" in (
        result.stdout
    ), result.stdout + result.stderr
