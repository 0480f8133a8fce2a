"""The console script (`pyproject.toml` [project.scripts], `ner_fast.__main__:main`): a Ctrl-C while the
command line is still being imported is one line and exit 1, not a traceback of the module being imported."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A meta-path finder that raises KeyboardInterrupt when `ner_fast.cli` is imported: a Ctrl-C at that moment.
INTERRUPTED_IMPORT = """
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "ner_fast.cli":
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, Interrupt())
from ner_fast.__main__ import main
main()
"""


# onnxruntime imported while a stop arrives: pybind11, which builds its compiled module, raises
# ImportError("initialization failed") from the KeyboardInterrupt (or SIGTERM's Terminated) that landed
# in the module's initialisation, and onnxruntime's __init__ raises that ImportError again.
STOPPED_ENGINE_IMPORT = """
import sys
from ner_fast.signals import Terminated
class Stop:
    def find_spec(self, name, path=None, target=None):
        if name == "onnxruntime":
            raise ImportError("initialization failed") from {stop}()
        return None
sys.meta_path.insert(0, Stop())
sys.argv = ["ner-fast", "tag", "--text", "Angela Merkel visited Paris."]
from ner_fast.__main__ import main
main()
"""


def test_the_console_script_is_the_guarded_entry() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ner-fast"] == "ner_fast.__main__:main"


def test_ctrl_c_while_the_cli_is_imported_is_one_line() -> None:
    run = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == "Aborted!" and "Traceback" not in run.stderr


@pytest.mark.parametrize(("stop", "code", "line"), [
    ("KeyboardInterrupt", 1, "Aborted!"),
    ("Terminated", 143, "Aborted: terminated (SIGTERM)."),
])
def test_a_stop_while_an_engine_initialises_is_one_line(stop: str, code: int, line: str) -> None:
    # Before: the traceback of onnxruntime's import ending in "ImportError: initialization failed".
    script = STOPPED_ENGINE_IMPORT.format(stop=stop)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == code, run.stderr
    assert run.stderr.strip() == line and "Traceback" not in run.stderr


def test_an_import_error_that_is_no_stop_keeps_its_traceback() -> None:
    script = STOPPED_ENGINE_IMPORT.replace(" from {stop}()", "")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" in run.stderr
    assert run.stderr.strip().endswith("ImportError: initialization failed")


def test_python_dash_m_runs_the_command_line() -> None:
    run = subprocess.run([sys.executable, "-m", "ner_fast", "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "Usage:" in run.stdout and "train" in run.stdout
