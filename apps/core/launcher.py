"""`manage.py up`: the whole of Deskpilot on one machine, as child processes.

Order: embedded PostgreSQL and Redis (unless their URLs are given), migrations,
demo data, then web, worker and beat. Every child gets DATABASE_URL and REDIS_URL
explicitly. Once ready, a child that dies (a worker killed by the kernel's OOM killer, a
crash) is started again, as a service manager would; one that keeps dying stops `up` with
its log's last lines. On Ctrl-C or SIGTERM, children stop in reverse order and the embedded
servers last, so nothing is left running.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from apps.core.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServiceError,
    die_with_parent,
)
from apps.core.workers import workers_warm_reset
from config.env import mask_url, private_dir

# Hosts a browser reaches as localhost: loopback names, and the addresses that listen on every
# interface (served there, the site is still browsed on loopback here).
LOCAL_OR_ANY_HOST = frozenset({"0.0.0.0", "", "::", "localhost", "127.0.0.1"})  # noqa: S104

STOP_GRACE_SECONDS = 15.0
# A child that dies on its own this many times within the window is crash-looping (a bad
# setting, a broken import: it dies seconds after each start): `up` stops and says why
# instead of restarting it forever. As systemd's default start limit, 5 in 10 s, with room
# for imports. A SIGKILL comes from outside (the OOM killer, an operator) and is not counted.
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 60.0


class LaunchError(Exception):
    """A one-line reason `up` cannot start; printed without a traceback."""


@dataclass
class LaunchOptions:
    home: Path
    base_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = False
    web_workers: int = 1
    worker_concurrency: int = 2
    # The `pipeline` queue's worker (see PIPELINE_WORKER_POOL in config/settings.py).
    pipeline_pool: str = "threads"
    pipeline_concurrency: int = 32
    pipeline_processes: int = 1
    ready_timeout: float = 180.0

    def warm_processes(self, queues: list[str]) -> int:
        """How many worker processes register as warm once started: each prefork child,
        and a threads worker once (its threads share one process)."""
        count = self.worker_concurrency if set(queues) - {"pipeline"} else 0
        if "pipeline" in queues:
            per_worker = self.pipeline_concurrency if self.pipeline_pool == "prefork" else 1
            count += per_worker * self.pipeline_processes
        return count


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check_database_url(url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LaunchError(f"DATABASE_URL {mask_url(url)} is unreachable: {reason}") from None


def check_redis_url(url: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        client.ping()
        client.close()
    except Exception as error:
        raise LaunchError(f"REDIS_URL {mask_url(url)} is unreachable: {error}") from None


@dataclass
class Launcher:
    options: LaunchOptions
    out: TextIO = sys.stdout
    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    # What each child was started with, by name, to start it again.
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    restarts: dict[str, list[float]] = field(default_factory=dict)
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    stopping: bool = False

    @property
    def run_dir(self) -> Path:
        return self.options.home / "run"

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    # --- start -----------------------------------------------------------------------------
    def start_services(self) -> dict[str, str]:
        """Embedded or given PostgreSQL and Redis; returns the environment for children."""
        self.options.home.mkdir(parents=True, exist_ok=True)  # its mode: config.env
        private_dir(self.run_dir)
        database_url = os.environ.get("DATABASE_URL", "").strip()
        redis_url = os.environ.get("REDIS_URL", "").strip()
        if database_url:
            check_database_url(database_url)
            self.say(f"database  {mask_url(database_url)} (from DATABASE_URL)")
        else:
            self.postgres = EmbeddedPostgres(self.options.home)
            try:
                database_url = self.postgres.start()
            except EmbeddedServiceError as error:
                raise LaunchError(str(error)) from None
            self.say(f"database  embedded PostgreSQL + pgvector in {self.postgres.pgdata}")
            (self.run_dir / "database_url").write_text(database_url)
        if redis_url:
            check_redis_url(redis_url)
            self.say(f"redis     {mask_url(redis_url)} (from REDIS_URL)")
        else:
            self.redis = EmbeddedRedis(self.options.home)
            try:
                redis_url = self.redis.start()
            except EmbeddedServiceError as error:
                raise LaunchError(str(error)) from None
            self.say(f"redis     embedded redis-server in {self.redis.data_dir}")
            (self.run_dir / "redis_url").write_text(redis_url)
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            DESKPILOT_HOME=str(self.options.home),
            DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            PYTHONUNBUFFERED="1",
        )
        # One machine, plain HTTP, unless the operator says otherwise.
        env.setdefault("DESKPILOT_HTTPS", "false")
        # A host given to serve on is a host the site answers to (unless the operator lists
        # them): otherwise every request to it would be refused as a bad Host header.
        host = self.options.host
        if "ALLOWED_HOSTS" not in env and host not in LOCAL_OR_ANY_HOST:
            env["ALLOWED_HOSTS"] = f"localhost,127.0.0.1,[::1],{host}"
        if self.options.demo:
            env["DESKPILOT_DEMO"] = "true"
        return env

    def manage(self, env: dict[str, str], *args: str) -> None:
        """Run a management command to completion in a child; fail loudly."""
        command = [sys.executable, str(self.options.base_dir / "manage.py"), *args]
        result = subprocess.run(command, env=env, cwd=self.options.base_dir, check=False)
        if result.returncode != 0:
            raise LaunchError(f"`manage.py {' '.join(args)}` failed (exit {result.returncode})")

    @property
    def log_dir(self) -> Path:
        return self.options.home / "logs"

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.commands[name] = (command, env)
        self.children.append((name, self._popen(name)))

    def _popen(self, name: str) -> subprocess.Popen:
        # A new session: the terminal's Ctrl-C reaches `up` only, which stops children in order.
        command, env = self.commands[name]
        private_dir(self.log_dir)
        with open(self.log_dir / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                command,
                env=env,
                cwd=self.options.base_dir,
                start_new_session=True,
                preexec_fn=die_with_parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start_processes(self, env: dict[str, str]) -> None:
        python = sys.executable
        queues = launch_queues(env)
        self.spawn(
            "web",
            [
                python,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                self.options.host,
                "--port",
                str(self.options.port),
                "--workers",
                str(self.options.web_workers),
                "--no-access-log",
                # The client address is REMOTE_ADDR; X-Forwarded-For is read by Deskpilot
                # itself, only from TRUSTED_PROXIES (uvicorn would believe 127.0.0.1's).
                "--no-proxy-headers",
                "--timeout-graceful-shutdown",
                "5",
            ],
            env,
        )
        other = [queue for queue in queues if queue != "pipeline"]
        if other:
            self.spawn(
                "worker",
                self._celery_worker(other, "prefork", self.options.worker_concurrency, "deskpilot"),
                env,
            )
        if "pipeline" in queues:
            pipeline_env = dict(env)
            # A draft's queries are short (config/settings.py, DATABASE_STATEMENT_TIMEOUT).
            pipeline_env.setdefault("DATABASE_STATEMENT_TIMEOUT", "60")
            if self.options.pipeline_pool == "threads":
                # A database connection per thread at most (each gives it back during model
                # calls), unless the operator sized the pool.
                pipeline_env.setdefault(
                    "DATABASE_POOL_MAX_SIZE", str(self.options.pipeline_concurrency)
                )
            for number in range(1, self.options.pipeline_processes + 1):
                name = "pipeline" if number == 1 else f"pipeline-{number}"
                self.spawn(
                    name,
                    self._celery_worker(
                        ["pipeline"],
                        self.options.pipeline_pool,
                        self.options.pipeline_concurrency,
                        name,
                    ),
                    pipeline_env,
                )
        self.spawn(
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "-s",
                str(self.options.home / "celerybeat-schedule"),
            ],
            env,
        )

    @staticmethod
    def _celery_worker(queues: list[str], pool: str, concurrency: int, name: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            ",".join(queues),
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "-n",
            f"{name}@{socket.gethostname()}",
            "--loglevel",
            "INFO",
        ]

    def wait_until_ready(self, *, warm_workers: int = 0) -> dict:
        """Until /readyz answers 200 and, with `warm_workers`, that many worker processes
        say they are warm: a first customer message is then answered at full speed."""
        url = f"http://{self._url_host()}:{self.options.port}/readyz"
        deadline = time.monotonic() + self.options.ready_timeout
        last = "no answer yet"
        while time.monotonic() < deadline and not self.stopping:
            self.check_children()
            try:
                with urllib.request.urlopen(url, timeout=3) as response:
                    body = json.load(response)
                    warm = body.get("warm_worker_processes") or 0
                    if response.status == 200 and warm >= warm_workers:
                        return body
                    last = f"ready, {warm} of {warm_workers} worker processes warm"
            except urllib.error.HTTPError as error:
                last = error.read().decode(errors="replace")[:300]
            except OSError as error:
                last = str(error)
            time.sleep(0.5)
        raise LaunchError(f"not ready after {self.options.ready_timeout:.0f} s: {last}")

    def check_children(self) -> None:
        """While starting: a child that exits is a configuration error, said at once."""
        for name, process in self.children:
            code = process.poll()
            if code is not None:
                raise self._exited(name, code)

    def supervise(self) -> None:
        """Once running: start again a child that died (a killed worker's messages are
        delivered again, apps/tickets' sweep), unless it keeps dying."""
        now = time.monotonic()
        for index, (name, process) in enumerate(self.children):
            code = process.poll()
            if code is None or self.stopping:
                continue
            # Whatever the child left in its group (a prefork pool's processes) goes too.
            _signal_group(process, signal.SIGKILL)
            recent = [t for t in self.restarts.get(name, []) if now - t < RESTART_WINDOW_SECONDS]
            # Killed from outside (the OOM killer, an operator): not the child's own failure.
            if code != -signal.SIGKILL and len(recent) >= RESTART_LIMIT:
                window = f"{RESTART_WINDOW_SECONDS:.0f} s"
                raise self._exited(name, code, f" ({len(recent)} restarts in the last {window})")
            if code != -signal.SIGKILL:
                self.restarts[name] = [*recent, now]
            self.say(f"restart   the {name} process exited with code {code}; starting it again")
            self.children[index] = (name, self._popen(name))

    def _exited(self, name: str, code: int, note: str = "") -> LaunchError:
        log = self.log_dir / f"{name}.log"
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        return LaunchError(
            f"the {name} process exited with code {code}{note}; last lines of {log}:\n"
            + "\n".join(tail)
        )

    def origins(self) -> list[str]:
        """The browser origins the web server answers on: its host (loopback for an address
        that listens everywhere) by name and by address, on its port."""
        hosts = ["localhost", "127.0.0.1"]
        if self.options.host not in LOCAL_OR_ANY_HOST:
            hosts.append(
                f"[{self.options.host}]" if ":" in self.options.host else self.options.host
            )
        return [f"http://{host}:{self.options.port}" for host in hosts]

    def _url_host(self) -> str:
        return "127.0.0.1" if self.options.host in ("0.0.0.0", "") else self.options.host  # noqa: S104

    # --- stop ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop children (newest first), then Redis, then PostgreSQL. Safe to call twice."""
        self.stopping = True
        for _name, process in reversed(self.children):
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for _name, process in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(remaining)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
            # Anything the child left in its group (a pool process) goes too.
            _signal_group(process, signal.SIGKILL)
        self.children.clear()
        if self.redis is not None:
            self.redis.stop()
            (self.run_dir / "redis_url").unlink(missing_ok=True)
            self.redis = None
        if self.postgres is not None:
            self.postgres.stop()
            (self.run_dir / "database_url").unlink(missing_ok=True)
            self.postgres = None


def launch_queues(env: dict[str, str]) -> list[str]:
    """The Celery queues `up` runs workers for (CELERY_QUEUES, every queue by default)."""
    raw = env.get("CELERY_QUEUES") or "default,pipeline,ingest,eval"
    return [queue.strip() for queue in raw.split(",") if queue.strip()]


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def run(options: LaunchOptions, out: TextIO = sys.stdout) -> int:
    """Start everything, print the URLs, and block until a signal or a child's death."""
    launcher = Launcher(options=options, out=out)

    def request_stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT explicitly too: a parent may have left it ignored (a shell's background job).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    if not port_is_free(options.host, options.port):
        launcher.say(
            f"error: port {options.port} on {options.host} is already in use; "
            f"stop what uses it or choose another with --port or DESKPILOT_PORT"
        )
        return 1
    started = time.monotonic()
    try:
        env = launcher.start_services()
        launcher.say("migrate   applying database migrations…")
        launcher.manage(env, "migrate", "--noinput", "-v", "0")
        if env.get("DEBUG", "").lower() not in ("1", "true", "yes", "on") and not options.demo:
            launcher.manage(env, "collectstatic", "--noinput", "-v", "0")
        if options.demo:
            launcher.manage(
                env, "demo_load", *(f"--origin={origin}" for origin in launcher.origins())
            )
        workers_warm_reset(redis_url=env["REDIS_URL"])
        launcher.start_processes(env)
        # Each worker process warms up (WORKER_WARM, on by default) before its first task.
        warm = env.get("WORKER_WARM", "true").lower() not in ("0", "false", "no", "off")
        warm_workers = options.warm_processes(launch_queues(env)) if warm else 0
        launcher.wait_until_ready(warm_workers=warm_workers)
        base = f"http://{launcher._url_host()}:{options.port}"
        launcher.say("")
        launcher.say(f"Deskpilot is ready in {time.monotonic() - started:.1f} s")
        launcher.say(f"  inbox      {base}/inbox/")
        launcher.say(f"  widget     {base}/widget/demo/")
        if options.demo:
            launcher.say(f"             {base}/widget/demo/?as=signed-in  (an identified visitor)")
        launcher.say(f"  admin      {base}/admin/")
        launcher.say(f"  API docs   {base}/api/docs/")
        launcher.say(f"  health     {base}/readyz")
        token = (
            "$METRICS_TOKEN"
            if env.get("METRICS_TOKEN")
            else f"the token in {options.home / 'metrics_token'}"
        )
        launcher.say(f"  metrics    {base}/metrics  (Authorization: Bearer {token})")
        credentials = options.home / "demo_logins.txt"
        if options.demo and credentials.exists():
            launcher.say(credentials.read_text().rstrip())
        launcher.say(f"  data       {options.home}")
        launcher.say(f"  logs       {launcher.log_dir}/{{web,worker,pipeline,beat}}.log")
        launcher.say("Press Ctrl-C to stop.")
        while True:
            launcher.supervise()
            time.sleep(0.5)
    except KeyboardInterrupt:
        launcher.say("stopping…")
        return_code = 0
    except LaunchError as error:
        launcher.say(f"error: {error}")
        return_code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        launcher.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    launcher.say("stopped.")
    return return_code
