#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, in one go and in under 8 minutes,
#   1. makes a virtual environment with the `gpu` extra (.venv-gpu beside .venv, so the CPU one is
#      left alone): mxnet-cu112 instead of mxnet, onnxruntime-gpu instead of onnxruntime (the README's
#      recipe: both install the same module, so the CPU one is removed and the GPU one reinstalled);
#   2. runs benchmarks/gpu_check.py: a few batches of `ner-fast train --context gpu:0` against the
#      same on the CPU (losses compared), the tagger on onnxruntime's CUDA provider against its CPU
#      provider (probabilities <= 1e-4 apart), tokens/s of each, then benchmarks/serve.py --device cuda
#      (ner-fast serve on the GPU, dynamic batching vs batching off under 32 clients, ~1 minute); JSON to
#      $OUT/gpu_check.json where OUT is set, else benchmarks/results/gpu_check.json (or --json FILE after --).
# MXNet 1.9.1's CUDA 11.2 wheel has no code for Hopper (sm_90): where it cannot run, the JSON says so
# with MXNet's error (mxnet.gpu.ok: false), the onnxruntime part runs all the same, and the exit code
# is 0. Exit 1: a comparison failed, onnxruntime's CUDA provider did not start, or training on the CPU
# failed; exit 2: a usage error.
#
# Usage: benchmarks/gpu_check.sh [--cpu-only] [--skip-install] [--venv DIR] [--wheels DIR] [-- OPTIONS]
#   --cpu-only      no GPU, no installs: the project's environment (--venv, default .venv) runs every
#                   step with the CPU standing in for the GPU (a dry run of the script, which the tests use)
#   --skip-install  use the GPU environment as it is (a second run)
#   --venv DIR      the GPU environment (default .venv-gpu)
#   --wheels DIR    install from this folder of wheels only (pip --no-index --find-links DIR), for a
#                   machine that cannot reach PyPI; it must hold every dependency, build tools included
#   OPTIONS         passed to benchmarks/gpu_check.py (python benchmarks/gpu_check.py --help)
# PYTHON picks the interpreter for a new environment (default python3.11, as ./dev.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

cpu_only=0 skip_install=0 venv="" wheels=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-only) cpu_only=1 ;;
        --skip-install) skip_install=1 ;;
        --venv) venv=${2:?--venv needs a folder}; shift ;;
        --wheels) wheels=${2:?--wheels needs a folder}; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1 (options of gpu_check.py go after --)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$cpu_only" = 1 ]; then
    venv=${venv:-.venv}
    [ -x "$venv/bin/python" ] || { echo "gpu_check.sh: no $venv/bin/python (./dev.sh setup makes .venv)" >&2; exit 2; }
    exec "$venv/bin/python" benchmarks/gpu_check.py --cpu-only "$@"
fi
venv=${venv:-.venv-gpu}

start=$SECONDS
if [ "$skip_install" = 0 ]; then
    py=${PYTHON:-python3.11}
    command -v "$py" >/dev/null 2>&1 || py=python3
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
    [ -z "$wheels" ] || pip+=(--no-index --find-links "$wheels")
    echo "installing the gpu extra into $venv ..."
    "${pip[@]}" --upgrade pip setuptools wheel
    "${pip[@]}" -e ".[gpu]"
    # The CPU wheels (onnxruntime, a base dependency; mxnet, where the environment had the train extra)
    # share their modules' folders with the GPU ones: remove them, then reinstall the GPU ones whole.
    ort_gpu=$("$venv/bin/python" -c "from importlib.metadata import version; print(version('onnxruntime-gpu'))")
    reinstall=("onnxruntime-gpu==$ort_gpu")
    if "$venv/bin/python" -m pip show mxnet >/dev/null 2>&1; then
        reinstall+=("mxnet-cu112==1.9.1")
        "$venv/bin/python" -m pip uninstall --quiet -y mxnet
    fi
    "$venv/bin/python" -m pip uninstall --quiet -y onnxruntime
    "${pip[@]}" --force-reinstall --no-deps "${reinstall[@]}"
    echo "installed in $((SECONDS - start)) s"
fi
[ -x "$venv/bin/python" ] || { echo "gpu_check.sh: no environment in $venv (run without --skip-install)" >&2; exit 2; }
"$venv/bin/python" benchmarks/gpu_check.py "$@" && status=0 || status=$?
echo "gpu_check.sh: $((SECONDS - start)) s in all"
exit "$status"
