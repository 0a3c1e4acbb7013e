-- Django's own DDL for django.contrib.sessions 0001_initial on SQLite (sqlmigrate sessions 0001),
-- made idempotent so that a database Django already migrated is used as it is, untouched.
CREATE TABLE IF NOT EXISTS "django_session" (
    "session_key" varchar(40) NOT NULL PRIMARY KEY,
    "session_data" text NOT NULL,
    "expire_date" datetime NOT NULL
);
CREATE INDEX IF NOT EXISTS "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");
