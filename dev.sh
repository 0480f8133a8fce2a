#!/usr/bin/env bash
# One entry point for a fresh machine (Python 3.11 and gcc, nothing else):
#   ./dev.sh train [ARGS...]   set up .venv, then train on the bundled GMB corpus (ner-fast train ARGS,
#                              default: --out runs/gmb)
#   ./dev.sh test  [ARGS...]   set up .venv (and, as root, chromium for the page test), then run the whole
#                              test suite (pytest ARGS)
#   ./dev.sh setup             only create/refresh .venv
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

setup() {
    if [ ! -x .venv/bin/python ]; then
        "$PY" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
    # Editable install: compiles the Cython kernels in cython/ into src/ner_fast/.
    .venv/bin/python -m pip install --quiet -e ".[test]"
}

browser() {
    # The page test (tests/serve/test_page.py) drives Debian's chromium through its chromedriver: install
    # both when missing and this shell may (root with apt-get, as in CI); otherwise that test is skipped.
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "dev.sh: installing chromium and chromium-driver for the page test" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
            || echo "dev.sh: could not install chromium; the page test will fail in CI and be skipped elsewhere" >&2
    else
        echo "dev.sh: chromium or chromedriver missing and not root: the page test will be skipped" >&2
    fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
    setup) setup ;;
    train)
        setup
        # With no arguments: the bundled GMB corpus, sequential 80/20 split, into runs/gmb.
        [ $# -gt 0 ] || set -- --out runs/gmb
        exec .venv/bin/ner-fast train "$@" ;;
    test)  setup; browser; exec .venv/bin/python -m pytest "$@" ;;
    *) echo "usage: ./dev.sh {train|test|setup} [ARGS...]" >&2; exit 2 ;;
esac
