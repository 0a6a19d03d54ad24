"""Settings, read from the environment (see the configuration table in README.md)."""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from core import local_db
from core.rates import rate_parse
from segmenter.log_format import JSON_FORMATTER

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` (written by `make run`, never committed) fills in what the environment lacks.
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required unless DJANGO_DEBUG=true")
    SECRET_KEY = "insecure-local-development-key-only-for-debug-mode"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
SEGMENTER_AUTH = env.str("SEGMENTER_AUTH", default="on").lower() != "off"
# `off` sends the hot path's requests through Django too (segmenter/hot_path.py).
SEGMENTER_FAST_LANE = env.str("SEGMENTER_FAST_LANE", default="on").lower() != "off"
# `off` counts nothing per request or query; /metrics then serves only the gauges read from the database.
SEGMENTER_METRICS = env.str("SEGMENTER_METRICS", default="on").lower() != "off"

INSTALLED_APPS = [
    "segmenter.apps.SegmenterAdminConfig",  # Django's admin, the project's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "procrastinate.contrib.django",
    "core",
    "users",
    "segments",
    "reports",
    "events",
    "segmenter",
]

MIDDLEWARE = [
    "core.middleware.RequestTelemetryMiddleware",
    "core.middleware.HeadWithoutBodyMiddleware",
    "core.middleware.WriteRedirectMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.BodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Admin login: after DJANGO_ADMIN_LOCKOUT_FAILURES wrong passwords for one username from one
# address, that pair is refused (429) for DJANGO_ADMIN_LOCKOUT_MINUTES, even with the right
# password (django-axes; attempts are stored in the database, so every process sees them).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("DJANGO_ADMIN_LOCKOUT_FAILURES", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("DJANGO_ADMIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the cool-off runs from the lockout, whatever follows
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"

ROOT_URLCONF = "segmenter.urls"
WSGI_APPLICATION = "segmenter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# Without DATABASE_URL: the embedded server of the quickstart (`make db`, run by `make run` and `make test`).
DATABASES = {"default": env.db_url_config(env.str("DATABASE_URL", default="") or local_db.url())}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
if SEGMENTER_METRICS:  # queries and connections counted (django-prometheus's django_db_* metrics), queries in a tally
    DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
        "django.db.backends.postgresql", "core.backends.postgresql"
    )
# A streaming replica for reads that tolerate SEGMENTER_REPLICA_MAX_LAG seconds (segmenter/replica.py).
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = {**env.db("DATABASE_REPLICA_URL"), "ATOMIC_REQUESTS": False, "CONN_HEALTH_CHECKS": True}
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
SEGMENTER_REPLICA_MAX_LAG = env.float("SEGMENTER_REPLICA_MAX_LAG", default=1.0)
# Behind PgBouncer in transaction pooling mode: a server-side cursor would outlive its transaction,
# and a statement psycopg prepares on one server connection is unknown on the next.
if env.bool("DATABASE_TRANSACTION_POOLING", default=False):
    for database in DATABASES.values():
        database["DISABLE_SERVER_SIDE_CURSORS"] = True
        database.setdefault("OPTIONS", {})["prepare_threshold"] = None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
MEDIA_URL = "media/"

# Request bodies over 1 MiB are refused with 413 on every path (core.middleware.body_refusal), but on
# the import paths below (the API's and the admin's upload), and only from a caller with a writing token or
# a staff session. A body must arrive within SEGMENTER_BODY_TIMEOUT seconds, plus one per MiB (else 408).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
SEGMENTER_IMPORT_MAX_MIB = env.int("SEGMENTER_IMPORT_MAX_MIB", default=200)
# 10,000,000 lines of attributes are longer than of ids: by default an attribute import may fill the queue.
SEGMENTER_IMPORT_QUEUE_MIB = env.int("SEGMENTER_IMPORT_QUEUE_MIB", default=1024)
SEGMENTER_ATTRIBUTE_IMPORT_MAX_MIB = env.int("SEGMENTER_ATTRIBUTE_IMPORT_MAX_MIB", default=SEGMENTER_IMPORT_QUEUE_MIB)
LARGE_BODY_PATHS = {
    r"^/api/v1/segments/[^/]+/imports/$": SEGMENTER_IMPORT_MAX_MIB * 1024 * 1024,
    r"^/api/v1/users/attributes/imports/$": SEGMENTER_ATTRIBUTE_IMPORT_MAX_MIB * 1024 * 1024,
    r"^/admin/segments/segment/[^/]+/import/$": SEGMENTER_IMPORT_MAX_MIB * 1024 * 1024,
    r"^/api/v1/users/attributes/$": 16 * 1024 * 1024,  # a batch of 10,000 users' attributes
}
SEGMENTER_BODY_TIMEOUT = env.float("SEGMENTER_BODY_TIMEOUT", default=30.0)
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# Imports (segments/services/imports.py): the worker applies this many lines per transaction, moving `done`.
SEGMENTER_IMPORT_CHUNK_LINES = max(1, env.int("SEGMENTER_IMPORT_CHUNK_LINES", default=50_000))
# The stored files of the imports waiting for the worker (queued or running) hold at most this much; over it
# an upload is refused with 503 and Retry-After. At least the largest body, so that one always fits.
SEGMENTER_IMPORT_QUEUE_BYTES = SEGMENTER_IMPORT_QUEUE_MIB * 1024 * 1024
if SEGMENTER_IMPORT_QUEUE_MIB < max(SEGMENTER_IMPORT_MAX_MIB, SEGMENTER_ATTRIBUTE_IMPORT_MAX_MIB):
    raise ImproperlyConfigured(
        "SEGMENTER_IMPORT_QUEUE_MIB must be at least SEGMENTER_IMPORT_MAX_MIB and SEGMENTER_ATTRIBUTE_IMPORT_MAX_MIB"
    )

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.auth.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.auth.TokenPermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "segmenter.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "DEFAULT_METADATA_CLASS": None,  # OPTIONS is a 405: its metadata crashed on viewsets and described internals
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
    "COERCE_DECIMAL_TO_STRING": False,
    "DEFAULT_THROTTLE_CLASSES": ["core.throttles.WriteThrottle"],
}


def _rate(name: str, default: str | None) -> str | None:
    """A rate such as `30/min` or `5/10s` (core/rates.py); empty means no limit."""
    value = env.str(name, default=default or "").strip()
    if value:
        try:
            rate_parse(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}") from None
    return value or None


# Per API token: report requests (each reads a period and may write a file), and optionally writes.
SEGMENTER_REPORT_RATE = _rate("SEGMENTER_REPORT_RATE", "30/min")
SEGMENTER_WRITE_RATE = _rate("SEGMENTER_WRITE_RATE", None)
# A report of more rows is refused (413) before anything is written; report files live this long.
SEGMENTER_REPORT_MAX_ROWS = env.int("SEGMENTER_REPORT_MAX_ROWS", default=10_000_000)
SEGMENTER_REPORT_TTL_HOURS = env.float("SEGMENTER_REPORT_TTL_HOURS", default=24.0)
if SEGMENTER_REPORT_MAX_ROWS < 1 or SEGMENTER_REPORT_TTL_HOURS <= 0:
    raise ImproperlyConfigured("SEGMENTER_REPORT_MAX_ROWS and SEGMENTER_REPORT_TTL_HOURS must be positive")

# Django's cache, shared by every server process: a table in the database (created by migration
# segmenter/0002). The rates' counts are not kept here but in segmenter_ratecount (core/throttles.py).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "segmenter_cache",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
}

# Swagger UI's groups, in this order: the v1 API by resource, then the health check and the older API.
SCHEMA_TAGS = [
    {"name": "segments", "description": "Segments: create, change and delete them, list members, roll out by percent."},
    {"name": "users", "description": "Users and their segments: register, read (the hot path), add and remove."},
    {"name": "history and reports", "description": "When a user entered or left a segment: events and CSV reports."},
    {"name": "imports", "description": "Big segments: files of up to 10 million user ids, applied by the worker."},
    {"name": "webhooks", "description": "Receivers of membership and segment events, signed (Standard Webhooks)."},
    {"name": "health", "description": "Is the service up and its database reachable (no token needed)."},
    {
        "name": "older API",
        "description": "The API of the older service this one replaces, kept unchanged for its clients. "
        "New clients use /api/v1/.",
    },
]
SPECTACULAR_SETTINGS = {
    "TITLE": "Segmenter API",
    "DESCRIPTION": "Dynamic user segmentation: segments, memberships, rollouts and history.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "TAGS": SCHEMA_TAGS,
    "SCHEMA_PATH_PREFIX": "/api/",  # operation ids leave it out (it is no longer every path's prefix: /metrics)
}

# Security: headers always; HTTPS-only cookies and HSTS unless running in DEBUG.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^api/health/$"]  # load balancers and docker health checks speak plain HTTP
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HSTS: max-age alone unless asked; includeSubDomains and preload bind every subdomain of the
# domain (and, preloaded, browsers for months), which only the domain's owner can decide.
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
# Deploy-check warnings W005 (no includeSubDomains) and W021 (no preload) say the two settings
# above are off; that is the default on purpose (docs/security.md), so they are not warnings here.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# X-Forwarded-Proto says whether the client spoke HTTPS; only a proxy we run may say so. Any
# client could send it, so it is believed only behind a trusted proxy (docs/security.md).
DJANGO_TRUSTED_PROXY = env.bool("DJANGO_TRUSTED_PROXY", default=False)
if DJANGO_TRUSTED_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Content-Security-Policy on every response (django-csp): the admin, its inline SVG chart and
# Swagger UI (served from this app by drf-spectacular-sidecar, its script a file of its own) need
# nothing from elsewhere and no inline script or style; Swagger UI draws some icons as data: URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# One JSON object a line, each with the id of the request (or of the worker's round) it belongs to.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": JSON_FORMATTER},
    "filters": {"request_id": {"()": "core.telemetry.RequestIdFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},  # axes: no banner at start
        "procrastinate": {"level": "WARNING"},
        # A worker round that changed nothing is logged at DEBUG (core/telemetry.py round_done): set DEBUG
        # here to see every round; the worker logs a summary of its rounds at INFO every
        # SEGMENTER_JOBS_SUMMARY_SECONDS.
        "segmenter.jobs": {"level": env.str("SEGMENTER_JOBS_LOG_LEVEL", default="NOTSET")},
    },
}
SEGMENTER_JOBS_SUMMARY_SECONDS = env.float("SEGMENTER_JOBS_SUMMARY_SECONDS", default=600.0)

# The task queue (procrastinate, tables in this database): periodic jobs are in each app's tasks.py.
PROCRASTINATE_WORKER_DEFAULTS = {
    "delete_jobs": "always",
    "fetch_job_polling_interval": 0.5,
    "update_heartbeat_interval": 2,
    "stalled_worker_timeout": 10,
}

# Webhooks (events/services/webhooks.py): receivers on private, loopback or link-local addresses only when
# allowed; a message failing for SEGMENTER_WEBHOOK_RETRY_HOURS disables its webhook; a receiver's whole
# answer must come within SEGMENTER_WEBHOOK_TIMEOUT seconds.
SEGMENTER_WEBHOOK_ALLOW_PRIVATE = env.bool("SEGMENTER_WEBHOOK_ALLOW_PRIVATE", default=False)
SEGMENTER_WEBHOOK_RETRY_HOURS = env.float("SEGMENTER_WEBHOOK_RETRY_HOURS", default=24.0)
# The event log keeps an event this many days at least, and until every webhook has received it
# (events/services/received.py); the worker deletes the rest every 10 minutes, and webhook messages
# delivered more than this many days ago with their delivery attempts.
SEGMENTER_EVENT_RETENTION_DAYS = env.float("SEGMENTER_EVENT_RETENTION_DAYS", default=7.0)
if SEGMENTER_EVENT_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("SEGMENTER_EVENT_RETENTION_DAYS must be 0 or more")
SEGMENTER_WEBHOOK_TIMEOUT = env.float("SEGMENTER_WEBHOOK_TIMEOUT", default=10.0)
# At most this many webhooks (enabled or not); each worker process has as many delivery slots, one for each.
SEGMENTER_WEBHOOK_MAX = env.int("SEGMENTER_WEBHOOK_MAX", default=20)
if SEGMENTER_WEBHOOK_MAX < 1:
    raise ImproperlyConfigured("SEGMENTER_WEBHOOK_MAX must be 1 or more")
