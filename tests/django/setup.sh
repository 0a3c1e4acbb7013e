#!/usr/bin/env bash
# Idempotent setup of the Python venv used for Django interop tests.
# Creates /work/main/.venv (relative to the repo root) and installs real Django 5.2
# from PyPI plus the test tooling. Fast no-op when already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SESAME_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

check() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'PY' 2>/dev/null
import django, pytest, requests, psycopg
assert django.VERSION[:2] == (5, 2), django.VERSION
PY
}

if check; then
  echo "setup.sh: venv at $VENV already has Django $("$VENV/bin/python" -c 'import django; print(django.get_version())')"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check -q \
  'Django>=5.2,<5.3' pytest requests 'psycopg[binary]'
check
echo "setup.sh: installed Django $("$VENV/bin/python" -c 'import django; print(django.get_version())') into $VENV"
