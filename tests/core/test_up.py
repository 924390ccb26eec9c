"""`manage.py up` as a user runs it: a real process tree, stopped by a signal."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.conftest import free_port

BASE_DIR = Path(__file__).resolve().parents[2]


def up_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DESKPILOT_HOME=str(home), DJANGO_SETTINGS_MODULE="config.settings", **extra)
    return env


def run_up(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "up", *args],
        cwd=BASE_DIR,
        env=up_env(home, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_refuses_a_port_in_use_with_a_clear_message(tmp_path):
    # given: something already listens on the port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # when
        result = run_up(tmp_path / "home", "--port", str(port))
    # then
    assert result.returncode == 1
    assert f"error: port {port} on 127.0.0.1 is already in use" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "home" / "pgdata").exists()  # nothing was started


def test_up_names_an_unreachable_database_url_with_password_masked(tmp_path):
    # when
    result = run_up(
        tmp_path / "home",
        "--port",
        str(free_port()),
        DATABASE_URL="postgresql://deskpilot:s3cret@127.0.0.1:1/deskpilot",
    )
    # then
    assert result.returncode == 1
    assert (
        "error: DATABASE_URL postgresql://deskpilot:***@127.0.0.1:1/deskpilot is unreachable"
        in (result.stdout)
    )
    assert "s3cret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_up_names_an_unreachable_redis_url(tmp_path):
    # given: a reachable database is not needed; Redis is checked after it, so use ours
    env_database = os.environ["DATABASE_URL"]
    # when
    result = run_up(
        tmp_path / "home",
        "--port",
        str(free_port()),
        DATABASE_URL=env_database,
        REDIS_URL="redis://:pw@127.0.0.1:1/0",
    )
    # then
    assert result.returncode == 1
    assert "error: REDIS_URL redis://:***@127.0.0.1:1/0 is unreachable" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_setting_value_gives_one_line_not_a_traceback(tmp_path):
    # when
    result = run_up(tmp_path / "home", DEBUG="maybe")
    # then
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: DEBUG='maybe' is not a boolean (use true/false, 1/0, yes/no)"
    )


def _descendants_and_services(up: psutil.Process, home: Path) -> list[psutil.Process]:
    found = {child.pid: child for child in up.children(recursive=True)}
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(home) in cmdline:
            found[process.pid] = process
    pid_file = home / "pgdata" / "postmaster.pid"
    if pid_file.exists():
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        found[postmaster.pid] = postmaster
        found.update({child.pid: child for child in postmaster.children(recursive=True)})
    found.pop(up.pid, None)
    return list(found.values())


def start_up(home: Path, port: int, **env: str) -> tuple[subprocess.Popen, list[str]]:
    """Start `up` (with `env` added) and read its output until it says it is ready."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "up", "--port", str(port)],
        cwd=BASE_DIR,
        env={**up_env(home), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "Deskpilot is ready" in line or "error:" in line:
            break
    if not any("Deskpilot is ready" in line for line in lines):
        process.kill()
        pytest.fail("up did not become ready:\n" + "".join(lines))
    return process, lines


def pipeline_worker(up: subprocess.Popen) -> psutil.Process | None:
    """`up`'s pipeline worker process (a child of `up`), if it runs."""
    for child in psutil.Process(up.pid).children():
        if "-Q pipeline" in _command_line(child):
            return child
    return None


def _command_line(process: psutil.Process) -> str:
    """The process's command line; "" for one that has exited since it was listed (a
    short-lived child, such as a service's helper, can be a zombie by then)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""


def stop_and_assert_nothing_left(process: subprocess.Popen, home: Path, stop_signal: int) -> None:
    tree = _descendants_and_services(psutil.Process(process.pid), home)
    names = " ".join(_command_line(p) for p in tree)
    assert "uvicorn" in names and " worker " in names and " beat " in names
    assert any(p.name().startswith("postgres") for p in tree)
    assert any(p.name().startswith("redis") for p in tree)
    # when
    process.send_signal(stop_signal)
    try:
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    # then: nothing it started is still running
    deadline = time.monotonic() + 5
    alive = tree
    while alive and time.monotonic() < deadline:
        alive = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    output = process.stdout.read() if process.stdout else ""
    assert alive == [], ([" ".join(p.cmdline()) for p in alive], output)
    assert process.returncode == 0, output
    assert not (home / "run" / "database_url").exists()


@pytest.mark.slow
def test_up_is_ready_stops_cleanly_on_signals_and_keeps_its_data(tmp_path):
    # given: a fresh home, no DATABASE_URL / REDIS_URL: embedded services
    home = tmp_path / "home"
    port = free_port()
    # (one prefork process instead of the default two: one process less to warm up)
    process, _ = start_up(home, port, CELERY_CONCURRENCY="1")
    try:
        # then: ready means its worker processes are warm too, as /readyz says: the prefork
        # worker's one and the pipeline worker's one process (its threads share it)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:
            assert json.load(response)["warm_worker_processes"] == 2
        children = psutil.Process(process.pid).children()
        commands = [" ".join(child.cmdline()) for child in children]
        assert any("-Q pipeline --pool threads --concurrency 32" in line for line in commands)
        assert any(
            "-Q default,ingest,eval --pool prefork --concurrency 1" in line for line in commands
        )
    except BaseException:
        process.terminate()  # `up` stops what it started; a failed check must not leave it
        process.wait(60)
        raise
    database_url = (home / "run" / "database_url").read_text()
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('hello')")
    secret = (home / "secret_key").read_text()
    # when: SIGTERM, as a service manager stops it
    stop_and_assert_nothing_left(process, home, signal.SIGTERM)
    # and: a second `up` on the same home (not warming its processes: only the data is
    # checked), stopped by Ctrl-C
    process, _ = start_up(home, port, WORKER_WARM="false", WEB_WARM="false")
    database_url = (home / "run" / "database_url").read_text()
    with psycopg.connect(database_url) as connection:
        kept = connection.execute("SELECT note FROM kept").fetchall()
    # and: its pipeline worker killed (as the kernel's OOM killer would) is started again
    killed = pipeline_worker(process)
    killed.kill()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        replacement = pipeline_worker(process)
        if replacement is not None and replacement.pid != killed.pid:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the killed pipeline worker was not started again")
    assert process.poll() is None
    stop_and_assert_nothing_left(process, home, signal.SIGINT)
    # then: the data and the secret key survived the restart
    assert kept == [("hello",)]
    assert (home / "secret_key").read_text() == secret


def test_a_child_that_keeps_failing_stops_up_but_one_killed_from_outside_is_restarted(tmp_path):
    from apps.core.launcher import RESTART_LIMIT, Launcher, LaunchError, LaunchOptions

    launcher = Launcher(options=LaunchOptions(home=tmp_path, base_dir=BASE_DIR), out=io.StringIO())
    env = dict(os.environ)
    # given: a child killed from outside (SIGKILL, as the OOM killer does) more times than
    # the limit allows a crash
    launcher.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], env)
    try:
        for _ in range(RESTART_LIMIT + 2):
            _, process = launcher.children[0]
            process.kill()
            process.wait()
            launcher.supervise()
            # then: started again each time
            assert launcher.children[0][1].pid != process.pid
        # given: a child that fails on its own at every start (a bad setting)
        launcher.spawn("broken", [sys.executable, "-c", "import sys; sys.exit(3)"], env)
        # then: restarted up to the limit, then `up` stops naming it
        with pytest.raises(
            LaunchError, match="the broken process exited with code 3 \\(5 restarts"
        ):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                launcher.supervise()
                time.sleep(0.1)
    finally:
        launcher.stop()
