"""`./dev.sh test-isa` and `.ci/run`. `./dev.sh build-model [ensemble] --from` checks its arguments before `setup`
(which refreshes .venv: seconds to minutes): a wrong call is its usage line or one line naming the
missing folder, exit 2, and nothing set up.

dev.sh runs from its own folder, so a copy of it runs in a temporary folder whose `.venv/bin/python`
only records that it was called (and fails, as a broken setup would).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DEV_SH = Path(__file__).resolve().parents[1] / "dev.sh"


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    """A folder holding a copy of dev.sh, a `.venv/bin/python` that logs its calls, and one finished-looking run."""
    (tmp_path / "dev.sh").write_bytes(DEV_SH.read_bytes())
    (tmp_path / "dev.sh").chmod(0o755)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "ner-fast"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/calls.log"\nexit 1\n')
        (bin_dir / name).chmod(0o755)
    (tmp_path / "runs" / "a").mkdir(parents=True)
    return tmp_path


def build_model(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(checkout / "dev.sh"), "build-model", *args], capture_output=True, text=True, timeout=60)


# What a wrong count of runs after `--from` answers: the usage line of that build (the default takes one
# run, the ensemble two).
USAGE = {"": "usage: ./dev.sh build-model [--from RUN_DIR |", "ensemble": "usage: ./dev.sh build-model ensemble [--from RUN_DIR RUN_DIR2 |"}


@pytest.mark.parametrize(("args", "usage"), [
    (["--from"], ""), (["--from", "runs/a", "runs/a"], ""),
    (["ensemble", "--from", "runs/a"], "ensemble"), (["ensemble", "--from", "runs/a", "runs/a", "runs/a"], "ensemble"),
    (["ensemble", "--from"], "ensemble"),
])
def test_a_wrong_count_of_runs_is_the_usage_line_before_any_setup(checkout: Path, args: list[str], usage: str) -> None:
    done = build_model(checkout, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(USAGE[usage]) and len(done.stderr.splitlines()) == 1, done.stderr
    assert not (checkout / "calls.log").exists()  # .venv untouched: no pip, no training, no export


def test_a_missing_run_folder_is_named_before_any_setup(checkout: Path) -> None:
    for args, missing in ((["ensemble", "--from", "runs/a", "runs/b"], "runs/b"),
                          (["ensemble", "--from", "runs/nope", "runs/a"], "runs/nope"), (["--from", "runs/nope"], "runs/nope")):
        done = build_model(checkout, *args)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.splitlines()) == 1 and f"{missing}: no such folder" in done.stderr, done.stderr
        assert not (checkout / "calls.log").exists()


@pytest.mark.parametrize("name", ["robust", "Ensemble", "runs/a"])
def test_an_unknown_package_name_is_one_line_before_any_setup(checkout: Path, name: str) -> None:
    # `robust` named the one network before it became the default: say what builds it now.
    done = build_model(checkout, name, "--from", "runs/a")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and f"no bundled package {name} " in done.stderr, done.stderr
    assert "default" in done.stderr and "ensemble" in done.stderr
    assert not (checkout / "calls.log").exists()


@pytest.mark.parametrize("args", [["--from", "runs/a"], ["default", "--from", "runs/a"], ["ensemble", "--from", "runs/a", "runs/b"]])
def test_existing_runs_go_on_to_setup(checkout: Path, args: list[str]) -> None:
    # The check lets a good call through: setup starts (here the logging python fails it at once).
    (checkout / "runs" / "b").mkdir()
    done = build_model(checkout, *args)
    assert done.returncode == 1
    assert (checkout / "calls.log").read_text().startswith("python -m pip install")


@pytest.mark.parametrize("view", [True, False])
@pytest.mark.parametrize("code", [0, 1, 5])
def test_test_isa_runs_the_numeric_tests_as_an_avx2_cpu_and_fails_on_no_tests(checkout: Path, code: int, view: bool) -> None:
    """`./dev.sh test-isa`: pytest -m numeric with DNNL_MAX_CPU_ISA=AVX2 and 1, then 2, OpenMP threads, then,
    where `benchmarks/cpuid_view.py --can-run` says so, once more inside the CPUID view; no set-up where .venv
    exists; a failure, or pytest's exit 5 (no test selected), is the command's exit."""
    python = checkout / ".venv" / "bin" / "python"
    python.write_text(f"""#!/bin/sh
if [ "$1 $2" = "benchmarks/cpuid_view.py --can-run" ]; then echo can-run >> "{checkout}/calls.log"; exit {0 if view else 1}; fi
echo "${{DNNL_MAX_CPU_ISA:-none}} $OMP_NUM_THREADS $*" >> "{checkout}/calls.log"
exit {code}
""")
    done = subprocess.run(["bash", str(checkout / "dev.sh"), "test-isa", "-x"], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k not in ("DNNL_MAX_CPU_ISA", "OMP_NUM_THREADS")})
    assert done.returncode == code, done.stderr
    calls = (checkout / "calls.log").read_text().splitlines()
    numeric = "-m pytest -m numeric -q -p no:cacheprovider -x"
    expected = [f"AVX2 {threads} {numeric}" for threads in (1, 2)]
    if code:
        assert calls == expected[:1]
    else:
        in_view = [f"none 2 benchmarks/cpuid_view.py -- .venv/bin/python {numeric}"] if view else []
        assert calls == [*expected, "can-run", *in_view]


def test_ci_runs_the_readme_test_command_then_test_isa() -> None:
    lines = [line.strip() for line in (DEV_SH.parent / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in lines if line.startswith("./dev.sh")]
    assert commands == ["./dev.sh test", "./dev.sh test-isa"] and "set -euo pipefail" in lines


@pytest.mark.parametrize("asked", [[], ["help"], ["--help"]])
def test_help_lists_every_command_and_an_unknown_one_is_the_usage_line(checkout: Path, asked: list[str]) -> None:
    # `./dev.sh help` (and `./dev.sh` alone) printed the usage line to stderr and exited 2.
    shown = subprocess.run(["bash", str(checkout / "dev.sh"), *asked], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stderr == ""
    for command in ("train", "test", "build-model", "build-model ensemble", "test-isa", "setup", "help"):
        assert f"  ./dev.sh {command} " in shown.stdout, shown.stdout
    assert not shown.stdout.startswith("#") and "set -euo" not in shown.stdout
    assert not (checkout / "calls.log").exists()  # nothing set up
    # From another folder, by a relative path (dev.sh changes to its own folder first: it read "$0" from there).
    relative = subprocess.run(["bash", f"{checkout.name}/dev.sh", *asked], capture_output=True, text=True, timeout=60,
                              cwd=checkout.parent)
    assert relative.returncode == 0 and relative.stdout == shown.stdout, relative.stderr
    wrong = subprocess.run(["bash", str(checkout / "dev.sh"), "tset"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and wrong.stdout == "" and wrong.stderr.startswith("usage: ./dev.sh {train|test|")
