"""Time Django 5.2's session encode/decode on the same 231-byte session as
crates/sesame/benches/codec.rs. Run with the interop venv: .venv/bin/python bench/django_codec.py"""
import timeit

from django.conf import settings

settings.configure(SECRET_KEY="bench-secret-key-bench-secret-key-bench-secret-key", USE_TZ=True)
import django  # noqa: E402

django.setup()
from django.contrib.sessions.backends.base import SessionBase  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402
import json  # noqa: E402

data = {
    "id": 1, "name": "root", "password": "rootpass", "testcookie": "worked", "_session_expiry": 300,
    "_messages": '[["__json_message", 0, 40, "Error wrong username/password", ""]]',
    "cart": {"items": ["apple", "pear"], "total": 3.5}, "visits": 12,
}
store = SessionStore()
encoded = store.encode(data)
print(f"session JSON: {len(json.dumps(data, separators=(',', ':')))} bytes; encoded: {len(encoded)} bytes")
for name, fn in [("encode", lambda: store.encode(data)), ("decode", lambda: store.decode(encoded)),
                 ("key", lambda: get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789"))]:
    n = 20000
    best = min(timeit.repeat(fn, number=n, repeat=5)) / n
    print(f"django {name}: {best * 1e6:.2f} µs")
