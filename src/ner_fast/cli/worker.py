"""A `ner-fast launch` worker's process: the command line, ended at once when it fails. `launch` runs it
by name (`training.distributed.role_command`); nothing imports it."""
from __future__ import annotations

import os
import sys
import traceback

from ner_fast.cli import main


def worker_main() -> None:
    """A worker's `ner-fast` command line (`cli.main`). A worker that fails ends at once, its output flushed
    (`os._exit`): Python's own exit finalizes MXNet's kvstore, which waits at a barrier for the other
    workers, so a worker that refused its options (`--out` holds a run) hung until the servers crashed,
    and `launch` reported their crash instead of its one-line reason. A failure that is a bug (a
    traceback: an MXNet error is a RuntimeError) ends so too, after printing it; a clean exit is Python's."""
    try:
        main()
    except SystemExit as err:
        if err.code in (None, 0):
            raise
        _end(err.code if isinstance(err.code, int) else 1)
    except BaseException:
        traceback.print_exc()
        _end(1)


def _end(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe or file: nothing more can be said there
    os._exit(code)
