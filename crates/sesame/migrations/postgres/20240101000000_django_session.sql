-- Django's own DDL for django.contrib.sessions 0001_initial on PostgreSQL (sqlmigrate sessions
-- 0001), made idempotent so that a database Django already migrated is used as it is, untouched:
-- same column types, same index names (so IF NOT EXISTS finds Django's indexes).
--
-- Applied on every connect, in one transaction under an advisory lock (two servers starting at
-- once would otherwise race on CREATE TABLE IF NOT EXISTS), rather than through sqlx's migration
-- table: Django owns this schema, and a bookkeeping table that says "applied" after someone
-- dropped django_session would stop Sesame from recreating it.
CREATE TABLE IF NOT EXISTS "django_session" (
    "session_key" varchar(40) NOT NULL PRIMARY KEY,
    "session_data" text NOT NULL,
    "expire_date" timestamp with time zone NOT NULL
);
CREATE INDEX IF NOT EXISTS "django_session_session_key_c0390e0f_like" ON "django_session" ("session_key" varchar_pattern_ops);
CREATE INDEX IF NOT EXISTS "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");
