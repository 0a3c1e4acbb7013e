"""Interop tests: real Django 5.2 <-> Sesame's `tutorial` example server.

Both sides share one database (SQLite file by default; PostgreSQL when the
environment's DATABASE_URL starts with postgres). Django reads/writes sessions
with its own db SessionStore; Sesame is driven over HTTP.

Run:
    bash tests/django/setup.sh
    cargo build -p sesame --all-features --example tutorial --bin sesame
    .venv/bin/python -m pytest tests/django -q

Env:
    SESAME_TUTORIAL_BIN   path of the example binary
                          (default <repo>/target/debug/examples/tutorial)
    SESAME_CLI_BIN        path of the `sesame` command (default <repo>/target/debug/sesame)
    DATABASE_URL          postgres://... to run against PostgreSQL instead of SQLite
"""

import base64
import datetime as dt
import http.cookies
import json
import os
import re
import secrets
import socket
import sqlite3
import string
import subprocess
import sys
import tempfile
import time
from unittest import mock

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

PG_URL = os.environ.get("DATABASE_URL", "")
USE_PG = PG_URL.startswith(("postgres://", "postgresql://"))

_BOOT_DIR = tempfile.mkdtemp(prefix="sesame-interop-")
if not USE_PG:
    os.environ["SESAME_DB"] = os.path.join(_BOOT_DIR, "boot.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djsettings")
os.environ.pop("SECRET_KEY_FALLBACKS", None)
os.environ["SECRET_KEY"] = "test-secret-key-1234567890"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core import signing  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import override_settings  # noqa: E402

BIN = os.environ.get(
    "SESAME_TUTORIAL_BIN", os.path.join(ROOT, "target", "debug", "examples", "tutorial")
)
CLI = os.environ.get("SESAME_CLI_BIN", os.path.join(ROOT, "target", "debug", "sesame"))
SALT = "django.contrib.sessions.SessionStore"
TUTORIAL = {"id": 1, "name": "root", "password": "rootpass"}
TUTORIAL_TEXT = "Id : 1 <br>Name : root <br>Password : rootpass <br>"
NO_DATA = "No session data"
DEFAULT_SECRET = "test-secret-key-1234567890"
# Django's SQLite backend stores str(naive UTC datetime); '.ffffff' omitted when 0.
DJANGO_SQLITE_DT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?$")


# --------------------------------------------------------------------------
# database helpers
# --------------------------------------------------------------------------


class Db:
    """One test database shared by Django (this process) and Sesame."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        connection.close()
        if USE_PG:
            self.path = None
            self.url = PG_URL
            with connection.cursor() as c:
                c.execute("DROP TABLE IF EXISTS django_session")
                c.execute(
                    "DELETE FROM django_migrations WHERE app='sessions'"
                    if "django_migrations" in connection.introspection.table_names(c)
                    else "SELECT 1"
                )
        else:
            self.path = str(tmp_path / "db.sqlite3")
            self.url = f"sqlite://{self.path}?mode=rwc"
            connection.settings_dict["NAME"] = self.path
        connection.close()

    def migrate(self):
        call_command("migrate", "sessions", verbosity=0)
        connection.close()

    def schema(self):
        """Normalized description of the django_session table + its indexes."""
        if USE_PG:
            with connection.cursor() as c:
                c.execute(
                    "SELECT column_name, data_type, character_maximum_length, is_nullable "
                    "FROM information_schema.columns WHERE table_name='django_session' "
                    "ORDER BY ordinal_position"
                )
                cols = c.fetchall()
                c.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename='django_session' ORDER BY 1")
                idx = c.fetchall()
            connection.close()
            return {"columns": cols, "indexes": idx}
        con = sqlite3.connect(self.path)
        try:
            rows = con.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name='django_session' ORDER BY type, name"
            ).fetchall()
            cols = con.execute("PRAGMA table_info(django_session)").fetchall()
        finally:
            con.close()
        return {"objects": rows, "columns": cols}

    def table_exists(self):
        with connection.cursor() as c:
            names = connection.introspection.table_names(c)
        connection.close()
        return "django_session" in names

    def row(self, key):
        with connection.cursor() as c:
            c.execute(
                "SELECT session_data, expire_date FROM django_session WHERE session_key=%s", [key]
            )
            r = c.fetchone()
        connection.close()
        return r

    def raw_expire_text(self, key):
        """SQLite only: the exact TEXT stored in expire_date."""
        con = sqlite3.connect(self.path)
        try:
            r = con.execute(
                "SELECT expire_date, typeof(expire_date) FROM django_session WHERE session_key=?", (key,)
            ).fetchone()
        finally:
            con.close()
        return r

    def execute(self, sql, params=()):
        with connection.cursor() as c:
            c.execute(sql, list(params))
        connection.close()

    def count(self):
        with connection.cursor() as c:
            c.execute("SELECT COUNT(*) FROM django_session")
            n = c.fetchone()[0]
        connection.close()
        return n


# --------------------------------------------------------------------------
# Django-side helpers
# --------------------------------------------------------------------------


def django_write(data, secret=DEFAULT_SECRET, expiry=None):
    with override_settings(SECRET_KEY=secret, SECRET_KEY_FALLBACKS=[]):
        s = SessionStore()
        for k, v in data.items():
            s[k] = v
        if expiry is not None:
            s.set_expiry(expiry)
        s.save()
        key = s.session_key
    connection.close()
    assert key and len(key) == 32
    return key


def django_load(key, secret=DEFAULT_SECRET, fallbacks=()):
    with override_settings(SECRET_KEY=secret, SECRET_KEY_FALLBACKS=list(fallbacks)):
        data = SessionStore(session_key=key).load()
    connection.close()
    return data


def db_dt(value):
    """An aware datetime as Django's backend would bind it (naive-UTC TEXT on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)


def b62_decode(s):
    return signing.b62_decode(s)


def django_reencode(data, timestamp, secret=DEFAULT_SECRET):
    """What Django would have stored for `data` if it had signed at `timestamp`."""
    with override_settings(SECRET_KEY=secret, SECRET_KEY_FALLBACKS=[]):
        with mock.patch("django.core.signing.time.time", return_value=timestamp):
            return SessionStore().encode(data)


def session_data_timestamp(session_data):
    # payload:timestamp:signature
    parts = session_data.split(":")
    assert len(parts) == 3, session_data
    return b62_decode(parts[1])


# --------------------------------------------------------------------------
# Sesame server
# --------------------------------------------------------------------------


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sesame:
    def __init__(self, db, secret=DEFAULT_SECRET, fallbacks=(), url=None, log_dir=None, engine="db", extra_env=None):
        if not os.path.isfile(BIN) or not os.access(BIN, os.X_OK):
            pytest.fail(
                f"Sesame tutorial example binary not found at {BIN!r}. Build it with "
                "`cargo build -p sesame --example tutorial` or set SESAME_TUTORIAL_BIN.",
                pytrace=False,
            )
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.pop("SESAME_DB", None)
        env.update(
            DATABASE_URL=url or db.url,
            SECRET_KEY=secret,
            SECRET_KEY_FALLBACKS=",".join(fallbacks),
            SESSION_ENGINE=engine,
        )
        env.update(extra_env or {})
        env.setdefault("RUST_LOG", "info")
        self.log_path = os.path.join(log_dir or db.tmp_path, f"sesame-{self.port}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [BIN, "--addr", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # run outside the repo so no Leptos.toml / key file there leaks in
            cwd=str(db.tmp_path),
        )
        self._wait_ready()

    def logs(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        if len(text) > 6000:  # keep the error line(s) at the top, not just a backtrace
            text = text[:3000] + "\n[...]\n" + text[-3000:]
        return text

    def _wait_ready(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"Sesame exited early with code {self.proc.returncode}:\n{self.logs()}",
                    pytrace=False,
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"Sesame did not accept connections within 30 s:\n{self.logs()}", pytrace=False)

    def get(self, path, key=None, cookie=None):
        headers = {}
        if cookie is not None:
            headers["Cookie"] = cookie
        elif key is not None:
            headers["Cookie"] = f"sessionid={key}"
        r = requests.get(self.base + path, headers=headers, allow_redirects=False, timeout=10)
        return r

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def set_cookies(r):
    """All Set-Cookie headers parsed -> {name: Morsel}."""
    out = {}
    for h in r.raw.headers.getlist("Set-Cookie"):
        c = http.cookies.SimpleCookie()
        c.load(h)
        for name, morsel in c.items():
            out[name] = morsel
    return out


def set_cookie_raw(r, name="sessionid"):
    for h in r.raw.headers.getlist("Set-Cookie"):
        if h.split("=", 1)[0].strip() == name:
            return h
    return None


def new_session_key(r):
    m = set_cookies(r).get("sessionid")
    assert m is not None, f"no sessionid Set-Cookie; headers={dict(r.headers)}"
    return m.value


def assert_text(r, expected, status=200):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.text == expected, f"body {r.text!r} != {expected!r}"


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path):
    return Db(tmp_path)


@pytest.fixture
def sesame_factory(db):
    started = []

    def start(**kw):
        s = Sesame(db, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def sesame(db, sesame_factory):
    """Sesame started first on an empty database (it creates the table)."""
    return sesame_factory()


# --------------------------------------------------------------------------
# smoke
# --------------------------------------------------------------------------


def test_plain_route(sesame):
    assert_text(sesame.get("/plain/"), "ok")


def test_sesame_creates_table_on_empty_db(db, sesame):
    assert db.table_exists(), "Sesame did not create django_session on start"
    # Django must be able to use the table Sesame created.
    key = django_write(TUTORIAL)
    assert django_load(key) == TUTORIAL


@pytest.mark.skipif(USE_PG, reason="sqlite schema comparison")
def test_sesame_created_schema_matches_django_migrate(db, tmp_path, sesame):
    """Columns (name, declared type, notnull, pk) equal what Django's migrate makes."""
    os.makedirs(tmp_path / "django_ref", exist_ok=True)
    theirs = Db(tmp_path / "django_ref")
    theirs.migrate()
    ref = theirs.schema()
    # point Django back at the shared db
    connection.settings_dict["NAME"] = db.path
    connection.close()
    got = db.schema()

    def cols(s):
        return [(c[1], c[2].lower(), c[3], c[5]) for c in s["columns"]]

    assert cols(got) == cols(ref)
    idx_sql = [o[2] for o in got["objects"] if o[0] == "index" and o[2]]
    assert any("expire_date" in (sql or "") for sql in idx_sql), got


def test_migrate_first_then_sesame_does_not_alter_table(db, sesame_factory):
    db.migrate()
    before = db.schema()
    s = sesame_factory()
    assert_text(s.get("/plain/"), "ok")
    r = s.get("/save-session-data/")
    assert_text(r, "Session Data Saved")
    key = new_session_key(r)
    assert django_load(key) == TUTORIAL
    after = db.schema()
    assert after == before, "Sesame altered the Django-migrated django_session table"
    # and restarting Sesame on the same db is fine too
    s.stop()
    s2 = sesame_factory()
    assert_text(s2.get("/access-session-data/", key=key), TUTORIAL_TEXT)
    assert db.schema() == before


@pytest.mark.skipif(USE_PG, reason="sqlite URL form")
def test_sqlite_colon_url_form(db, sesame_factory):
    db.migrate()
    key = django_write(TUTORIAL)
    s = sesame_factory(url=f"sqlite:{db.path}")
    assert_text(s.get("/access-session-data/", key=key), TUTORIAL_TEXT)


# --------------------------------------------------------------------------
# (a) Django writes, Sesame reads
# --------------------------------------------------------------------------


@pytest.mark.parametrize("schema_by", ["sesame", "django"])
def test_a_django_writes_sesame_reads(db, sesame_factory, schema_by):
    if schema_by == "django":
        db.migrate()
        s = sesame_factory()
    else:
        s = sesame_factory()
    key = django_write(TUTORIAL)
    r = s.get("/access-session-data/", key=key)
    assert_text(r, TUTORIAL_TEXT)
    # reading must not rotate the key
    m = set_cookies(r).get("sessionid")
    assert m is None or m.value == key


def test_a_partial_keys(db, sesame):
    key = django_write({"name": "root"})
    assert_text(sesame.get("/access-session-data/", key=key), "Name : root <br>")


def test_a_django_compressed_session(db, sesame):
    """Large value -> Django stores a '.'-prefixed zlib payload; Sesame must read it."""
    data = dict(TUTORIAL)
    data["blob"] = "x" * 5000
    key = django_write(data)
    assert db.row(key)[0].startswith("."), "expected Django to compress"
    assert_text(sesame.get("/access-session-data/", key=key), TUTORIAL_TEXT)
    r = sesame.get("/counter/", key=key)
    assert_text(r, "1")
    loaded = django_load(key)
    assert loaded == {**data, "count": 1}
    session_data = db.row(key)[0]
    assert session_data.startswith("."), "Sesame must zlib-compress like Django when it saves >=2 bytes"
    assert session_data == django_reencode(loaded, session_data_timestamp(session_data))


def test_a_django_messages_and_expiry_survive(db, sesame):
    """Django-only keys (_messages, _session_expiry) pass through Sesame untouched."""
    from django.contrib.messages import constants
    from django.contrib.messages.storage.session import SessionStorage
    from django.http import HttpResponse
    from django.test import RequestFactory

    req = RequestFactory().get("/")
    req.session = {}
    st = SessionStorage(req)
    st.add(constants.ERROR, "Error wrong username/password")
    st.update(HttpResponse())
    expiry = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).replace(microsecond=0)
    key = django_write({"id": 1, "_messages": req.session["_messages"]}, expiry=expiry)
    r = sesame.get("/counter/", key=key)
    assert_text(r, "1")
    loaded = django_load(key)
    assert loaded["_messages"] == req.session["_messages"]
    assert loaded["_session_expiry"] == expiry.isoformat()
    assert loaded["count"] == 1 and loaded["id"] == 1
    session_data = db.row(key)[0]
    assert session_data == django_reencode(loaded, session_data_timestamp(session_data))


# --------------------------------------------------------------------------
# (b) Sesame writes, Django reads
# --------------------------------------------------------------------------


@pytest.mark.parametrize("schema_by", ["sesame", "django"])
def test_b_sesame_writes_django_reads(db, sesame_factory, schema_by):
    if schema_by == "django":
        db.migrate()
    s = sesame_factory()
    r = s.get("/save-session-data/")
    assert_text(r, "Session Data Saved")
    key = new_session_key(r)
    assert re.fullmatch(r"[a-z0-9]{32}", key), f"session key {key!r} not Django-shaped"
    loaded = django_load(key)
    assert loaded == TUTORIAL
    assert list(loaded) == ["id", "name", "password"], "key order differs"
    assert isinstance(loaded["id"], int)
    session_data, expire_date = db.row(key)
    # raw row decodes with django.core.signing
    assert signing.loads(session_data, salt=SALT, key=DEFAULT_SECRET) == TUTORIAL
    # byte-for-byte what Django would have stored at the same timestamp
    ts = session_data_timestamp(session_data)
    assert abs(ts - time.time()) < 120, ts
    assert session_data == django_reencode(TUTORIAL, ts)
    # expiry ~ now + SESSION_COOKIE_AGE (two weeks)
    if isinstance(expire_date, str):
        expire_date = dt.datetime.fromisoformat(expire_date)
    if expire_date.tzinfo is None:
        expire_date = expire_date.replace(tzinfo=dt.timezone.utc)
    want = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert abs((expire_date - want).total_seconds()) < 120, expire_date
    # and Sesame reads its own write back
    assert_text(s.get("/access-session-data/", key=key), TUTORIAL_TEXT)


@pytest.mark.skipif(USE_PG, reason="sqlite text format")
def test_b_sqlite_expire_date_text_format(db, sesame):
    r = sesame.get("/save-session-data/")
    key = new_session_key(r)
    text, typ = db.raw_expire_text(key)
    assert typ == "text", typ
    assert DJANGO_SQLITE_DT.fullmatch(text), (
        f"expire_date stored as {text!r}; Django stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' "
        "(naive UTC) and compares it as TEXT"
    )


def test_b_sesame_write_respects_django_expiry_comparison(db, sesame):
    """Django filters expire_date > now(); a Sesame row expiring in the past must be invisible."""
    r = sesame.get("/save-session-data/")
    key = new_session_key(r)
    assert django_load(key) == TUTORIAL
    db.execute(
        "UPDATE django_session SET expire_date=%s WHERE session_key=%s",
        [db_dt(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)), key],
    )
    assert django_load(key) == {}


def test_b_cookie_attributes(db, sesame):
    r = sesame.get("/save-session-data/")
    raw = set_cookie_raw(r)
    assert raw is not None
    m = set_cookies(r)["sessionid"]
    assert m["path"] == "/", raw
    assert m["httponly"], raw
    assert m["samesite"].lower() == "lax", raw
    assert m["max-age"] == str(settings.SESSION_COOKIE_AGE), raw
    assert not m["secure"], raw


def test_b_non_ascii_roundtrip(db, sesame):
    name = "Zoë 中文 😀 \u2028 \x7f"
    key = django_write({"name": name})
    r = sesame.get("/counter/", key=key)
    assert_text(r, "1")
    m = set_cookies(r).get("sessionid")
    assert m is None or m.value == key, "modifying a valid session must keep its key"
    loaded = django_load(key)
    assert loaded == {"name": name, "count": 1}
    assert list(loaded) == ["name", "count"]
    session_data = db.row(key)[0]
    # ensure_ascii: the stored JSON must be pure ASCII (\uXXXX escapes), or
    # Django's latin-1 decoding turns it into mojibake.
    assert session_data == django_reencode(loaded, session_data_timestamp(session_data))
    r = sesame.get("/counter/", key=key)
    assert_text(r, "2")
    assert django_load(key) == {"name": name, "count": 2}


def test_b_counter_fresh_and_repeat(db, sesame):
    r = sesame.get("/counter/")
    assert_text(r, "1")
    key = new_session_key(r)
    for i in range(2, 5):
        assert_text(sesame.get("/counter/", key=key), str(i))
    assert django_load(key) == {"count": 4}


def test_b_float_and_big_values_roundtrip(db, sesame):
    """Values Sesame never touches must be re-serialized exactly as Python would."""
    data = {
        "f1": 0.1,
        "f2": 1e16,
        "f3": 1.5e-05,
        "f4": -0.0,
        "f5": 1.0,
        "f6": 123456789.123,
        "f7": 5e-324,
        "f8": 1e300,
        "big": 2**63 - 1,
        "neg": -(2**63),
        "nested": {"l": [None, True, False, "\x00\t\n\"\\/"]},
    }
    key = django_write(data)
    assert_text(sesame.get("/counter/", key=key), "1")
    session_data = db.row(key)[0]
    expected = dict(data, count=1)
    assert django_load(key) == expected
    assert session_data == django_reencode(expected, session_data_timestamp(session_data))


def test_b_delete_session_data(db, sesame):
    key = django_write(dict(TUTORIAL, other="keep"))
    assert_text(sesame.get("/delete-session-data/", key=key), "Session Data cleared")
    assert_text(sesame.get("/access-session-data/", key=key), NO_DATA)
    assert django_load(key) == {"other": "keep"}


def test_b_test_cookie_flow(db, sesame):
    r = sesame.get("/test-session/")
    assert_text(r, "Testing session cookie")
    key = new_session_key(r)
    assert django_load(key) == {"testcookie": "worked"}
    assert_text(sesame.get("/test-delete/", key=key), "Cookie test passed")
    assert_text(sesame.get("/test-delete/"), "Cookie test failed")


def test_b_django_testcookie_read_by_sesame(db, sesame):
    """Django's request.session.set_test_cookie() is understood by Sesame."""
    with override_settings(SECRET_KEY=DEFAULT_SECRET):
        s = SessionStore()
        s.set_test_cookie()
        s.save()
        key = s.session_key
    connection.close()
    assert_text(sesame.get("/test-delete/", key=key), "Cookie test passed")


# --------------------------------------------------------------------------
# (c) SECRET_KEY_FALLBACKS
# --------------------------------------------------------------------------


def test_c_fallback_key_reads_old_sessions(db, sesame_factory):
    s = sesame_factory(secret="new-key", fallbacks=("unrelated", "old-secret-key"))
    key = django_write(TUTORIAL, secret="old-secret-key")
    assert_text(s.get("/access-session-data/", key=key), TUTORIAL_TEXT)
    # modifying re-signs with the NEW key: Django with only new-key reads it
    assert_text(s.get("/counter/", key=key), "1")
    assert django_load(key, secret="new-key") == dict(TUTORIAL, count=1)
    assert django_load(key, secret="old-secret-key") == {}


def test_c_no_fallback_reads_empty(db, sesame_factory):
    s = sesame_factory(secret="new-key")
    key = django_write(TUTORIAL, secret="old-secret-key")
    assert_text(s.get("/access-session-data/", key=key), NO_DATA)


def test_c_django_reads_sesame_with_fallbacks(db, sesame_factory):
    s = sesame_factory(secret="new-key", fallbacks=("old-secret-key",))
    r = s.get("/save-session-data/")
    key = new_session_key(r)
    assert django_load(key, secret="new-key") == TUTORIAL
    # Django rotated: new primary, 'new-key' now a fallback
    assert django_load(key, secret="newer-key", fallbacks=["new-key"]) == TUTORIAL
    # Sesame must sign with SECRET_KEY, not a fallback
    assert django_load(key, secret="old-secret-key") == {}


# --------------------------------------------------------------------------
# (d) tampered data
# --------------------------------------------------------------------------


def _flip(ch):
    return "A" if ch != "A" else "B"


TAMPERS = {
    "payload_char": lambda d: _flip(d[0]) + d[1:],
    "signature_char": lambda d: d[:-1] + _flip(d[-1]),
    "timestamp_char": lambda d: d.split(":")[0] + ":" + _flip(d.split(":")[1][0]) + d.split(":")[1][1:] + ":" + d.split(":")[2],
    "truncated": lambda d: d[:-5],
    "no_separator": lambda d: d.replace(":", ""),
    "garbage": lambda d: "not-a-session",
    "empty": lambda d: "",
    "fake_compressed": lambda d: "." + d,
    "valid_sig_other_salt": lambda d: signing.dumps(TUTORIAL, key=DEFAULT_SECRET, salt="other.salt", compress=True),
    "valid_sig_bad_json": lambda d: signing.TimestampSigner(key=DEFAULT_SECRET, salt=SALT).sign(
        base64.urlsafe_b64encode(b"{not json").decode().rstrip("=")
    ),
    "valid_sig_bad_zlib": lambda d: signing.TimestampSigner(key=DEFAULT_SECRET, salt=SALT).sign(
        "." + base64.urlsafe_b64encode(b"\x78\x9c garbage").decode().rstrip("=")
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPERS))
def test_d_tampered_row_reads_empty(db, sesame, how):
    key = django_write(TUTORIAL)
    data = db.row(key)[0]
    bad = TAMPERS[how](data)
    assert bad != data
    db.execute("UPDATE django_session SET session_data=%s WHERE session_key=%s", [bad, key])
    # Django agrees it's empty
    assert django_load(key) == {}
    r = sesame.get("/access-session-data/", key=key)
    assert_text(r, NO_DATA)
    # still serves; writing afterwards yields a usable session
    r = sesame.get("/save-session-data/", key=key)
    assert_text(r, "Session Data Saved")
    m = set_cookies(r).get("sessionid")
    newkey = m.value if m is not None else key
    assert django_load(newkey) == TUTORIAL


def test_d_valid_signature_non_dict_json(db, sesame):
    """A correctly signed JSON list (not an object) must not crash Sesame."""
    bad = signing.dumps([1, 2, 3], key=DEFAULT_SECRET, salt=SALT, compress=True)
    key = django_write(TUTORIAL)
    db.execute("UPDATE django_session SET session_data=%s WHERE session_key=%s", [bad, key])
    r = sesame.get("/access-session-data/", key=key)
    assert r.status_code == 200, r.text
    assert r.text == NO_DATA


# --------------------------------------------------------------------------
# (e) unknown / malformed session keys
# --------------------------------------------------------------------------


def test_e_unknown_key_not_adopted(db, sesame):
    sent = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(32))
    assert_text(sesame.get("/access-session-data/", key=sent), NO_DATA)
    r = sesame.get("/save-session-data/", key=sent)
    assert_text(r, "Session Data Saved")
    got = new_session_key(r)
    assert got != sent, "Sesame adopted a client-chosen session key (session fixation)"
    assert db.row(sent) is None
    assert django_load(got) == TUTORIAL


@pytest.mark.parametrize(
    "cookie",
    [
        "sessionid=short",
        "sessionid=",
        "sessionid=UPPERCASE0123456789ABCDEFGHIJKLMN",
        "sessionid=" + "a" * 41,
        'sessionid="quoted"',
        "sessionid=%00%ff",
        "other=1; sessionid=" + "x" * 32 + "; third=3",
    ],
)
def test_e_malformed_cookie_no_500(db, sesame, cookie):
    r = sesame.get("/access-session-data/", cookie=cookie)
    assert_text(r, NO_DATA)
    r = sesame.get("/save-session-data/", cookie=cookie)
    assert_text(r, "Session Data Saved")
    got = new_session_key(r)
    assert re.fullmatch(r"[a-z0-9]{32}", got), got
    assert got not in cookie
    assert django_load(got) == TUTORIAL


def test_e_sesame_key_in_cookie_among_others(db, sesame):
    key = django_write(TUTORIAL)
    r = sesame.get("/access-session-data/", cookie=f"csrftoken=abc; sessionid={key}; x=y")
    assert_text(r, TUTORIAL_TEXT)


# --------------------------------------------------------------------------
# (f) expiry
# --------------------------------------------------------------------------


def test_f_expired_row_reads_empty(db, sesame):
    key = django_write(TUTORIAL)
    assert_text(sesame.get("/access-session-data/", key=key), TUTORIAL_TEXT)
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    db.execute("UPDATE django_session SET expire_date=%s WHERE session_key=%s", [db_dt(past), key])
    assert django_load(key) == {}
    assert_text(sesame.get("/access-session-data/", key=key), NO_DATA)
    # saving after expiry must not resurrect the expired key
    r = sesame.get("/save-session-data/", key=key)
    assert_text(r, "Session Data Saved")
    got = new_session_key(r)
    assert got != key
    assert django_load(got) == TUTORIAL


@pytest.mark.skipif(USE_PG, reason="sqlite text format")
@pytest.mark.parametrize(
    "text,visible",
    [
        ("2000-01-01 00:00:00", False),
        ("2999-01-01 00:00:00", True),
        ("2999-01-01 00:00:00.000001", True),
    ],
)
def test_f_django_format_expire_text(db, sesame, text, visible):
    """Rows whose expire_date TEXT is in Django's exact SQLite format."""
    key = django_write(TUTORIAL)
    con = sqlite3.connect(db.path)
    con.execute("UPDATE django_session SET expire_date=? WHERE session_key=?", (text, key))
    con.commit()
    con.close()
    assert (django_load(key) == TUTORIAL) is visible
    assert_text(sesame.get("/access-session-data/", key=key), TUTORIAL_TEXT if visible else NO_DATA)


@pytest.mark.skipif(USE_PG, reason="sqlite text format")
def test_f_expiry_just_passed_second_boundary(db, sesame):
    """Zero-microsecond text ('...:SS') a moment in the past must be expired for both."""
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=2)).replace(microsecond=0, tzinfo=None)
    key = django_write(TUTORIAL)
    con = sqlite3.connect(db.path)
    con.execute("UPDATE django_session SET expire_date=? WHERE session_key=?", (str(past), key))
    con.commit()
    con.close()
    assert django_load(key) == {}
    assert_text(sesame.get("/access-session-data/", key=key), NO_DATA)


def test_f_session_expiry_key_in_data(db, sesame):
    """Django's _session_expiry (ISO string) stored with the row; Sesame keeps row expiry sane."""
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).replace(microsecond=0)
    key = django_write(TUTORIAL, expiry=when)
    assert_text(sesame.get("/counter/", key=key), "1")
    loaded = django_load(key)
    assert loaded["_session_expiry"] == when.isoformat()
    _, expire_date = db.row(key)
    if isinstance(expire_date, str):
        expire_date = dt.datetime.fromisoformat(expire_date)
    if expire_date.tzinfo is None:
        expire_date = expire_date.replace(tzinfo=dt.timezone.utc)
    # Django would set the row's expire_date to exactly `when`
    assert abs((expire_date - when).total_seconds()) <= 1, expire_date


def test_vary_cookie_when_session_accessed(db, sesame):
    """Django's SessionMiddleware adds `Vary: Cookie` whenever the session was accessed."""
    key = django_write(TUTORIAL)
    r = sesame.get("/access-session-data/", key=key)
    assert_text(r, TUTORIAL_TEXT)
    vary = [v.strip().lower() for v in r.headers.get("Vary", "").split(",")]
    assert "cookie" in vary, r.headers


# --------------------------------------------------------------------------
# g. the file and signed_cookies engines, both ways (independent of DATABASE_URL)
# --------------------------------------------------------------------------


def test_g_file_engine_both_ways(db, sesame_factory, tmp_path, monkeypatch):
    from django.contrib.sessions.backends.file import SessionStore as FileStore

    folder = tmp_path / "sessions"
    sesame = sesame_factory(engine="file", extra_env={"SESSION_FILE_PATH": str(folder)})
    # Django caches the folder on the class the first time it needs it.
    monkeypatch.setattr(FileStore, "_storage_path", str(folder), raising=False)

    key = new_session_key(sesame.get("/save-session-data/"))
    assert (folder / f"sessionid{key}").is_file(), "Django's file name: SESSION_COOKIE_NAME + key"
    s = FileStore(key)
    assert s.load() == TUTORIAL
    assert 1209590 <= s.get_expiry_age(expiry=s._expiry_date(s.load())) <= 1209600

    theirs = FileStore()
    theirs.update({"id": 2, "name": "django", "password": "pw"})
    theirs.save()
    assert_text(sesame.get("/access-session-data/", key=theirs.session_key), "Id : 2 <br>Name : django <br>Password : pw <br>")
    # A logout on the Django side is a logout for Sesame too.
    theirs.delete()
    assert_text(sesame.get("/access-session-data/", key=theirs.session_key), NO_DATA)


def test_g_signed_cookies_both_ways(db, sesame_factory):
    from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieStore

    sesame = sesame_factory(engine="django.contrib.sessions.backends.signed_cookies")
    r = sesame.get("/save-session-data/")
    raw = set_cookie_raw(r)
    value = raw.split(";", 1)[0].split("=", 1)[1]
    assert value.count(":") == 2, f"colons sent as Django sends them: {raw}"
    assert CookieStore(value).load() == TUTORIAL

    theirs = CookieStore()
    theirs.update({"id": 3, "name": "cookie", "password": "pw"})
    theirs.save()
    assert_text(sesame.get("/access-session-data/", key=theirs.session_key), "Id : 3 <br>Name : cookie <br>Password : pw <br>")
    # Signed with the database engines' salt: not a valid cookie.
    wrong_salt = signing.dumps(TUTORIAL, salt=SALT, compress=True)
    assert_text(sesame.get("/access-session-data/", key=wrong_salt), NO_DATA)


# --------------------------------------------------------------------------
# h. two Sesame server processes sharing one store: no lost updates, shared logins
# --------------------------------------------------------------------------


def _redis_delete_prefix(url, prefix):
    """Remove a test's Redis keys (redis-cli ships with the server the tests run against)."""
    keys = subprocess.run(
        ["redis-cli", "-u", url, "--scan", "--pattern", prefix + "*"], capture_output=True, text=True
    ).stdout.split()
    if keys:
        subprocess.run(["redis-cli", "-u", url, "DEL", *keys], capture_output=True)


@pytest.mark.parametrize("engine", ["db", "cache", "cached_db"])
def test_h_two_processes_no_lost_updates(db, sesame_factory, engine, request):
    """200 concurrent increments of one session's counter, split between two server
    processes sharing the store (the database of this run, and/or Redis), end at 200."""
    from concurrent.futures import ThreadPoolExecutor

    env = {
        "REDIS_URL": os.environ.get("SESAME_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
        "SESSION_CACHE_KEY_PREFIX": f"sesame-interop-{secrets.token_hex(6)}:",
    }
    request.addfinalizer(lambda: _redis_delete_prefix(env["REDIS_URL"], ":1:" + env["SESSION_CACHE_KEY_PREFIX"]))
    a = sesame_factory(engine=engine, extra_env=env)
    b = sesame_factory(engine=engine, extra_env=env)
    r = a.get("/counter/")
    assert_text(r, "1")
    key = new_session_key(r)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda i: (a if i % 2 else b).get("/counter/", key=key), range(199)))
    assert all(r.status_code == 200 for r in results), [r.status_code for r in results]
    assert sorted(int(r.text) for r in results) == list(range(2, 201)), "every increment saw a distinct value"
    assert_text(b.get("/counter/", key=key), "201")
    # Data saved through one is read through the other, and so is its removal.
    assert_text(a.get("/save-session-data/", key=key), "Session Data Saved")
    assert_text(b.get("/access-session-data/", key=key), TUTORIAL_TEXT)
    assert_text(b.get("/delete-session-data/", key=key), "Session Data cleared")
    assert_text(a.get("/access-session-data/", key=key), NO_DATA)


@pytest.mark.skipif(USE_PG, reason="the swap is SQLite's")
def test_i_clearsessions_swap_leaves_djangos_own_table(db):
    """`sesame clearsessions` on a Django-migrated table that is nearly all expired (100,000
    expired rows, 3 live) swaps it for a new one: the schema is exactly what Django's migrate
    made, Django loads its live sessions, and Django's own clearsessions finds nothing left."""
    db.migrate()
    before = db.schema()
    live = [django_write({"n": i}) for i in range(3)]
    con = sqlite3.connect(db.path)
    con.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
        "INSERT INTO django_session SELECT lower(hex(randomblob(16))), 'x', '2020-01-01 00:00:00' FROM c"
    )
    con.commit()
    root = "SELECT rootpage FROM sqlite_master WHERE name = 'django_session'"
    root_before = con.execute(root).fetchone()[0]
    con.close()
    env = {**os.environ, "DATABASE_URL": f"sqlite:{db.path}", "SECRET_KEY": DEFAULT_SECRET}
    env.pop("SESSION_CLEAR_EXPIRED_SWAP", None)
    r = subprocess.run([CLI, "clearsessions"], cwd=db.tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Deleted 100000 expired sessions"), r.stdout
    con = sqlite3.connect(db.path)
    try:
        assert con.execute(root).fetchone()[0] != root_before, "a new table (a swap), not deletes in place"
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    assert db.schema() == before
    assert [django_load(k) for k in live] == [{"n": 0}, {"n": 1}, {"n": 2}]
    call_command("clearsessions")
    connection.close()
    assert db.count() == 3
