"""The smallest Django site serving django-fingerprint-attendance's ADMS receiver, for
scripts/bench-adms to compare against: SQLite (as its own tests use) in the file named
by DJANGO_ADMS_DB, terminals accepted without approval (as our bench accepts them), no
per-terminal rate limit (the bench pushes faster than a terminal would), warnings only
in the log."""

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "fingerprint_attendance",
]
MIDDLEWARE = []
ROOT_URLCONF = "urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["DJANGO_ADMS_DB"],
        # Django's advice for SQLite under concurrent writers: take the write lock at
        # BEGIN and wait for it rather than fail with "database is locked".
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FINGERPRINT_ATTENDANCE = {
    "ADMS_REQUIRE_DEVICE_APPROVAL": False,
    "ADMS_RATE_LIMIT": "",
    "TEMPLATE_ENCRYPTION_KEYS": ["cNi_LrhTmPXYQiUobiqU7VzQ8xqVMeJPzW68qYeYQog="],
}
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
