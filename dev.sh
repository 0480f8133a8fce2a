#!/usr/bin/env bash
# One entry point for a fresh machine (Python 3.11 and gcc, nothing else):
#   ./dev.sh train [ARGS...]   set up .venv, then train on the bundled GMB corpus (ner-fast train ARGS,
#                              default: --out runs/gmb)
#   ./dev.sh test  [ARGS...]   set up .venv (and, as root, chromium for the page test and qemu-user for the
#                              emulated AVX2-only CPU test), then run the whole test suite (pytest ARGS)
#   ./dev.sh build-model [default] [--from RUN_DIR | TRAIN ARGS...]
#                              set up .venv (its test extra holds the `vectors` extra: GloVe 6B 50d), train
#                              the one distilled network into runs/default-model (ner-fast train --vectors
#                              glove-6b-50d --recase 0.5 --teacher ensemble --distill-target marginals
#                              --distill-weight 0.7 --distill-temperature 1 --hidden 200 --epochs 16
#                              --patience 3 TRAIN ARGS; skipped with --from, a finished run), then export it
#                              as the bundled package src/ner_fast/models/default/ (int8, every word kept: its
#                              GloVe words never occur in training), with its validation F1, measured through
#                              the tagger, and its provenance in model.json (docs/TRAINING.md, "One distilled
#                              network, robust to casing")
#   ./dev.sh build-model ensemble [--from RUN_DIR RUN_DIR2 | TRAIN ARGS...]
#                              set up .venv, train the two members of the ensemble, the default package's
#                              teacher: runs/ensemble-a (ner-fast train --epochs 12 --patience 2 TRAIN ARGS,
#                              the default recipe) and runs/ensemble-b (the same with --filter-widths 2,3,4
#                              --filters 50); skipped with --from (finished runs); then export them as one
#                              int8 ensemble, the second bundled package src/ner_fast/models/ensemble/, words
#                              seen once in training dropped (docs/TRAINING.md, "The POS-free model and the
#                              bundled package")
#   ./dev.sh test-isa [ARGS...] set up .venv if missing, then run the numeric tests (pytest -m numeric ARGS) as an AVX2
#                              CPU would, twice: DNNL_MAX_CPU_ISA=AVX2 (oneDNN's kernels for AVX2) with
#                              OMP_NUM_THREADS=1, then 2. Their tolerances are derived from the precision of what
#                              they compare (tests/helpers.py float_tol), so they must pass on any x86-64 CPU;
#                              then, where the CPU allows (benchmarks/cpuid_view.py --can-run), once more with
#                              CPUID answering as an AVX2-only CPU, so that onnxruntime too runs its AVX2 kernels.
#                              .ci/run runs this after the whole suite. No test selected fails (pytest exit 5).
#   ./dev.sh setup             only create/refresh .venv
#   ./dev.sh help              this text (on stdout, exit 0; an unknown command: the usage line, exit 2)
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

test_tools() {
    # Two tests need Debian programs: the page test (tests/serve/test_page.py) drives chromium through its
    # chromedriver, and tests/test_emulated_cpu.py runs the tagger under qemu-x86_64 (package qemu-user) as an
    # AVX2-only CPU. Install those missing when this shell may (root with apt-get, as in CI); otherwise the
    # tests that need them are skipped (in CI they fail).
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    command -v qemu-x86_64 >/dev/null 2>&1 || missing+=(qemu-user)
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "dev.sh: installing ${missing[*]} for the tests that need them" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
            || echo "dev.sh: could not install ${missing[*]}; their tests will fail in CI and be skipped elsewhere" >&2
    else
        echo "dev.sh: ${missing[*]} missing and not root: the tests that need them will be skipped" >&2
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
    test)  setup; test_tools; exec .venv/bin/python -m pytest "$@" ;;
    test-isa)
        # Set up only where there is no .venv yet: .ci/run calls this right after `./dev.sh test` set up.
        [ -x .venv/bin/python ] || setup
        for threads in 1 2; do
            echo "dev.sh test-isa: numeric tests with DNNL_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=$threads" >&2
            # set -e: any failure, and pytest's exit 5 (no test selected), ends the script with that code.
            DNNL_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=$threads .venv/bin/python -m pytest -m numeric -q -p no:cacheprovider "$@"
        done
        # DNNL_MAX_CPU_ISA reaches oneDNN only; onnxruntime picks its kernels from CPUID. Where CPUID can be made
        # to answer as an AVX2-only CPU (benchmarks/cpuid_view.py: CPUs that fault on CPUID and have AVX-512 to
        # hide), the same tests run once more with every library on its AVX2 kernels.
        if .venv/bin/python benchmarks/cpuid_view.py --can-run; then
            echo "dev.sh test-isa: numeric tests as an AVX2-only CPU (benchmarks/cpuid_view.py) OMP_NUM_THREADS=2" >&2
            OMP_NUM_THREADS=2 .venv/bin/python benchmarks/cpuid_view.py -- .venv/bin/python -m pytest -m numeric -q -p no:cacheprovider "$@"
        fi ;;
    build-model)
        command="./dev.sh build-model${*:+ $*}"
        # A word first is a package's name: `ensemble`, or `default`/none for the default (`robust` was the one
        # network until it became the default on 2026-12-06). Any other is refused before setup, as a wrong --from is.
        case "${1:-}" in
            default) shift ;;
            ensemble|--*|"") ;;
            *) echo "dev.sh build-model: no bundled package $1 (the bundled ones: default, built by ./dev.sh build-model [--from RUN_DIR | TRAIN ARGS...], the distilled network once named robust; ensemble, by ./dev.sh build-model ensemble [...])" >&2; exit 2 ;;
        esac
        if [ "${1:-}" = "ensemble" ]; then
            shift
            if [ "${1:-}" = "--from" ]; then
                # Arguments checked before setup (which takes a while): a wrong call fails at once.
                [ $# -eq 3 ] || { echo "usage: ./dev.sh build-model ensemble [--from RUN_DIR RUN_DIR2 | TRAIN ARGS...]" >&2; exit 2; }
                for dir in "$2" "$3"; do
                    [ -d "$dir" ] || { echo "dev.sh build-model: $dir: no such folder (--from takes two training runs, relative to $PWD)" >&2; exit 2; }
                done
                run=$2
                run_b=$3
                setup
            else
                setup
                run=runs/ensemble-a
                run_b=runs/ensemble-b
                # The default (tuned) recipe: no POS input (callers have none), POS as an auxiliary output
                # head instead, the parameters' moving average validated and kept; the second member differs
                # only in its character CNN (docs/TRAINING.md, "The POS-free model and the bundled package").
                .venv/bin/ner-fast train --out "$run" --epochs 12 --patience 2 --no-progress "$@"
                .venv/bin/ner-fast train --out "$run_b" --filter-widths 2,3,4 --filters 50 --epochs 12 --patience 2 --no-progress "$@"
            fi
            exec .venv/bin/python -m ner_fast.training.bundle "$run" --ensemble "$run_b" --min-word-count 2 \
                --out src/ner_fast/models/ensemble --command "$command"
        fi
        if [ "${1:-}" = "--from" ]; then
            # Checked before setup, as for the ensemble.
            [ $# -eq 2 ] || { echo "usage: ./dev.sh build-model [--from RUN_DIR | TRAIN ARGS...]" >&2; exit 2; }
            [ -d "$2" ] || { echo "dev.sh build-model: $2: no such folder (--from takes one training run, relative to $PWD)" >&2; exit 2; }
            run=$2
            setup
        else
            setup
            run=runs/default-model
            # docs/TRAINING.md, "One distilled network, robust to casing": GloVe rows, re-cased copies of half
            # the sentences, distilled from the bundled ensemble's CRF marginals, hidden 200.
            .venv/bin/ner-fast train --out "$run" --vectors glove-6b-50d --recase 0.5 --teacher ensemble \
                --distill-target marginals --distill-weight 0.7 --distill-temperature 1 --hidden 200 \
                --epochs 16 --patience 3 --no-progress "$@"
        fi
        # --min-word-count 1: the vector words are never counted in training, 2 would drop them all.
        exec .venv/bin/python -m ner_fast.training.bundle "$run" --min-word-count 1 --out src/ner_fast/models/default \
            --command "$command" ;;
    help|-h|--help)  # the commands, as the comment at the top of this file says them
        sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$(basename "$0")" ;;  # (the cd above made it ./dev.sh)
    *) echo "usage: ./dev.sh {train|test|test-isa|setup|build-model|help} [ARGS...]" >&2; exit 2 ;;
esac
