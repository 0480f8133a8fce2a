"""Whether a command draws progress bars: the one rule of `train`, `evaluate` and `tag`."""
from __future__ import annotations

import sys


def bars_shown(asked: bool = True) -> bool:
    """A progress bar only where `asked` (`--progress`, the default) and someone watches it: stderr is a
    terminal (bars in a redirected log, `train ... 2> log`, are lines of carriage returns)."""
    return asked and sys.stderr is not None and sys.stderr.isatty()
