"""Production: PostgreSQL, Redis, gunicorn + whitenoise, secure cookies and HTTPS.

Refuses to start without SECRET_KEY, ALLOWED_HOSTS, FIELD_ENCRYPTION_KEYS and FIELD_HASH_KEY
(and with the development values of any of them)."""

from django.core.exceptions import ImproperlyConfigured

from brokercrm.lib.env import env_bool, env_int, env_list, env_str

from .base import *  # noqa: F403
from .base import DEV_FIELD_ENCRYPTION_KEY, DEV_FIELD_HASH_KEY, fernet_keys

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY")
if "insecure" in SECRET_KEY or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 50 characters.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name at least one host.")

# Encryption at rest of identifiers: no default, never the development keys.
FIELD_ENCRYPTION_KEYS = fernet_keys("FIELD_ENCRYPTION_KEYS", env_list("FIELD_ENCRYPTION_KEYS"))
if DEV_FIELD_ENCRYPTION_KEY in FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must not contain the development key.")
FIELD_HASH_KEY = env_str("FIELD_HASH_KEY")
if FIELD_HASH_KEY == DEV_FIELD_HASH_KEY or "insecure" in FIELD_HASH_KEY or len(FIELD_HASH_KEY) < 32:
    raise ImproperlyConfigured("FIELD_HASH_KEY must be a random string of at least 32 characters.")
if FIELD_HASH_KEY == SECRET_KEY or FIELD_HASH_KEY in FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("FIELD_HASH_KEY must be a secret of its own (not SECRET_KEY nor an encryption key).")

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
# The container health check speaks plain HTTP on loopback.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# __Host- cookies: HTTPS only, this host only (no Domain), path / - a sibling subdomain
# cannot plant or overwrite them (session fixation, cookie tossing).
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
# A session lasts SESSION_COOKIE_AGE from the login at most, and ends when the browser
# closes (a shared branch PC); no per-request session write for a sliding expiry.
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = True
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
