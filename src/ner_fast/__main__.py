"""The `ner-fast` console script (`python -m ner_fast` too): `ner_fast.cli.main`, imported inside a guard.

Importing the command line (click, NumPy, the commands) takes a few tenths of a second; a Ctrl-C in that
time used to print a traceback of whatever module was being imported. `main` catches it there as the
commands catch it later (click's "Aborted!", exit 1). This module imports nothing but the standard library
until then, and `import ner_fast` is light (its `__init__`), so the unguarded window is the interpreter's
own start.
"""
from __future__ import annotations

import sys


def main() -> None:
    """Run the `ner-fast` command line (`ner_fast.cli.main`)."""
    try:
        from ner_fast.cli import main as cli_main
    except KeyboardInterrupt:
        print("Aborted!", file=sys.stderr)  # what click prints for a Ctrl-C during a command
        raise SystemExit(1) from None
    cli_main()


if __name__ == "__main__":
    main()
