#!/usr/bin/env python3
"""Reference implementation of Sesame's `tutorial` example, in real Django.

Same command line and environment as the Rust example, so the interop tests can
be pointed at it to check the tests themselves against Django's own behaviour:

    SESAME_TUTORIAL_BIN=tests/django/reference_tutorial.py \
        .venv/bin/python -m pytest tests/django -q

(The shebang is rewritten by nothing: run via a venv whose python has Django, e.g.
it re-executes itself with <repo>/.venv/bin/python when Django is missing.)
"""

import argparse
import os
import sys
import threading
from socketserver import ThreadingMixIn
from urllib.parse import unquote, urlparse
from wsgiref.simple_server import WSGIServer, make_server, WSGIRequestHandler

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

try:
    import django  # noqa: F401
except ImportError:  # re-exec under the project venv
    venv_py = os.path.join(ROOT, ".venv", "bin", "python")
    os.execv(venv_py, [venv_py, os.path.abspath(__file__), *sys.argv[1:]])


def database_from_url(url):
    if url.startswith(("postgres://", "postgresql://")):
        u = urlparse(url)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(u.path.lstrip("/")),
            "HOST": u.hostname or "127.0.0.1",
            "PORT": str(u.port or 5432),
            "USER": unquote(u.username or "postgres"),
            "PASSWORD": unquote(u.password or ""),
        }
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
    elif url.startswith("sqlite:"):
        path = url[len("sqlite:"):]
    else:
        raise SystemExit(f"unsupported DATABASE_URL {url!r}")
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": path.split("?", 1)[0]}


def configure():
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ["SECRET_KEY"],
        SECRET_KEY_FALLBACKS=[k for k in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if k],
        USE_TZ=True,
        TIME_ZONE="UTC",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        DATABASES={"default": database_from_url(os.environ["DATABASE_URL"])},
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        SESSION_ENGINE="django.contrib.sessions.backends.db",
    )
    django.setup()


def text(s):
    from django.http import HttpResponse

    return HttpResponse(s, content_type="text/plain; charset=utf-8")


def plain(request):
    return text("ok")


def test_session(request):
    request.session.set_test_cookie()
    return text("Testing session cookie")


def test_delete(request):
    if request.session.test_cookie_worked():
        request.session.delete_test_cookie()
        return text("Cookie test passed")
    return text("Cookie test failed")


def save_session_data(request):
    request.session["id"] = 1
    request.session["name"] = "root"
    request.session["password"] = "rootpass"
    return text("Session Data Saved")


def access_session_data(request):
    out = ""
    if "id" in request.session:
        out += f"Id : {request.session['id']} <br>"
    if "name" in request.session:
        out += f"Name : {request.session['name']} <br>"
    if "password" in request.session:
        out += f"Password : {request.session['password']} <br>"
    return text(out or "No session data")


def delete_session_data(request):
    for k in ("id", "name", "password"):
        if k in request.session:
            del request.session[k]
    return text("Session Data cleared")


def counter(request):
    n = request.session.get("count", 0) + 1
    request.session["count"] = n
    return text(str(n))


def _urls():
    from django.urls import path

    return [
        path("plain/", plain),
        path("test-session/", test_session),
        path("test-delete/", test_delete),
        path("save-session-data/", save_session_data),
        path("access-session-data/", access_session_data),
        path("delete-session-data/", delete_session_data),
        path("counter/", counter),
    ]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *a):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:8000")
    args = ap.parse_args()
    configure()
    global urlpatterns
    urlpatterns = _urls()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    with connection.cursor() as c:
        have = "django_session" in connection.introspection.table_names(c)
    if not have:
        call_command("migrate", "sessions", verbosity=0)
    connection.close()
    host, port = args.addr.rsplit(":", 1)
    srv = make_server(host, int(port), get_wsgi_application(), server_class=_Server, handler_class=_Quiet)
    print(f"reference tutorial listening on {args.addr}", flush=True)
    srv.serve_forever()


urlpatterns = []

if __name__ == "__main__":
    main()
