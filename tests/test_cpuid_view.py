"""`benchmarks/cpuid_view.py`: a process that sees an AVX2-only CPU through CPUID, and says so in what it records.

The view runs where the CPU can fault on CPUID and has AVX-512 to hide; elsewhere these tests are skipped
(in CI too: it depends on the hardware). What they check: libraries that read CPUID see no AVX-512 (NumPy's
feature detection, an independent reader of CPUID), `ner_fast.machine.cpu_info` records the view and the
real flags, and faults that are not CPUID still reach the program's own SIGSEGV handler, or kill the
process as they would without the view (MXNet and Python's faulthandler install handlers of their own).
"""
from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import tempfile

import pytest

from helpers import benchmark_module

cpuid_view = benchmark_module("cpuid_view")

why = cpuid_view.cannot_use()
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")


def in_view(code: str, *python_args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *python_args, "-c", code], env=cpuid_view.environment(), capture_output=True,
                          text=True, timeout=120)


def test_numpy_sees_avx2_and_no_avx512_and_cpu_info_records_the_view() -> None:
    done = in_view(
        "import json\n"
        "from numpy.core._multiarray_umath import __cpu_features__ as f\n"
        "from ner_fast.machine import cpu_info\n"
        "print(json.dumps({'numpy': {k: bool(f.get(k)) for k in ('AVX2', 'FMA3', 'AVX512F')}, 'cpu': cpu_info()}))\n")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["numpy"] == {"AVX2": True, "FMA3": True, "AVX512F": False}
    cpu = seen["cpu"]
    assert cpu["flags"] == {"avx2": True, "avx512f": False, "avx512_vnni": False, "amx": False}
    assert cpu["real_flags"]["avx512f"] is True and cpu["cpuid_view"].startswith("avx2")


def test_outside_the_view_nothing_is_hidden() -> None:
    from numpy.core._multiarray_umath import __cpu_features__ as features

    from ner_fast.machine import cpu_info

    assert features["AVX512F"] and "cpuid_view" not in cpu_info() and cpu_info()["flags"]["avx512f"]


def test_a_real_fault_reaches_the_programs_own_handler() -> None:
    done = in_view("import ctypes; ctypes.string_at(0)", "-X", "faulthandler")
    assert done.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in done.stderr


def test_a_real_fault_without_a_handler_kills_the_process_as_before() -> None:
    done = in_view("import ctypes; ctypes.string_at(0)")
    assert done.returncode == -signal.SIGSEGV and "Fatal Python error" not in done.stderr


def test_a_sigsegv_sent_by_kill_still_kills() -> None:
    # Not a fault: nothing raises it again on return, so the view must.
    done = in_view("import os, signal; os.kill(os.getpid(), signal.SIGSEGV); print('survived')")
    assert done.returncode == -signal.SIGSEGV and "survived" not in done.stdout


def test_a_stack_overflow_reaches_faulthandler_on_its_alternate_stack() -> None:
    # A stack overflow's SIGSEGV can only be handled on an alternate stack (faulthandler sets one up): the view's
    # handler, which runs first, must run there too, or the kernel kills the process without a word.
    code = "import faulthandler; faulthandler._stack_overflow()"
    outside = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], capture_output=True, text=True,
                             timeout=120)
    done = in_view(code, "-X", "faulthandler")
    assert outside.returncode == done.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in outside.stderr
    assert "Fatal Python error: Segmentation fault" in done.stderr


def test_a_thread_that_blocks_sigsegv_survives_its_next_cpuid() -> None:
    # The kernel kills a thread whose CPUID faults while SIGSEGV is blocked; other signals stay blocked.
    done = in_view(
        "import ctypes, signal\n"
        "calls = ctypes.CDLL(None).cpuid_view_calls\n"
        "calls.restype = ctypes.c_long\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGSEGV, signal.SIGUSR1])\n"
        "before = calls()\n"
        "import numpy\n"  # reads CPUID when it loads
        "print(calls() - before, sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))\n")
    assert done.returncode == 0, done.stderr
    answered, blocked = done.stdout.split(maxsplit=1)
    assert int(answered) > 0 and blocked.strip() == str([signal.SIGUSR1])


def test_a_library_planted_in_the_shared_temporary_folder_is_not_preloaded(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / cpuid_view.library_name()
    planted.write_bytes(b"anyone may write here")
    built = cpuid_view.library()
    assert built.name == planted.name and built.parent != tmp_path
    assert built.read_bytes()[:4] == b"\x7fELF" and stat.S_IMODE(built.parent.stat().st_mode) == 0o700
    (tmp_path / "others").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "others"))
    cpuid_view.build_folder().chmod(0o777)
    with pytest.raises(RuntimeError, match="only it may write"):
        cpuid_view.library()


def test_a_temporary_folder_it_cannot_write_is_one_line_and_an_exit_code(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "file"))  # not a folder: fails even for root
    assert cpuid_view.main(["--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cpuid_view: cannot create") and err.count("\n") == 1


def test_a_command_that_does_not_exist_is_one_line_and_an_exit_code(capsys) -> None:
    assert cpuid_view.main(["--", "ner-fast-no-such-command"]) == 127
    err = capsys.readouterr().err
    assert err.startswith("cpuid_view: cannot run ner-fast-no-such-command") and err.count("\n") == 1


def test_a_process_started_with_sigsegv_blocked_survives_its_first_cpuid() -> None:
    # A signal mask survives exec: block SIGSEGV here (outside the view), start a process in the view.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGSEGV})
    try:
        done = in_view("import numpy; print('started')")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    assert done.returncode == 0 and done.stdout == "started\n", done.stderr


def test_a_view_that_does_not_start_is_unsupported_with_its_reason(monkeypatch, capsys) -> None:
    """/proc/cpuinfo may list cpuid_fault where the kernel or a seccomp filter still refuses CPUID faulting:
    then the trial process exits 3 with the library's own line, and `--can-run` (./dev.sh test-isa) says no
    with that line instead of letting every process of the pass die. (The refusal cannot be made here, so
    the trial's answer is the library's, given.)"""
    real_run = subprocess.run
    refusal = "cpuid_view: this CPU or kernel cannot fault on CPUID (no cpuid_fault in /proc/cpuinfo)\n"

    def refused(command, **kwargs):  # type: ignore[no-untyped-def]
        if list(command[1:]) == ["-c", ""]:  # the trial
            return subprocess.CompletedProcess(command, 3, "", refusal)
        return real_run(command, **kwargs)

    monkeypatch.setattr(cpuid_view.subprocess, "run", refused)
    cpuid_view.unsupported.cache_clear()
    try:
        assert cpuid_view.main(["--can-run"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("cpuid_view: the CPUID view did not start here: cpuid_view: this CPU") and err.count("\n") == 1
        with pytest.raises(RuntimeError, match="did not start here"):
            cpuid_view.environment()
    finally:
        monkeypatch.undo()
        cpuid_view.unsupported.cache_clear()
    assert cpuid_view.unsupported() is None  # this machine's own trial
