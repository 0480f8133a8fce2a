"""Every benchmark's JSON names the machine that measured it (issue 18): `benchmarks/_machine.py` reads
the CPU model, flags and cores, and each benchmark writes its JSON through its `write_json`."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

spec = importlib.util.spec_from_file_location("_machine", BENCHMARKS / "_machine.py")
assert spec and spec.loader
machine = importlib.util.module_from_spec(spec)
spec.loader.exec_module(machine)

# Two processors of an AVX2-only AMD EPYC (no AVX-512, no AMX), as /proc/cpuinfo writes them (abridged).
EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni
"""
XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480C
flags\t\t: fpu sse2 avx avx2 avx512f avx512dq avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""


def test_cpu_info_reads_model_and_flags_from_cpuinfo() -> None:
    amd = machine.cpu_info(EPYC)
    assert amd["model"] == "AMD EPYC 7B13"
    assert amd["flags"] == {"avx2": True, "avx512f": False, "avx512_vnni": False, "amx": False}
    intel = machine.cpu_info(XEON)
    assert intel["model"] == "Intel(R) Xeon(R) Platinum 8480C"
    assert intel["flags"] == {"avx2": True, "avx512f": True, "avx512_vnni": True, "amx": True}
    assert isinstance(amd["cores"], int) and amd["cores"] >= 1
    assert machine.cpu_info("")["flags"] == dict.fromkeys(machine.FLAGS, False)  # no /proc/cpuinfo: no flag claimed


def test_write_json_adds_the_cpu(tmp_path: Path) -> None:
    machine.write_json(tmp_path / "r.json", {"tokens_per_s": 1.0})
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["tokens_per_s"] == 1.0 and set(doc["cpu"]["flags"]) == set(machine.FLAGS) and doc["cpu"]["model"]


def test_write_json_takes_settings_holding_paths(tmp_path: Path) -> None:
    # `vars(args)` of `--package NAME=DIR` holds (name, Path) pairs, at any depth: written as strings.
    settings = {"out": Path("runs/front"), "package": [("default", Path("/pkg/default"))], "n": 3}
    machine.write_json(tmp_path / "r.json", {"settings": settings})
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["settings"] == {"out": "runs/front", "package": [["default", "/pkg/default"]], "n": 3}


def test_every_benchmark_writes_its_json_through_write_json() -> None:
    # Each benchmark script calls `write_json` from `_machine` and writes no result JSON any other way (json.dump,
    # atomic_write_json, write_text(json.dumps(...))), so no result can lack the CPU.
    # cpuid_view.py measures nothing: it runs a benchmark as an AVX2-only CPU, and that benchmark writes the JSON.
    scripts = sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in ("_machine.py", "cpuid_view.py"))
    assert len(scripts) >= 9
    for path in scripts:
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
        names = [c.func.attr if isinstance(c.func, ast.Attribute) else getattr(c.func, "id", "") for c in calls]
        imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "_machine"]
        assert imports and "write_json" in names, f"{path.name}: its JSON does not go through _machine.write_json"
        assert "dump" not in names, f"{path.name} writes JSON around _machine"
        for call in calls:
            if getattr(call.func, "id", "") == "atomic_write_json":  # only a model's config.json, not a result
                assert "config.json" in ast.unparse(call.args[0]), f"{path.name} writes JSON around _machine"
            if isinstance(call.func, ast.Attribute) and call.func.attr == "write_text" and call.args:
                inner = call.args[0]
                text = ast.unparse(inner)
                assert "json.dumps" not in text, f"{path.name} writes JSON around _machine: {text}"


def test_every_kept_result_names_its_cpu() -> None:
    # The rule holds for the results kept in the repository too, those from before `_machine.py` included (their
    # CPU added from the docs' record, a flag not recorded then being null, and said so under "recorded").
    results = sorted((BENCHMARKS / "results").glob("*.json"))
    assert len(results) >= 20
    for path in results:
        cpu = json.loads(path.read_text()).get("cpu")
        assert isinstance(cpu, dict) and isinstance(cpu.get("model"), str) and cpu["model"], path.name
        assert isinstance(cpu.get("cores"), int) and cpu["cores"] >= 1, path.name
        flags = cpu.get("flags")
        assert isinstance(flags, dict) and set(machine.FLAGS) <= set(flags), path.name
        assert all(flags[f] in (True, False, None) for f in machine.FLAGS), path.name
        assert None not in [flags[f] for f in machine.FLAGS] or "recorded" in cpu, path.name


def test_benchmark_shell_scripts_write_json_only_through_write_json() -> None:
    # train_before_after.sh writes its result from an embedded Python part; gpu_check.sh runs gpu_check.py.
    scripts = sorted(BENCHMARKS.glob("*.sh"))
    assert scripts
    for path in scripts:
        text = path.read_text()
        assert "json.dump(" not in text, f"{path.name} writes JSON around _machine"
        if "<<'PY'" in text:  # a Python part that writes the result
            assert "from _machine import write_json" in text and "write_json(" in text, path.name


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_a_process_in_the_view_records_the_flags_the_view_says_it_hides(tmp_path: Path) -> None:
    # The flags the CPUID view hides have one home, benchmarks/cpuid_view.c, which exports them as
    # `cpuid_view_hidden_flags`. A stand-in library exporting only that symbol (it hides avx2 here, which every
    # CPU this project runs on has) checks the recording side on any CPU, CPUID faulting or not.
    stub = tmp_path / "stub.c"
    stub.write_text('const char *cpuid_view_hidden_flags(void) { return "avx2 amx"; }\n')
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(tmp_path / "stub.so"), str(stub)], check=True)
    code = "import json; from ner_fast.machine import cpu_info; print(json.dumps(cpu_info()))"
    env = {**os.environ, "LD_PRELOAD": str(tmp_path / "stub.so")}
    seen = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True, timeout=60).stdout)
    assert seen["real_flags"] == machine.cpu_info()["flags"] and seen["real_flags"]["avx2"] is True
    assert seen["flags"] == {**seen["real_flags"], "avx2": False, "amx": False}
    assert seen["cpuid_view"].startswith("avx2: CPUID without amx, avx2 (")
    assert "real_flags" not in machine.cpu_info() and "cpuid_view" not in machine.cpu_info()  # this process: no view
