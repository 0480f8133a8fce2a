"""A `ner-fast launch` worker's process: the command line, ended at once when it fails. `launch` runs it
by name (`training.distributed.role_command`); nothing imports it."""
from __future__ import annotations

import os
import sys

from ner_fast.cli import main


def worker_main() -> None:
    """A worker's `ner-fast` command line (`cli.main`). A worker that fails ends at once, its output flushed
    (`os._exit`): Python's own exit finalizes MXNet's kvstore, which waits at a barrier for the other
    workers, so a worker that refused its options (`--out` holds a run) hung until the servers crashed,
    and `launch` reported their crash instead of its one-line reason."""
    try:
        main()
    except SystemExit as err:
        if err.code not in (None, 0):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(err.code if isinstance(err.code, int) else 1)
        raise
