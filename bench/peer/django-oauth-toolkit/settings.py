"""Django settings for the django-oauth-toolkit peer of bench/oauth.sh (loopback only, no DEBUG).

One app, oauth2_provider, behind gunicorn; tokens are DOT's opaque access tokens, one row
each in SQLite (WAL). Environment: PEER_DB (the SQLite file), PEER_DJANGO_SECRET.
"""
import os

SECRET_KEY = os.environ["PEER_DJANGO_SECRET"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "oauth2_provider"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "urls"
WSGI_APPLICATION = "wsgi.application"
USE_TZ = True
# SQLite in WAL mode: of what was tried on the benchmark machine (PostgreSQL 15 over its Unix
# socket, gthread workers) this gave DOT the most tokens per second.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["PEER_DB"],
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
            "transaction_mode": "IMMEDIATE",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "SCOPES": {"projects:read": "Read projects"},
    "DEFAULT_SCOPES": ["projects:read"],
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
