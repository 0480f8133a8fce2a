#!/usr/bin/env bash
# One entry point for a fresh machine (Python 3.11 and gcc, nothing else):
#   ./dev.sh train [ARGS...]   set up .venv, then train on the bundled GMB corpus (ner-fast train ARGS,
#                              default: --out runs/gmb)
#   ./dev.sh test  [ARGS...]   set up .venv, then run the whole test suite (pytest ARGS)
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

cmd=${1:-help}
shift || true
case "$cmd" in
    setup) setup ;;
    train)
        setup
        # With no arguments: the bundled GMB corpus, sequential 80/20 split, into runs/gmb.
        [ $# -gt 0 ] || set -- --out runs/gmb
        exec .venv/bin/ner-fast train "$@" ;;
    test)  setup; exec .venv/bin/python -m pytest "$@" ;;
    *) echo "usage: ./dev.sh {train|test|setup} [ARGS...]" >&2; exit 2 ;;
esac
