"""Run a command as an AVX2-only CPU would: CPUID without AVX-512, VNNI or AMX (`cpuid_view.c`).

    python benchmarks/cpuid_view.py --check                      # what NumPy and ner_fast.machine see in it
    python benchmarks/cpuid_view.py --can-run                    # exit 0 where it runs and has AVX-512 to hide
    python benchmarks/cpuid_view.py -- python benchmarks/front.py --package default=default ...

The development CPU has AVX-512, VNNI and AMX; issue 19 asks for speed on an AVX2-only CPU too (an AMD EPYC),
and int8 ran 0.30x as fast there (issue 18: the ensemble's `int8-dynamic` graph). Where none is at hand,
this runs the command with `cpuid_view.c` preloaded: every library that picks its kernels from CPUID (onnxruntime's MLAS, oneDNN in MXNet, NumPy)
runs its AVX2 code, natively. What it measures is those kernels on this CPU's cores, caches and memory,
not an EPYC's: a stand-in for ratios between systems run under it (the tagger against the CRF, one package
against another), not for absolute speed. A benchmark's JSON says so: `ner_fast.machine.cpu_info` reports
`cpuid_view` and the flags the kernels saw.

It needs Linux on x86-64, a C compiler (`cc`) and a CPU that can fault on CPUID (`cpuid_fault` in
/proc/cpuinfo: recent Intel CPUs, and their virtual machines); `unsupported()` says what is missing. The
library is built once per version of its source into a folder of the temporary folder that only its user
may write (`build_folder`): whatever stands in the shared temporary folder is preloaded into every process.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

SOURCE = Path(__file__).with_name("cpuid_view.c")


@functools.lru_cache(maxsize=None)
def unsupported() -> str | None:
    """Why this machine cannot run the view, or None when it can: the platform, a C compiler, the CPU's
    `cpuid_fault`, then a trial (a Python process started in the view), since a kernel or a seccomp filter
    may still refuse CPUID faulting to a process where /proc/cpuinfo lists it."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"the CPUID view needs Linux on x86-64 (this is {sys.platform} on {platform.machine()})"
    if shutil.which("cc") is None:
        return "the CPUID view needs a C compiler: cc not found"
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        flags = []
    if "cpuid_fault" not in flags:
        return "this CPU cannot fault on CPUID (no cpuid_fault in /proc/cpuinfo), so the CPUID view cannot run"
    try:
        env = _preloading(_build(), os.environ)
    except RuntimeError as error:
        return str(error)
    trial = subprocess.run([sys.executable, "-c", ""], env=env, capture_output=True, text=True)
    if trial.returncode != 0:
        return f"the CPUID view did not start here: {trial.stderr.strip() or f'exit {trial.returncode}'}"
    return None


def nothing_to_hide() -> str | None:
    """Why the view would change nothing here (the CPU has no AVX-512: it is an AVX2 CPU already), or None."""
    from ner_fast.machine import cpu_info

    return None if cpu_info()["flags"]["avx512f"] else "this CPU has no AVX-512: its kernels are the AVX2 ones already"


def cannot_use() -> str | None:
    """Why running in the view would not test or measure anything here (it cannot run, or there is nothing
    to hide), or None: what `--can-run` (./dev.sh test-isa) and the tests that use the view ask."""
    return unsupported() or nothing_to_hide()


def library_name() -> str:
    """The compiled view's file name: one per version of its source."""
    return f"ner-fast-cpuid-view-{hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]}.so"


def build_folder() -> Path:
    """This user's folder for the compiled view in the temporary folder: created private (0700), and refused
    when another user owns it or others may write to it, since a library planted there would run in every
    process started in the view. Raises RuntimeError."""
    folder = Path(tempfile.gettempdir()) / f"ner-fast-cpuid-view-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        status = os.lstat(folder)
    except OSError as error:
        raise RuntimeError(f"cannot create {folder} for the CPUID view: {error.strerror}") from error
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o022:
        raise RuntimeError(f"{folder} is not a folder of this user's that only it may write: remove it, or set TMPDIR")
    return folder


def library() -> Path:
    """The compiled view, built when its source changed. Raises RuntimeError when the view cannot run here."""
    why = unsupported()
    if why:
        raise RuntimeError(why)
    return _build()


def _build() -> Path:
    """The compiled view (written then renamed: concurrent builds are safe). Raises RuntimeError."""
    built = build_folder() / library_name()
    if not built.exists():
        fd, partial = tempfile.mkstemp(suffix=".so", dir=built.parent)
        os.close(fd)
        try:
            compiled = subprocess.run(["cc", "-O2", "-Wall", "-shared", "-fPIC", "-o", partial, str(SOURCE), "-ldl"],
                                      capture_output=True, text=True)
            if compiled.returncode != 0:
                raise RuntimeError(f"cc could not build {SOURCE.name}: {compiled.stderr.strip()}")
            os.replace(partial, built)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return built


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the view preloaded for the processes started with it."""
    return _preloading(library(), os.environ if base is None else base)


def _preloading(lib: Path, base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env["LD_PRELOAD"] = " ".join(filter(None, [str(lib), env.get("LD_PRELOAD", "")]))
    return env


CHECK = """
import ctypes, json
from numpy.core._multiarray_umath import __cpu_features__ as numpy_sees
import onnxruntime
from ner_fast.machine import cpu_info
calls = ctypes.CDLL(None).cpuid_view_calls
calls.restype = ctypes.c_long
print(json.dumps({"numpy": {k: bool(numpy_sees.get(k)) for k in ("AVX2", "FMA3", "AVX512F", "AVX512_SKX")},
                  "cpuid_answered": calls(), "cpu_info": cpu_info()}, indent=1))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="print what a Python process sees in the view")
    parser.add_argument("--can-run", action="store_true",
                        help="exit 0 where the view runs and hides something, else say why and exit 1 (./dev.sh test-isa)")
    parser.add_argument("command", nargs="*", help="the command to run in the view (after --)")
    args = parser.parse_args(argv)
    if args.can_run:
        why = cannot_use()
        print(f"cpuid_view: {why}" if why else "cpuid_view: can run here", file=sys.stderr)
        return 1 if why else 0
    why = unsupported()
    if why:
        print(f"cpuid_view: {why}", file=sys.stderr)
        return 2
    if not args.check and not args.command:
        parser.error("give a command after --, or --check")
    try:
        env = environment()
    except RuntimeError as error:
        print(f"cpuid_view: {error}", file=sys.stderr)
        return 2
    if args.check:
        return subprocess.run([sys.executable, "-c", CHECK], env=env).returncode
    try:
        os.execvpe(args.command[0], args.command, env)
    except OSError as error:
        print(f"cpuid_view: cannot run {args.command[0]}: {error.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
