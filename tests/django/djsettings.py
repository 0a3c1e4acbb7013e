"""Minimal Django settings for the Sesame interop tests.

Configured from the environment:
  DATABASE_URL   if it starts with postgres:// or postgresql://, use PostgreSQL
                 (postgres://USER[:PASSWORD]@HOST[:PORT]/NAME)
  SESAME_DB      otherwise: path of the SQLite database file
  SECRET_KEY     signing key (default 'test-secret-key-1234567890')
  SECRET_KEY_FALLBACKS  comma-separated fallback keys (default none)
"""

import os
from urllib.parse import unquote, urlparse

SECRET_KEY = os.environ.get("SECRET_KEY", "test-secret-key-1234567890")
SECRET_KEY_FALLBACKS = [k for k in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if k]

USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
]

SESSION_ENGINE = "django.contrib.sessions.backends.db"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"


def _database():
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        u = urlparse(url)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(u.path.lstrip("/")) or "test",
            "HOST": u.hostname or "127.0.0.1",
            "PORT": str(u.port or 5432),
            "USER": unquote(u.username or "postgres"),
            "PASSWORD": unquote(u.password or ""),
        }
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SESAME_DB", "db.sqlite3"),
    }


DATABASES = {"default": _database()}
