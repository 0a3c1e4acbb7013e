#!/usr/bin/env python3
"""Generate Django session-encoding test vectors from REAL Django (5.2).

Run with the venv made by tests/django/setup.sh:

    .venv/bin/python tests/django/make_vectors.py            # vectors + DDL
    .venv/bin/python tests/django/make_vectors.py --no-pg    # skip PostgreSQL DDL

Writes:
  crates/sesame/tests/fixtures/django_vectors.json
      Standard-JSON vectors. Each entry:
        name      unique name
        json      the exact JSON text Django serialized and signed
                  (json.dumps(obj, separators=(",", ":")), ensure_ascii=True)
        decoded   JSON text of what django.core.signing.loads returns
                  (same serializer); equals "json" for every vector here
        encoded   the session_data string Django produces
        secret    SECRET_KEY used
        salt      signing salt
        timestamp the (patched) unix time used by TimestampSigner
        compressed  whether Django chose zlib ('.'-prefixed payload)
        raw_len / zlib_len   len of JSON bytes / len of zlib.compress(JSON)
  crates/sesame/tests/fixtures/django_vectors_nonstandard.json
      Vectors whose "json" is NOT standard JSON (NaN, Infinity, lone surrogates)
      or whose numbers exceed i64/u64. Kept separate so a strict parser on the
      main file never chokes.
  crates/sesame/tests/fixtures/django_db_formats.json
      How Django's SQLite backend stores expire_date, and PostgreSQL column type.
  tests/django/ddl_sqlite.sql, tests/django/ddl_postgresql.sql
      Output of `manage.py sqlmigrate sessions 0001` per backend.
"""

import argparse
import datetime as dt
import io
import json
import os
import sqlite3
import sys
import tempfile
import zlib
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "crates", "sesame", "tests", "fixtures")

SECRET = "test-secret-key-1234567890"
OLD_SECRET = "old-secret-key"
SALT = "django.contrib.sessions.SessionStore"
SIGNED_COOKIES_SALT = "django.contrib.sessions.backends.signed_cookies"
FIXED_TIME = 1700000000

_tmpdir = tempfile.mkdtemp(prefix="sesame-vectors-")
SQLITE_PATH = os.path.join(_tmpdir, "db.sqlite3")


def configure(pg):
    from django.conf import settings

    databases = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": SQLITE_PATH},
    }
    if pg:
        databases["pg"] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "test"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
        }
    settings.configure(
        SECRET_KEY=SECRET,
        USE_TZ=True,
        TIME_ZONE="UTC",
        DATABASES=databases,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        SESSION_ENGINE="django.contrib.sessions.backends.db",
        MESSAGE_STORAGE="django.contrib.messages.storage.session.SessionStorage",
    )
    import django

    django.setup()


def py_json(obj):
    """Exactly what django.core.signing.JSONSerializer.dumps emits (as str)."""
    return json.dumps(obj, separators=(",", ":"))


def make_vector(name, obj, secret=SECRET, salt=SALT, **extra):
    from django.core import signing

    with mock.patch("django.core.signing.time.time", return_value=FIXED_TIME):
        encoded = signing.dumps(obj, key=secret, salt=salt, compress=True)
    # Cross-check with the session backend's own encode() for the default
    # secret+salt (it must produce the same thing).
    if secret == SECRET and salt == SALT:
        from django.contrib.sessions.backends.db import SessionStore

        with mock.patch("django.core.signing.time.time", return_value=FIXED_TIME):
            assert SessionStore().encode(obj) == encoded, name
    decoded = signing.loads(encoded, key=secret, salt=salt)
    raw = py_json(obj).encode("latin-1")
    z = zlib.compress(raw)
    payload = encoded.split(":")[0]
    v = {
        "name": name,
        "json": py_json(obj),
        "decoded": py_json(decoded),
        "encoded": encoded,
        "secret": secret,
        "salt": salt,
        "timestamp": FIXED_TIME,
        "compressed": payload.startswith("."),
        "raw_len": len(raw),
        "zlib_len": len(z),
    }
    assert v["compressed"] == (len(z) < len(raw) - 1), name
    v.update(extra)
    return v


def messages_value():
    """`_messages` exactly as SessionStorage stores it in the session."""
    from django.contrib.messages import constants
    from django.contrib.messages.storage.session import SessionStorage
    from django.http import HttpResponse
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = {}
    storage = SessionStorage(request)
    storage.add(constants.ERROR, "Error wrong username/password")
    storage.update(HttpResponse())
    return request.session["_messages"]


def build_vectors():
    V = []
    add = lambda name, obj, **kw: V.append(make_vector(name, obj, **kw))

    add("foo_bar", {"foo": "bar"})
    assert V[0]["encoded"] == (
        "eyJmb28iOiJiYXIifQ:1r31eq:FJrdKYOq3Of399GRyTTI_ulmg2JvgWicIf-1mNTiHo8"
    ), V[0]["encoded"]
    add("empty_dict", {})
    add("tutorial", {"id": 1, "name": "root", "password": "rootpass"})
    add("tutorial_key_order_reversed", {"password": "rootpass", "name": "root", "id": 1})
    add("int_zero", {"n": 0})
    add("ints", {"a": 1, "b": 42, "c": 1234567890})
    add("negative_ints", {"a": -1, "b": -42, "c": -1234567890})
    add("i64_max", {"n": 2**63 - 1})
    add("i64_min", {"n": -(2**63)})
    add("two_pow_53_plus_1", {"n": 2**53 + 1})
    add("count_1", {"count": 1})
    for label, f in [
        ("0_1", 0.1),
        ("1_0", 1.0),
        ("0_0", 0.0),
        ("neg_0_0", -0.0),
        ("1e15", 1e15),
        ("1e16", 1e16),
        ("1e22", 1e22),
        ("0_0001", 0.0001),
        ("1_5e-05", 1.5e-05),
        ("2_5e-07", 2.5e-07),
        ("123456789_123", 123456789.123),
        ("neg_3_14", -3.14),
        ("1e300", 1e300),
        ("5e-324", 5e-324),
        ("f64_max", 1.7976931348623157e308),
        ("1_0_over_3", 1.0 / 3.0),
        ("100_0", 100.0),
    ]:
        add("float_" + label, {"f": f})
    add("floats_in_list", {"l": [0.5, 1e16, -0.0, 2.0, 1e-7]})
    add("bool_true", {"b": True})
    add("bool_false", {"b": False})
    add("null", {"n": None})
    add("mixed_scalars", {"t": True, "f": False, "n": None, "i": 7, "x": 2.5, "s": "s"})
    add(
        "nested",
        {"a": {"b": {"c": [1, 2, {"d": [], "e": {}}]}}, "l": [[], [[]], [None, True]]},
    )
    add("list_of_strings", {"l": ["x", "y", "z"]})
    add("empty_string", {"s": ""})
    add("empty_key", {"": "empty key"})
    add("e_acute", {"s": "é"})
    add("cjk", {"s": "中文"})
    add("emoji_surrogate_pair", {"s": "😀"})
    add("u2028_u2029", {"s": "a\u2028b\u2029c"})
    add("non_ascii_key", {"clé": "valeur", "键": "值"})
    add("latin1_range", {"s": "\u0080\u00a0\u00ff"})
    add("bmp_edge", {"s": "\ufeff\uffff"})
    add("name_zoe_mixed", {"name": "Zoë 中文 😀"})
    add("control_newline_tab", {"s": "line1\nline2\tend\r"})
    add("control_nul", {"s": "a\x00b"})
    add("control_del_7f", {"s": "a\x7fb"})
    add("control_1f", {"s": "a\x1fb"})
    add("control_b_f", {"s": "\b\f"})
    add("control_all_c0", {"s": "".join(chr(i) for i in range(0x20))})
    add("quotes_backslash_slash", {"s": 'say "hi" \\ path/to/x </script>'})
    add("html_chars", {"s": "<a href='x'>&amp;</a>"})
    add("large_compressible", {"s": "a" * 5000})
    add("large_compressible_tutorial_like", {"id": 1, "data": ["root"] * 300})
    add("short_incompressible", {"k": "x9Q"})
    add("compress_saves_0", {"k": "ab" + "q" * 10})
    add("compress_saves_1_not_used", {"k": "ab" + "q" * 11})
    add("compress_saves_2_used", {"k": "ab" + "q" * 12})
    add("compress_saves_3_used", {"k": "ab" + "q" * 13})
    add("digits_twice_saves_1", {"k": "0123456789" * 2})
    # Django session internals
    add("session_expiry_iso", {"_session_expiry": "2030-01-01T00:00:00+00:00"})
    add(
        "session_expiry_iso_micro",
        {"_session_expiry": dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc).isoformat()},
    )
    add("session_expiry_int", {"_session_expiry": 300})
    add("session_expiry_zero", {"_session_expiry": 0})
    add("session_expiry_with_data", {"id": 1, "_session_expiry": 1209600})
    msgs = messages_value()
    add("messages_error", {"_messages": msgs}, messages_value=msgs)
    add(
        "auth_session",
        {
            "_auth_user_id": "1",
            "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
            "_auth_user_hash": "0" * 64,
        },
    )
    add("testcookie", {"testcookie": "worked"})
    # Real SessionStore.set_expiry output
    from django.contrib.sessions.backends.db import SessionStore

    s = SessionStore()
    s["id"] = 1
    s.set_expiry(dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc))
    add("set_expiry_datetime", dict(s.items()))
    s = SessionStore()
    s["id"] = 1
    s.set_expiry(dt.datetime(2031, 5, 6, 7, 8, 9, 500, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    add("set_expiry_datetime_offset_micro", dict(s.items()))

    # Fallback-key vectors (signed with the OLD secret)
    add("old_secret_foo_bar", {"foo": "bar"}, secret=OLD_SECRET)
    add("old_secret_tutorial", {"id": 1, "name": "root", "password": "rootpass"}, secret=OLD_SECRET)
    add("old_secret_large_compressible", {"s": "a" * 5000}, secret=OLD_SECRET)

    # signed_cookies backend salt (for a possible cookie engine)
    add("signed_cookies_foo_bar", {"foo": "bar"}, salt=SIGNED_COOKIES_SALT)
    add("signed_cookies_tutorial", {"id": 1, "name": "root", "password": "rootpass"}, salt=SIGNED_COOKIES_SALT)

    names = [v["name"] for v in V]
    assert len(names) == len(set(names))
    for v in V:
        assert v["json"] == v["decoded"], v["name"]
        json.loads(v["json"])  # standard JSON sanity (Python accepts it)
    return V


def build_nonstandard():
    V = []
    add = lambda name, obj, **kw: V.append(make_vector(name, obj, **kw))
    add("nan", {"f": float("nan")})
    add("infinity", {"f": float("inf")})
    add("neg_infinity", {"f": float("-inf")})
    add("u64_max", {"n": 2**64 - 1})
    add("bigger_than_u64", {"n": 2**64})
    add("huge_int", {"n": 10**30})
    add("lone_high_surrogate", {"s": "\ud800"})
    add("lone_low_surrogate", {"s": "x\udc00y"})
    add("top_level_list", [1, 2, 3])
    add("top_level_string", "hello")
    add("top_level_null", None)
    add("int_key_becomes_string", {1: "one"})
    add("tuple_becomes_list", {"t": (1, 2)})
    # decoded differs from json for the last two
    return V


def sqlmigrate(database):
    from django.core.management import call_command

    out = io.StringIO()
    call_command("sqlmigrate", "sessions", "0001", database=database, stdout=out, no_color=True)
    return out.getvalue()


def db_formats(pg):
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", "sessions", database="default", verbosity=0)
    result = {"sqlite": {}, "notes": []}
    cases = {
        "with_microseconds": dt.datetime(2031, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc),
        "zero_microseconds": dt.datetime(2031, 1, 2, 3, 4, 5, 0, tzinfo=dt.timezone.utc),
        "aware_plus_0200": dt.datetime(2031, 1, 2, 5, 4, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    }
    keys = {}
    # fixed clock so the fixture is reproducible
    fixed_now = dt.datetime.fromtimestamp(FIXED_TIME, dt.timezone.utc).replace(microsecond=250000)
    clock = mock.patch("django.contrib.sessions.backends.base.timezone.now", return_value=fixed_now)
    signing_clock = mock.patch("django.core.signing.time.time", return_value=FIXED_TIME)
    clock.start()
    signing_clock.start()
    for label, when in cases.items():
        s = SessionStore()
        s["id"] = 1
        s.set_expiry(when)
        s.save()
        keys[label] = s.session_key
    # a session with the default (now + SESSION_COOKIE_AGE) expiry
    s = SessionStore()
    s["id"] = 1
    s.save()
    keys["default_expiry"] = s.session_key
    clock.stop()
    signing_clock.stop()
    connections["default"].close()
    con = sqlite3.connect(SQLITE_PATH)
    for label, key in keys.items():
        row = con.execute(
            "SELECT expire_date, typeof(expire_date), session_data FROM django_session WHERE session_key=?",
            (key,),
        ).fetchone()
        result["sqlite"][label] = {
            "expire_date_text": row[0],
            "sqlite_typeof": row[1],
            "session_data": row[2],
        }
        if label in cases:
            result["sqlite"][label]["set_expiry"] = cases[label].isoformat()
        else:
            result["sqlite"][label]["now"] = fixed_now.isoformat()
    result["sqlite"]["schema"] = [
        r[0] for r in con.execute("SELECT sql FROM sqlite_master WHERE tbl_name='django_session' AND sql IS NOT NULL ORDER BY name")
    ]
    con.close()
    if pg:
        c = connections["pg"]
        with c.cursor() as cur:
            cur.execute("SHOW TimeZone")
            tz = cur.fetchone()[0]
        result["postgresql"] = {
            "expire_date_column_type": "timestamp with time zone",
            "server_timezone_default": tz,
            "note": "Django sets the connection TimeZone to UTC when USE_TZ=True",
        }
    result["notes"].append(
        "SQLite: Django stores str(naive UTC datetime): 'YYYY-MM-DD HH:MM:SS.ffffff', "
        "and drops the '.ffffff' part entirely when microsecond == 0. Queries compare as TEXT "
        "(expire_date > 'YYYY-MM-DD HH:MM:SS.ffffff')."
    )
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL DDL")
    args = ap.parse_args()
    pg = not args.no_pg
    configure(pg)
    import django

    os.makedirs(FIXTURES, exist_ok=True)
    V = build_vectors()
    meta = {
        "django_version": django.get_version(),
        "python_version": sys.version.split()[0],
        "zlib_runtime_version": zlib.ZLIB_RUNTIME_VERSION,
    }
    with open(os.path.join(FIXTURES, "django_vectors.json"), "w", encoding="utf-8") as f:
        json.dump(V, f, indent=1, ensure_ascii=False)
        f.write("\n")
    NS = build_nonstandard()
    with open(os.path.join(FIXTURES, "django_vectors_nonstandard.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "vectors": NS}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(V)} vectors (+{len(NS)} non-standard); Django {meta['django_version']}, zlib {meta['zlib_runtime_version']}")

    with open(os.path.join(HERE, "ddl_sqlite.sql"), "w") as f:
        f.write(sqlmigrate("default"))
    if pg:
        with open(os.path.join(HERE, "ddl_postgresql.sql"), "w") as f:
            f.write(sqlmigrate("pg"))
    formats = db_formats(pg)
    formats["meta"] = meta
    with open(os.path.join(FIXTURES, "django_db_formats.json"), "w") as f:
        json.dump(formats, f, indent=1)
        f.write("\n")
    print("wrote DDL and db formats")


if __name__ == "__main__":
    main()
