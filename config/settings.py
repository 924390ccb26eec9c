"""Deskpilot settings: every value comes from an environment variable (see README)."""

from __future__ import annotations

import os
from pathlib import Path

from config.env import (
    ConfigurationError,
    database_from_url,
    deskpilot_home,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
    local_secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DESKPILOT_HOME = deskpilot_home()

# --- core --------------------------------------------------------------------------------
DEMO = env_bool("DESKPILOT_DEMO", False)
DEBUG = env_bool("DEBUG", DEMO)
SECRET_KEY = env_str("SECRET_KEY") or local_secret_key(DESKPILOT_HOME)
if not DEBUG and len(SECRET_KEY) < 50:
    raise ConfigurationError("SECRET_KEY must be at least 50 characters when DEBUG is off")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "apps.core",
    "apps.accounts",
    "apps.llm",
    "apps.api",
    "apps.triage",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database: DATABASE_URL, else the embedded server that `manage.py up` started ----------
RUN_DIR = DESKPILOT_HOME / "run"


def _from_run_file(name: str) -> str | None:
    """The URL `manage.py up` wrote for an embedded service, so other commands find it."""
    path = RUN_DIR / name
    return path.read_text().strip() if path.exists() else None


DATABASE_URL = (
    env_url("DATABASE_URL", schemes=("postgres", "postgresql"))
    or _from_run_file("database_url")
    or f"postgresql://postgres:@/postgres?host={DESKPILOT_HOME / 'pgdata'}"
)
DATABASES = {"default": database_from_url(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# --- Redis: broker, cache, streams ------------------------------------------------------------
REDIS_URL = (
    env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
    or _from_run_file("redis_url")
    or f"unix://{DESKPILOT_HOME / 'redis' / 'redis.sock'}"
)


def _celery_url(redis_url: str) -> str:
    # kombu spells a Unix socket redis+socket://; redis-py spells it unix://.
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "deskpilot",
    }
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = _celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = None  # tasks write their results to the database
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task not acknowledged within this time is redelivered; longer than the slowest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    "socket_connect_timeout": 5,
}
CELERY_WORKER_QUEUES = env_list("CELERY_QUEUES", ["default", "pipeline", "ingest", "eval"])
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    "heartbeat": {"task": "core.heartbeat_record", "schedule": 30.0},
}

# --- web ------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DESKPILOT_HOME / "media")))
LOGIN_URL = "admin:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- security: strict unless DEBUG. DESKPILOT_HTTPS=false serves plain HTTP on one machine
# (`manage.py up` sets it); behind a TLS-terminating proxy set TRUST_X_FORWARDED_PROTO=true.
HTTPS = env_bool("DESKPILOT_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health probes come over plain HTTP from the orchestrator, inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.permissions.HasApiKeyScope"],
    "EXCEPTION_HANDLER": "apps.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Deskpilot API",
    "DESCRIPTION": "Customer-support copilot: tickets, knowledge, triage and drafts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- models: embeddings and LLM (apps/llm is the only reader) ----------------------------------
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "all-MiniLM-L6-v2")
EMBEDDING_DIMENSIONS = 384
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 64, minimum=1)
LLM_REQUEST_TIMEOUT = env_float("LLM_REQUEST_TIMEOUT", 30.0, minimum=0.1)

# --- logging --------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Model libraries must never reach a hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# --- triage: intent classification (apps/triage) ----------------------------------------------
TRIAGE_MIN_EXAMPLES_PER_INTENT = env_int("TRIAGE_MIN_EXAMPLES_PER_INTENT", 5, minimum=2)
TRIAGE_MAX_EXAMPLE_CHARS = env_int("TRIAGE_MAX_EXAMPLE_CHARS", 2000, minimum=100)
TRIAGE_MAX_CSV_BYTES = env_int("TRIAGE_MAX_CSV_BYTES", 50 * 1024 * 1024, minimum=1024)
TRIAGE_MAX_BATCH = env_int("TRIAGE_MAX_BATCH", 256, minimum=1)
TRIAGE_MAX_MESSAGE_CHARS = env_int("TRIAGE_MAX_MESSAGE_CHARS", 20000, minimum=100)
TRIAGE_CLASSIFIER_INPUT_CHARS = env_int("TRIAGE_CLASSIFIER_INPUT_CHARS", 2000, minimum=100)
TRIAGE_LANGUAGE_MIN_LETTERS = env_int("TRIAGE_LANGUAGE_MIN_LETTERS", 8, minimum=1)
# Cross-validation folds trained in parallel threads during training.
TRIAGE_TRAINING_JOBS = env_int("TRIAGE_TRAINING_JOBS", 2, minimum=1)
