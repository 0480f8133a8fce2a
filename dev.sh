#!/usr/bin/env bash
# One entry point for a fresh machine (Python 3.11 and gcc, nothing else):
#   ./dev.sh train [ARGS...]   set up .venv, then train on the bundled GMB corpus (ner-fast train ARGS,
#                              default: --out runs/gmb)
#   ./dev.sh test  [ARGS...]   set up .venv (and, as root, chromium for the page test), then run the whole
#                              test suite (pytest ARGS)
#   ./dev.sh build-model [--from RUN_DIR | TRAIN ARGS...]
#                              set up .venv, train the one network of the POS-free default model on the
#                              bundled corpus into runs/default-model: ner-fast train with GloVe 6B 50d word
#                              vectors, re-cased copies of half the training sentences, distilled from the
#                              bundled package (the two-network ensemble it replaces), LSTM hidden 150, then
#                              TRAIN ARGS (skipped with --from: a finished run); then bundle its best
#                              checkpoint as the package src/ner_fast/models/default/, every word of its
#                              vocabulary kept (the vectors' words among them), with its validation F1,
#                              measured through the tagger, and its provenance in model.json
#                              (docs/TRAINING.md, "One distilled network")
#   ./dev.sh test-isa [ARGS...] set up .venv if missing, then run the numeric tests (pytest -m numeric ARGS) as an AVX2
#                              CPU would, twice: DNNL_MAX_CPU_ISA=AVX2 (oneDNN's kernels for AVX2) with
#                              OMP_NUM_THREADS=1, then 2. Their tolerances are derived from the precision of what
#                              they compare (tests/helpers.py float_tol), so they must pass on any x86-64 CPU;
#                              .ci/run runs this after the whole suite. No test selected fails (pytest exit 5).
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
    test-isa)
        # Set up only where there is no .venv yet: .ci/run calls this right after `./dev.sh test` set up.
        [ -x .venv/bin/python ] || setup
        for threads in 1 2; do
            echo "dev.sh test-isa: numeric tests with DNNL_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=$threads" >&2
            # set -e: any failure, and pytest's exit 5 (no test selected), ends the script with that code.
            DNNL_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=$threads .venv/bin/python -m pytest -m numeric -q -p no:cacheprovider "$@"
        done ;;
    build-model)
        command="./dev.sh build-model${*:+ $*}"
        if [ "${1:-}" = "--from" ]; then
            # Arguments checked before setup (which takes a while): a wrong call fails at once.
            [ $# -eq 2 ] || { echo "usage: ./dev.sh build-model [--from RUN_DIR | TRAIN ARGS...]" >&2; exit 2; }
            [ -d "$2" ] || { echo "dev.sh build-model: $2: no such folder (--from takes a training run, relative to $PWD)" >&2; exit 2; }
            run=$2
            setup
        else
            setup
            run=runs/default-model
            # The default (tuned) recipe (no POS input, a POS head, the parameters' average validated) for one
            # network: pretrained word vectors, re-cased copies (case robustness), the bundled ensemble as the
            # teacher, hidden 150 for speed (docs/TRAINING.md, "One distilled network"). Later options win.
            .venv/bin/ner-fast train --out "$run" --vectors glove-6b-50d --recase 0.5 --teacher default \
                --distill-weight 0.5 --distill-temperature 1 --hidden 150 --epochs 14 --patience 3 --no-progress "$@"
        fi
        # Every word kept (--min-word-count 1): the vectors' words, never seen in training, are what make
        # text unlike GMB's known.
        exec .venv/bin/python -m ner_fast.training.bundle "$run" --min-word-count 1 --command "$command" ;;
    *) echo "usage: ./dev.sh {train|test|test-isa|setup|build-model} [ARGS...]" >&2; exit 2 ;;
esac
