"""Settings shared by every environment. Values come from environment variables
(see README "Environment variables"); parsing is strict and fails loudly."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

from brokercrm.lib.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-never-used-in-production-0123456789")
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Encryption at rest of identifiers (brokercrm.lib.crypto) ----------------------------
# FIELD_ENCRYPTION_KEYS: comma-separated Fernet keys, newest first (rotation: put a new key
# first, run `manage.py rotate_field_keys`, then drop the old one). FIELD_HASH_KEY: the
# separate secret of the lookup hash. The defaults are fixed development keys, refused by
# the production settings.
DEV_FIELD_ENCRYPTION_KEY = "ZGV2LW9ubHktaW5zZWN1cmUtZmllbGQta2V5LTAwMDA="  # b"dev-only-insecure-field-key-0000"
DEV_FIELD_HASH_KEY = "dev-only-insecure-hash-key-never-used-in-production"


def fernet_keys(name: str, keys: list[str]) -> list[str]:
    """Check each key is a Fernet key (32 bytes, url-safe base64) without importing cryptography."""
    import base64
    import binascii

    from django.core.exceptions import ImproperlyConfigured

    if not keys:
        raise ImproperlyConfigured(f"Environment variable {name} must list at least one Fernet key.")
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise ImproperlyConfigured(
                f"Environment variable {name}: key {position} is not a Fernet key (32 bytes, url-safe base64)."
            )
    return keys


FIELD_ENCRYPTION_KEYS = fernet_keys(
    "FIELD_ENCRYPTION_KEYS", env_list("FIELD_ENCRYPTION_KEYS", [DEV_FIELD_ENCRYPTION_KEY])
)
FIELD_HASH_KEY = env_str("FIELD_HASH_KEY", DEV_FIELD_HASH_KEY)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "brokercrm",
    "clients",
    "segmentation",
    "retention",
    "feedback",
    "metrics",
    "compliance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees the authenticated user and the response of a failed login.
    "axes.middleware.AxesMiddleware",
    # Logs every 401/403 (and API 404s outside the user's scope) to brokercrm.security.
    "brokercrm.security.DeniedAccessLogMiddleware",
]

ROOT_URLCONF = "brokercrm.urls"
WSGI_APPLICATION = "brokercrm.wsgi.application"

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
                "django.template.context_processors.i18n",
                "brokercrm.views.header_context",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
# DATABASE_URL, e.g. postgres://user:pass@127.0.0.1:5432/brokercrm; default: SQLite file.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dev server read while the demo seeder or a job writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Covering indexes (INCLUDE columns) serve PostgreSQL; SQLite ignores the extra columns.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out username before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Repeated failed logins lock the username out for a while (django-axes).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
# A username is locked after N failures from anywhere (guessing one person's password);
# a browser (IP + user agent) after N failures on any usernames (spraying). Not the IP
# alone: a branch office sits behind one address and would lock out all its staff.
AXES_LOCKOUT_PARAMETERS = ["username", ["ip_address", "user_agent"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# --- Internationalisation ---------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our overrides of Django's locale formats (zh_Hans: money grouped by three with commas).
FORMAT_MODULE_PATH = ["brokercrm.formats"]
# The exchange's time zone: naive timestamps from back-office files, "today", the
# as-of date of nightly jobs and every page are in this zone; the database stores UTC.
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "brokercrm" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Cache and Celery ---------------------------------------------------------------
# REDIS_URL, e.g. redis://127.0.0.1:6379/0. Without it Celery runs tasks eagerly
# in-process and the cache is local memory: the embedded default.
REDIS_URL = env_str("REDIS_URL", None)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# A nightly task may run longer than Redis' default one-hour visibility timeout; a
# shorter timeout would make Redis hand the same task to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600, minimum=60)}

NIGHTLY_HOUR = env_int("NIGHTLY_HOUR", 1, minimum=0)
NIGHTLY_MINUTE = env_int("NIGHTLY_MINUTE", 30, minimum=0)
# The schedule lives in code; run exactly one beat process.
# A task that met a database outage keeps trying to record the failure for this long.
NIGHTLY_DB_RETRY_SECONDS = env_int("NIGHTLY_DB_RETRY_SECONDS", 300, minimum=0)
CELERY_BEAT_SCHEDULE = {
    "nightly-pipeline": {
        "task": "brokercrm.tasks.nightly",
        "schedule": crontab(hour=NIGHTLY_HOUR, minute=NIGHTLY_MINUTE),
    },
    # Fails at once a run whose worker died (a unit marked running that no session holds),
    # instead of waiting for the broker's visibility timeout.
    "nightly-watchdog": {"task": "brokercrm.tasks.nightly_watchdog", "schedule": 300.0},
}

# --- REST API -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "brokercrm.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/minute"),
        "user": env_str("API_THROTTLE_USER", "1200/minute"),
        "auth": env_str("API_THROTTLE_AUTH", "10/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BrokerCRM API",
    "DESCRIPTION": "Clients, ledger, tiers, scores and metrics of the brokerage CRM.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs list every endpoint and parameter: signed-in users only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from this server: brokerage networks have no CDN access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `kind` or `status` with different choices; name each enum.
    "ENUM_NAME_OVERRIDES": {
        "ClientKindEnum": "clients.models.Client.Kind",
        "ClientStatusEnum": "clients.models.Client.Status",
        "LifetimeFitStatusEnum": "retention.models.LifetimeFit.Status",
        "CashFlowKindEnum": "clients.models.CashFlow.Kind",
        "ComplaintChannelEnum": "feedback.models.ComplaintChannel",
        "ComplaintCategoryEnum": "feedback.models.ComplaintCategory",
        "ComplaintSeverityEnum": "feedback.models.ComplaintSeverity",
        "ComplaintStatusEnum": "feedback.models.ComplaintStatus",
        "ComplaintEventActionEnum": "feedback.models.ComplaintEvent.Action",
        "SurveyQuestionKindEnum": "feedback.models.QuestionKind",
        "MetricDimensionEnum": "metrics.models.Dimension",
        "InteractionChannelEnum": "clients.models.Interaction.Channel",
        "RetentionTaskKindEnum": "retention.work.models.TaskKind",
        "RetentionTaskStatusEnum": "retention.work.models.TaskStatus",
        "RetentionTaskSourceEnum": "retention.work.models.TaskSource",
        "ComplianceFlagKindEnum": "compliance.models.FlagKind",
        "ComplianceFlagStatusEnum": "compliance.models.FlagStatus",
        "ComplianceDecisionStatusEnum": "compliance.models.FlagDecision.Status",
        "WatchListKindEnum": "compliance.models.WatchList.Kind",
        "SuitabilityRecordKindEnum": "compliance.models.SuitabilityRecord.Kind",
        "ComplianceSeverityEnum": ["low", "medium", "high"],
    },
}

# --- Logging --------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # brokercrm.security: failed logins, lockouts and denied accesses (user, IP, path, reason).
    "loggers": {"axes": {"level": "WARNING"}, "brokercrm.security": {"level": "INFO"}},
}

# --- Business settings (see DOMAIN.md) -------------------------------------------
# Ledger amounts must equal quantity x price within this relative tolerance.
AMOUNT_TOLERANCE = 0.005

# --- Nightly pipeline (brokercrm/nightly) ---------------------------------------------
NIGHTLY_AS_OF_LAG_DAYS = env_int("NIGHTLY_AS_OF_LAG_DAYS", 1, minimum=0)  # beat runs for today - lag
NIGHTLY_CHUNK_SIZE = env_int("NIGHTLY_CHUNK_SIZE", 50_000, minimum=1)  # clients per chunk task
NIGHTLY_LOCK_TTL_MINUTES = env_int("NIGHTLY_LOCK_TTL_MINUTES", 180, minimum=1)  # a silent lock is abandoned
NIGHTLY_WORK_MEM = env_str("NIGHTLY_WORK_MEM", "256MB")  # PostgreSQL work_mem for the nightly sorts
ROLLUP_BATCH_IDS = 2_000_000
ROLLUP_LOCK_TIMEOUT_SECONDS = 60

# --- Tiering (segmentation), see DOMAIN.md "Tiering" ----------------------------------
TIER_BASIS = env_str("TIER_BASIS", "commission")  # or "assets" (futures-style tiering)
TIER_WINDOW_DAYS = env_int("TIER_WINDOW_DAYS", 365, minimum=1)
# Cumulative cut-offs in percent of the population: VIP < 3, Major < 10, Ordinary < 20.
TIER_CUTOFFS = {"vip": 3, "major": 10, "ordinary": 20}
TIER_KEEP_DAILY = 7  # full daily partitions kept besides month-ends and the change log
TIER_OVERRIDE_MAX_DAYS = 366
ASSET_SNAPSHOT_MAX_AGE_DAYS = 31
REACTIVATION_ASSET_TOP_PERCENT = 10
REACTIVATION_COMMISSION_BOTTOM_PERCENT = 50
REACTIVATION_KEEP_DAYS = 35

# --- Needs profiles (segmentation.needs) ------------------------------------------------
NEEDS_REFRESH = env_str("NEEDS_REFRESH", "weekly")  # or "nightly"
NEEDS_REFRESH_WEEKDAY = 4  # weekly refresh on Fridays' as-of dates
NEEDS_WINDOW_DAYS = 365
NEEDS_MIN_TRADES = 3  # one-off trades do not define a preference
NEEDS_MIN_DAYS = 2
NEEDS_SWING_MAX_DAYS = 20
NEEDS_TOP_INDUSTRIES = 3
NEEDS_HIGH_PRICE = 50

# --- Dormancy, churn and lifetime value (retention), see DOMAIN.md "Activity, dormancy, churn" --
# Activity segments by days since the last trade: active <= 30 < potentially active <= 180 < dormant.
ACTIVITY_ACTIVE_DAYS = 30
ACTIVITY_DORMANT_DAYS = 180
ACTIVITY_RECENT_DAYS = 90  # "recent" window compared with the client's own baseline year before it
ACTIVITY_BASELINE_DAYS = 365
ACTIVITY_SLOWING_RATIO = 0.5  # recent rate below half the client's own baseline -> potentially active
ACTIVITY_MIN_BASELINE_DAYS = 3  # trading days in the baseline year needed to judge a rhythm
ACTIVITY_OVERDUE_MULTIPLE = 3.0  # "about to go dormant": no trade for 3x the client's typical gap
# The regulator's dormant account: tiny cash, no holdings, no trade for years.
REGULATORY_DORMANT_YEARS = 3
REGULATORY_DORMANT_MAX_CASH = 100
# Churn risk (0-100): weights of the signals, combined as 1 - prod(1 - weight x strength).
CHURN_WEIGHTS = {
    "model": 0.85,  # BG/NBD: P(no trading day in the next ACTIVITY_RECENT_DAYS), built on 1 - P(alive)
    "dormant": 0.6,
    "overdue": 0.5,  # dormant and overdue: only where the model does not score the client
    "decline": 0.3,
    "outflow": 0.6,
    "complaints": 0.35,
    "detractor": 0.35,
    "low_csat": 0.25,
    "losses": 0.25,
    "downgrade": 0.3,
}
CHURN_OUTFLOW_FULL_SHARE = 0.5  # net outflow of half the assets = full strength
CHURN_LOSS_FULL_SHARE = 0.2  # realised losses of a fifth of the assets = full strength
CHURN_LOSS_MIN_TRADES = 3  # a "run" of losses: at least this many losing closes in the recent window
CHURN_REASONS_KEPT = 3
CHURN_SIGNAL_MIN = 0.05  # a signal weaker than this is not given as a reason
# Lifetime value: BG/NBD + Gamma-Gamma on trading days, CLV over a horizon, discounted.
LIFETIME_TIME_UNIT = "weeks"  # the nightly fit's unit: whole weeks collapse 1M clients to ~30k rows
CLV_HORIZON_DAYS = 365
CLV_ANNUAL_DISCOUNT_RATE = 0.08
CLV_SIMPLE_RETENTION_YEARS = 3  # "average retention duration" of the simple formula

# --- Retention work (retention/work/), see README "Retention work"; defaults in retention/work/conf.py --
RETENTION_TASK_EXPIRE_OVERDUE_DAYS = 30  # open tasks this long past due expire in the nightly run
RETENTION_CALLBACK_NEW_ACCOUNT_DAYS = 30  # a new account's regulatory callback is due within a month
RETENTION_CALLBACK_SAMPLE_PERCENT = 10  # yearly random sample, at least 10% (refused below)
RETENTION_CALLBACK_SAMPLE_DUE_DAYS = 90  # sampled callbacks due this long after the draw
RETENTION_CALLBACK_SAMPLE_AUTO = True  # the nightly run draws the year's sample if compliance has not
RETENTION_CALLBACK_MAX_ATTEMPTS = 3  # failed/unreachable attempts before escalation to the team lead
RETENTION_CALLBACK_RETRY_DAYS = 2
RETENTION_CALLBACK_RETENTION_YEARS = 3  # records kept at least this long (refused below 3)
RETENTION_CAMPAIGN_CONTROL_PERCENT = 20  # default held-out control share of a campaign
RETENTION_ENTITLEMENT_SPREAD_FIRST_DELIVERY = True  # first deliveries of a bulk grant spread over the period

# --- Compliance (compliance/), see README "Compliance"; defaults in compliance/conf.py ---
COMPLIANCE_ID_EXPIRY_WARNING_DAYS = 30  # ID document expiring within this many days: flagged
COMPLIANCE_ID_EXPIRED_HIGH_DAYS = 90  # expired longer than this: high severity
COMPLIANCE_KYC_REVIEW_DAYS = {"high": 365, "medium": 730, "low": 1095}  # by AML risk rating
COMPLIANCE_KYC_OVERDUE_HIGH_DAYS = 180
COMPLIANCE_RISK_ASSESSMENT_MAX_AGE_DAYS = 730
COMPLIANCE_HIGH_RISK_COUNTRIES = ("KP", "IR", "MM")  # FATF call-for-action jurisdictions
COMPLIANCE_SUITABILITY_FIRST_RUN_DAYS = 90  # trades read by the first suitability check
COMPLIANCE_AML_LARGE_DEPOSIT = "500000"  # CNY
COMPLIANCE_AML_WITHDRAWAL_DAYS = 5
COMPLIANCE_AML_WITHDRAWN_SHARE = "0.8"
COMPLIANCE_AML_MAX_TRADED_SHARE = "0.1"
COMPLIANCE_AML_LOOKBACK_DAYS = 30
COMPLIANCE_AML_REPORTING_THRESHOLD = "50000"  # CNY: large-cash reporting threshold
COMPLIANCE_AML_STRUCTURING_MARGIN = "0.1"  # "just under": within 10% below the threshold
COMPLIANCE_AML_STRUCTURING_COUNT = 3
COMPLIANCE_AML_STRUCTURING_DAYS = 7
COMPLIANCE_SCREENING_THRESHOLD = 88  # name similarity 0-100

# --- Feedback (feedback/conf.py) ---------------------------------------------------------
# Complaint SLA targets per severity, in calendar hours from opening. The due times are
# stamped on each ticket when it is opened: changing these never rewrites past tickets.
FEEDBACK_SLA = {
    "critical": {"first_response_hours": 2, "resolution_hours": 24},
    "high": {"first_response_hours": 8, "resolution_hours": 72},
    "medium": {"first_response_hours": 24, "resolution_hours": 168},
    "low": {"first_response_hours": 48, "resolution_hours": 336},
}
FEEDBACK_SIGNAL_DAYS = 180  # churn signals: detractor / low-CSAT answers in the last N days
FEEDBACK_DETRACTOR_FOLLOWUP_DAYS = 2  # an NPS detractor's follow-up task is due after N days
