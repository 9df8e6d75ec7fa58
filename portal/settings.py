"""PFX Portal settings.

Everything that differs between a laptop demo and a production deployment is read
from environment variables through the typed helpers in ``portal.lib.env``.
``PORTAL_ENV=production`` turns on the hardened defaults that ``check --deploy`` wants.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from portal.lib.env import (
    development_secret,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_secret,
    env_str,
    parse_database_url,
)
from portal.lib.sealing import new_key, parse_keys

BASE_DIR = Path(__file__).resolve().parent.parent
PORTAL_ENV = env_choice("PORTAL_ENV", ("development", "production"), "development")
PRODUCTION = PORTAL_ENV == "production"
DATA_DIR = Path(env_str("PORTAL_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret(name: str, file_name: str, make: Callable[[], str]) -> str:
    """NAME (or the file NAME_FILE names): required in production, generated once into the data folder otherwise."""
    value = env_secret(name)
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) is required when PORTAL_ENV=production")
    return development_secret(DATA_DIR / file_name, make)


SECRET_KEY = _secret("SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))
if PRODUCTION and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long")

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when PORTAL_ENV=production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.microsoft",
    "portal",
    "directory",
    "certs",
    "profiles",
    "connectors",
    "delivery",
    "graph",
    "devtools",
    "api",
    # Only for its templates and static files: the API documentation page served from here, not a CDN.
    "ninja",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.CorrelationIdMiddleware",
    # API calls with a token leave here: they need none of the pages' middleware below.
    "portal.middleware.ApiCallMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a signed-in admin unless its view says otherwise.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.RequireMfaMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "portal.User"

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
                "portal.context_processors.shell",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASES = {
    "default": parse_database_url(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"),
        base_dir=BASE_DIR,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery -----------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "portal.lib.rediscache.RedisCache", "LOCATION": REDIS_URL}}
    # Sessions are read from Redis and written through to the database: no query per request.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    # A file cache is shared by the web process and the workers, so login rate
    # limits hold across processes in the demo too.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# Home's whole-table counts are kept per process: recomputed after a change (an audit event)
# but not more often than every MIN_AGE seconds, and at least every MAX_AGE seconds (portal.summaries).
PORTAL_SUMMARY_MIN_AGE = env_int("PORTAL_SUMMARY_MIN_AGE", 10, minimum=0)
PORTAL_SUMMARY_MAX_AGE = env_int("PORTAL_SUMMARY_MAX_AGE", 60, minimum=1)
# Rendered pieces of list pages and Home are kept per process for admins of the same scope,
# rendered again after any change (an audit event) and at least every MAX_AGE seconds.
PORTAL_FRAGMENT_MAX_AGE = env_int("PORTAL_FRAGMENT_MAX_AGE", 60, minimum=0)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.rstrip("/") == "filesystem:":
    # The file transport has no host, but kombu warns on every connection unless one is named.
    CELERY_BROKER_URL = "filesystem://localhost//"
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(env_str("CELERY_BROKER_FOLDER", str(DATA_DIR / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # kombu looks for new files once a second by default: a worker then idles up to a second
        # between tasks and paced Graph uploads reach only ~0.74 of the write quota.
        "polling_interval": env_int("CELERY_BROKER_POLL_MS", 50, minimum=1) / 1000,
    }
# Task state lives in our own tables; results are not needed and are not kept.
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# The whole beat schedule lives in portal/celery.py next to a plain-English comment per entry.

# --- Authentication (django-allauth) -------------------------------------------
AUTHENTICATION_BACKENDS = [
    "portal.backends.PortalModelBackend",
    "portal.backends.PortalAccountBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_ADAPTER = "portal.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "portal.adapters.SocialAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_PRESERVE_USERNAME_CASING = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[PFX Portal] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
ACCOUNT_RATE_LIMITS = {
    # Failed sign-ins per IP, and per account across IPs (allauth's own lockout).
    "login_failed": env_str("PORTAL_LOGIN_RATE_LIMIT", "10/m/ip,5/5m/key"),
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
}
# Self sign-up is for the demo only; in production admins invite users.
PORTAL_OPEN_SIGNUP = env_bool("PORTAL_OPEN_SIGNUP", default=False)

MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("PORTAL_MFA_ISSUER", "PFX Portal")
# Accept the previous and next 30-second code too: phones drift and people type slowly.
MFA_TOTP_TOLERANCE = 1
# Accounts holding a role marked "requires MFA" must enrol TOTP before using the portal.
PORTAL_ENFORCE_MFA = env_bool("PORTAL_ENFORCE_MFA", default=True)

ENTRA_TENANT_ID = env_str("ENTRA_TENANT_ID")
ENTRA_CLIENT_ID = env_str("ENTRA_CLIENT_ID")
ENTRA_CLIENT_SECRET = env_secret("ENTRA_CLIENT_SECRET")
ENTRA_LOGIN_URL = env_str("ENTRA_LOGIN_URL", "https://login.microsoftonline.com")
ENTRA_SIGN_IN_ENABLED = bool(ENTRA_TENANT_ID and ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET)
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True


def entra_provider(
    *, tenant: str, client_id: str, secret: str, login_url: str, graph_url: str
) -> dict[str, dict[str, object]]:
    """allauth's Microsoft provider for one Entra ID tenant."""
    return {
        "microsoft": {
            "APPS": [
                {
                    "client_id": client_id,
                    "secret": secret,
                    "settings": {
                        "tenant": tenant,
                        "login_url": login_url,
                        "graph_url": graph_url,
                        # The tenant's own directory vouches for its users' addresses: an invited admin's
                        # first sign-in finds their account by e-mail (sign-up stays closed).
                        "verified_email": True,
                    },
                }
            ],
            "SCOPE": ["User.Read"],
        }
    }


SOCIALACCOUNT_PROVIDERS: dict[str, dict[str, object]] = {}
if ENTRA_SIGN_IN_ENABLED:
    SOCIALACCOUNT_PROVIDERS = entra_provider(
        tenant=ENTRA_TENANT_ID,
        client_id=ENTRA_CLIENT_ID,
        secret=ENTRA_CLIENT_SECRET,
        login_url=ENTRA_LOGIN_URL,
        graph_url=env_str("ENTRA_GRAPH_URL", "https://graph.microsoft.com"),
    )

# --- Sessions and security -----------------------------------------------------
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=300)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Request size caps: uploads above these are refused before any parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("PORTAL_MAX_REQUEST_BYTES", 10 * 1024 * 1024, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("PORTAL_MAX_UPLOAD_FILES", 2000, minimum=1)

# --- E-mail -------------------------------------------------------------------
_email_backend = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
_email_options: dict[str, object] = {}
if _email_backend.endswith("smtp.EmailBackend"):
    _email_options = {
        "host": env_str("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 25, minimum=1, maximum=65535),
        "username": env_str("EMAIL_HOST_USER"),
        "password": env_secret("EMAIL_HOST_PASSWORD"),
        "use_tls": env_bool("EMAIL_USE_TLS", default=False),
        "timeout": env_int("EMAIL_TIMEOUT", 20, minimum=1),
    }
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "PFX Portal <pfx-portal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static files ---------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
if not PRODUCTION:
    # whitenoise warns about a missing root before the first collectstatic.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Logging ---------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "no_traceback_below_500": {"()": "portal.logfilters.NoTracebackBelow500"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler would print every django.* line a second time (root prints it).
        "django": {"handlers": ["mail_admins"], "level": LOG_LEVEL, "propagate": True},
        # A refused request (403, 404, ...) is logged in one line: its traceback is not a fault.
        "django.request": {"filters": ["no_traceback_below_500"]},
        # runserver's access log: each request once at INFO; 4xx and 5xx are already logged above.
        "django.server": {
            "handlers": ["console"],
            "level": LOG_LEVEL if LOG_LEVEL in ("DEBUG", "INFO") else "CRITICAL",
            "propagate": False,
        },
        "django.db.backends": {"level": "WARNING"},
        # Celery's per-task lines help while developing; in production they drown the log.
        "celery": {"level": LOG_LEVEL if DEBUG or LOG_LEVEL in ("WARNING", "ERROR") else "WARNING"},
    },
}

# --- Product ---------------------------------------------------------------------
# --- PFX engine limits ---------------------------------------------------------
# Hostile files are refused before any expensive work: size first, then the
# key-derivation iteration count read from the file's structure.
# A user PFX with a long chain is a few kilobytes; 1 MiB leaves ample room.
PFX_MAX_FILE_BYTES = env_int("PFX_MAX_FILE_BYTES", 1024 * 1024, minimum=1024)
# Real producers go up to 600,000 (NSS, GnuTLS); a file claiming 2**31 must be refused.
PFX_MAX_KDF_ITERATIONS = env_int("PFX_MAX_KDF_ITERATIONS", 1_000_000, minimum=1)
PFX_EXPIRES_SOON_DAYS = env_int("PFX_EXPIRES_SOON_DAYS", 30, minimum=0)

# --- Certificate import ----------------------------------------------------------
# Passwords waiting for a worker are encrypted with this key, which never enters the
# database or the broker (Base64 of 32 random bytes; several, comma-separated, to rotate:
# the first encrypts, all decrypt).
PORTAL_STAGING_KEY = _secret("PORTAL_STAGING_KEY", "staging_key", new_key)
# A key that cannot be used stops start-up, not the first import.
parse_keys(PORTAL_STAGING_KEY, origin="PORTAL_STAGING_KEY")
PORTAL_EXPIRY_RECIPIENTS = env_list("PORTAL_EXPIRY_RECIPIENTS")
CERTS_MAX_UPLOAD_BYTES = env_int("CERTS_MAX_UPLOAD_BYTES", 100 * 1024 * 1024, minimum=1024 * 1024)
CERTS_MAX_FILES = env_int("CERTS_MAX_FILES", 10_000, minimum=1)
CERTS_MAX_UNCOMPRESSED_BYTES = env_int("CERTS_MAX_UNCOMPRESSED_BYTES", 200 * 1024 * 1024, minimum=1024 * 1024)
CERTS_MAX_MANIFEST_BYTES = env_int("CERTS_MAX_MANIFEST_BYTES", 4 * 1024 * 1024, minimum=1024)
# A finished dry run keeps its files and staged passwords this long, so it can be imported for real
# without uploading them again; then they are destroyed.
CERTS_DRY_RUN_KEEP_HOURS = env_int("CERTS_DRY_RUN_KEEP_HOURS", 24, minimum=1, maximum=24 * 30)
# A worker holds the rows of its chunk under a lease. When the worker dies (killed, out of
# memory, machine lost) the lease runs out and the beat sweep, every 60 s, queues the rows
# again; a row waiting this long without any worker taking it (its task message was lost) is
# queued again too. So a claimed row is back on the queue at most lease + 60 s after its worker
# died. Keep the lease above the import task's hard time limit (300 s), or a slow chunk that is
# still running would be taken over and its work thrown away.
CERTS_CLAIM_LEASE_SECONDS = env_int("CERTS_CLAIM_LEASE_SECONDS", 420, minimum=1)
# An alert claimed by a worker that died unsent is claimed again after this long (above the alert tasks' limits).
PORTAL_ALERT_CLAIM_TIMEOUT_SECONDS = env_int("PORTAL_ALERT_CLAIM_TIMEOUT_SECONDS", 300, minimum=1)
# Failed rows that a retry with the password can fix keep their file this long after their
# import finished; then the hourly sweep deletes the files and the rows can no longer be
# retried. Files that no password can fix (not a PFX, too large, expired, ...) are never kept.
CERTS_RETRY_WINDOW_DAYS = env_int("CERTS_RETRY_WINDOW_DAYS", 7, minimum=1)

# --- Microsoft Graph -------------------------------------------------------------
# Protects the stored Graph credential: Base64 of 32 random bytes (Fernet keys are too);
# several, comma-separated, to rotate: the first encrypts, all decrypt.
PORTAL_SECRETS_KEY = _secret("PORTAL_SECRETS_KEY", "secrets.key", new_key)
# A key that cannot be used stops start-up, not the first Graph call.
parse_keys(PORTAL_SECRETS_KEY, origin="PORTAL_SECRETS_KEY")
GRAPH_WRITE_LIMIT = env_int("GRAPH_WRITE_LIMIT", 100, minimum=1)
GRAPH_WRITE_WINDOW_SECONDS = float(env_int("GRAPH_WRITE_WINDOW_SECONDS", 20, minimum=1))
GRAPH_UPLOAD_MAX_ATTEMPTS = env_int("GRAPH_UPLOAD_MAX_ATTEMPTS", 8, minimum=1)
GRAPH_MAX_ATTEMPTS = env_int("GRAPH_MAX_ATTEMPTS", 6, minimum=1)
GRAPH_BACKOFF_CAP_SECONDS = env_int("GRAPH_BACKOFF_CAP_SECONDS", 60, minimum=1)
# An upload or delete a worker has held this long belongs to a worker that died, and the sweep
# queues it again; keep it above the tasks' hard time limit. Queued work no worker has started
# after GRAPH_REQUEUE_AFTER_SECONDS (its task message was lost) is queued again too.
GRAPH_CLAIM_TIMEOUT_SECONDS = env_int("GRAPH_CLAIM_TIMEOUT_SECONDS", CELERY_TASK_TIME_LIMIT + 60, minimum=1)
GRAPH_REQUEUE_AFTER_SECONDS = env_int("GRAPH_REQUEUE_AFTER_SECONDS", 900, minimum=1)
# The Intune status sync paces its reads under Intune's documented 1000 requests per 20 s per app
# and tenant (docs/graph-endpoints.md), leaving room for the rest of the portal's reads.
GRAPH_STATUS_READ_LIMIT = env_int("GRAPH_STATUS_READ_LIMIT", 800, minimum=1)
GRAPH_STATUS_READ_WINDOW_SECONDS = float(env_int("GRAPH_STATUS_READ_WINDOW_SECONDS", 20, minimum=1))
# A status sync still running after this long belonged to a worker that died: it is closed as failed
# by the next run or sweep (also the sync task's hard time limit, so a live one never runs longer).
GRAPH_STATUS_SYNC_TIMEOUT_SECONDS = env_int("GRAPH_STATUS_SYNC_TIMEOUT_SECONDS", 1800, minimum=60)

# --- Certificate connectors -------------------------------------------------------
CONNECTOR_HEARTBEAT_INTERVAL = env_int("CONNECTOR_HEARTBEAT_INTERVAL", 60, minimum=5)
CONNECTOR_GRACE_SECONDS = env_int("CONNECTOR_GRACE_SECONDS", 60, minimum=0)
CONNECTOR_DOWN_AFTER_SECONDS = env_int("CONNECTOR_DOWN_AFTER_SECONDS", 600, minimum=30)
CONNECTOR_MIN_VERSION = env_str("CONNECTOR_MIN_VERSION")
# Microsoft's own connectors, as Intune lists them: oldest supported version, and how long since
# their last check-in before they count as late (warning) and down (error).
INTUNE_CONNECTOR_MIN_VERSION = env_str("INTUNE_CONNECTOR_MIN_VERSION")
INTUNE_CONNECTOR_LATE_AFTER_SECONDS = env_int("INTUNE_CONNECTOR_LATE_AFTER_SECONDS", 7200, minimum=60)
INTUNE_CONNECTOR_DOWN_AFTER_SECONDS = env_int("INTUNE_CONNECTOR_DOWN_AFTER_SECONDS", 86400, minimum=60)
CONNECTOR_JOB_TIMEOUT_SECONDS = env_int("CONNECTOR_JOB_TIMEOUT_SECONDS", 300, minimum=10)
CONNECTOR_ALERT_EMAILS = env_list("CONNECTOR_ALERT_EMAILS")
CONNECTOR_ALERT_WEBHOOK = env_str("CONNECTOR_ALERT_WEBHOOK")
CONNECTOR_ENROLL_RATE_PER_MINUTE = env_int("CONNECTOR_ENROLL_RATE_PER_MINUTE", 10, minimum=1)
CONNECTOR_API_RATE_PER_MINUTE = env_int("CONNECTOR_API_RATE_PER_MINUTE", 600, minimum=1)
# A device management tool enrols a fleet from one address; a device checks in every few minutes.
DEVICE_ENROLL_RATE_PER_MINUTE = env_int("DEVICE_ENROLL_RATE_PER_MINUTE", 600, minimum=1)
DEVICE_API_RATE_PER_MINUTE = env_int("DEVICE_API_RATE_PER_MINUTE", 120, minimum=1)
DEVICE_POLICY_RECHECK_SECONDS = env_int("DEVICE_POLICY_RECHECK_SECONDS", 5, minimum=0)

# --- Delivery to devices ----------------------------------------------------------
# Devices of one profile in Error at which an alert goes out (and another when back under); 0: never.
DELIVERY_ALERT_FAILED_DEVICES = env_int("DELIVERY_ALERT_FAILED_DEVICES", 10, minimum=0)

PORTAL_TENANT_NAME = env_str("PORTAL_TENANT_NAME", "Contoso")
PORTAL_TENANT_DOMAIN = env_str("PORTAL_TENANT_DOMAIN").strip() or "contoso.com"

# --- Automation API (api) ------------------------------------------------------
# API tokens last at most this many days; the admin picks the expiry when creating one.
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365, minimum=1)
# Calls per token (or Entra ID application) per window; more are answered 429 with Retry-After.
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 600, minimum=1)
API_RATE_WINDOW_SECONDS = env_int("API_RATE_WINDOW_SECONDS", 60, minimum=1)
# The audience (aud) of Entra ID application tokens for this portal, e.g. api://<client id>.
# Empty: Entra ID application tokens are refused.
API_ENTRA_AUDIENCE = env_str("API_ENTRA_AUDIENCE")
# A CA certificate (PEM file) to trust for the Entra ID signing keys; only for a local emulator.
API_ENTRA_CA_FILE = env_str("API_ENTRA_CA_FILE")
# Drop folders of unattended imports live under this directory (one sub-directory per folder).
API_DROP_ROOT = env_str("API_DROP_ROOT", str(DATA_DIR / "drop"))
# Who is mailed when a drop folder's set has failed rows (default: the folder's admin).
API_DROP_ALERT_EMAILS = env_list("API_DROP_ALERT_EMAILS")
