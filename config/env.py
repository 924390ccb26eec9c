"""Typed readers for environment variables.

Every setting comes from the environment. A value that cannot be parsed stops the
process with a message naming the variable and what was expected, instead of a
default silently standing in for a typo.
"""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigurationError(Exception):
    """A setting's environment variable holds a value that cannot be used."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ConfigurationError(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ConfigurationError(f"{name}={number} is below the minimum of {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ConfigurationError(f"{name}={number} is below the minimum of {minimum}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_floats(name: str, default: list[float], *, minimum: float = 0.0) -> list[float]:
    """Comma-separated numbers (`80,100`), each at least `minimum`."""
    values = []
    for item in env_list(name, [str(value) for value in default]):
        try:
            number = float(item)
        except ValueError:
            raise ConfigurationError(f"{name}: {item!r} is not a number") from None
        if not math.isfinite(number) or number < minimum:
            raise ConfigurationError(f"{name}: {item!r} must be a number of at least {minimum}")
        values.append(number)
    return values


def env_networks(name: str) -> list[str]:
    """Comma-separated IP networks in CIDR form (`10.0.0.0/8,fd00::/8`), each checked."""
    import ipaddress

    networks = []
    for item in env_list(name):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigurationError(
                f"{name}: {item!r} is not an IP network (expected e.g. 10.0.0.0/8)"
            ) from None
    return networks


def env_url(name: str, *, schemes: tuple[str, ...]) -> str | None:
    """Return the URL in `name`, or None when unset; refuse an unknown scheme."""
    value = _raw(name)
    if not value:
        return None
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        raise ConfigurationError(
            f"{name} must start with one of {', '.join(s + '://' for s in schemes)}; "
            f"got {mask_url(value)!r}"
        )
    return value


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def database_from_url(url: str) -> dict:
    """Django DATABASES entry from a postgresql:// URL.

    Query parameters become connection options, except `host`, which lets a URL name a
    Unix socket folder (postgresql://user@/db?host=/path), as libpq does.
    """
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    host = options.pop("host", None) or (parts.hostname or "")
    name = unquote(parts.path.lstrip("/")) or "postgres"
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
    }


def deskpilot_home() -> Path:
    """The folder for local data (embedded database, Redis, secret key, logs).

    Its contents are readable by their owner only: the database, the Redis dump and the logs
    hold customers' messages. The folder is 0700; as root it is 0711 (others may pass through,
    not list), because pgserver runs PostgreSQL as its own user, which must reach `pgdata`
    (0700, its own); every other folder under it is made 0700 by `private_dir`.
    """
    return private_dir(
        Path(env_str("DESKPILOT_HOME", ".deskpilot")).expanduser().resolve(),
        mode=0o711 if os.getuid() == 0 else 0o700,
    )


def private_dir(path: Path, *, mode: int = 0o700) -> Path:
    """`path`, created if missing, with `mode` (owner only) when this process owns it."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    try:
        if path.stat().st_uid == os.getuid():
            path.chmod(mode)
    except OSError:  # a read-only or foreign mount: the deployment owns its modes
        pass
    return path


def local_secret_key(home: Path, name: str = "secret_key") -> str:
    """A secret generated once and kept under DESKPILOT_HOME in the file `name`, for local
    runs (the secret key, the /metrics token)."""
    path = home / name
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # O_EXCL: two processes starting at once agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
