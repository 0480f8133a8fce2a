"""The console script (`pyproject.toml` [project.scripts], `ner_fast.__main__:main`): a Ctrl-C while the
command line is still being imported is one line and exit 1, not a traceback of the module being imported."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

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


def test_the_console_script_is_the_guarded_entry() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ner-fast"] == "ner_fast.__main__:main"


def test_ctrl_c_while_the_cli_is_imported_is_one_line() -> None:
    run = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == "Aborted!" and "Traceback" not in run.stderr


def test_python_dash_m_runs_the_command_line() -> None:
    run = subprocess.run([sys.executable, "-m", "ner_fast", "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "Usage:" in run.stdout and "train" in run.stdout
