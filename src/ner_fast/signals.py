"""SIGTERM as an exception, so that a command asked to stop (by `kill`, a job scheduler, a container
runtime) unwinds as it does for Ctrl-C: `finally` blocks run, temporaries go, training saves its
parameters. The one home of `ner-fast`'s SIGTERM handling (the command line installs it; `train`
catches `Terminated`), and of Ctrl-C held while a library that loses it imports (`interrupts_held`).
Imports nothing heavy."""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """SIGTERM (or SIGHUP: `signum`, its `args[0]`), raised in the main thread (a BaseException, like
    KeyboardInterrupt: no `except Exception` stops it)."""

    @property
    def signum(self) -> int:
        return int(self.args[0]) if self.args else int(signal.SIGTERM)


_pending = False

#: Seconds after a SIGTERM in which another is the same request, not an impatient one: GNU `timeout`
#: signals the process and then its process group, and a loaded machine can run our handler between
#: the two. After this, a second SIGTERM during the unwinding ends the process at once.
REPEAT_GRACE_S = 1.0

_first_at = 0.0
_signum = int(signal.SIGTERM)  # the signal of the pending `Terminated`


def _terminated(signum: int, frame: FrameType | None) -> None:
    global _pending, _first_at, _signum
    _first_at, _signum = time.monotonic(), signum
    signal.signal(signal.SIGTERM, _again)
    # Python runs the handler wherever the main thread is; inside a `__del__` (MXNet frees an NDArray
    # in one after every batch) the exception is printed as "Exception ignored" and lost. The flag
    # keeps it: long loops call `check_terminated` and raise it there.
    _pending = True
    raise Terminated(signum)


def _again(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM while unwinding from the first: the same request within `REPEAT_GRACE_S`, else the
    end of the process (SIGTERM's default action)."""
    if time.monotonic() - _first_at < REPEAT_GRACE_S:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def check_terminated() -> None:
    """Raise `Terminated` if a SIGTERM arrived whose exception was swallowed where it was raised (in a
    `__del__` or a ctypes callback); for loops that run long (a training epoch polls it per batch)."""
    global _pending
    if _pending:
        _pending = False
        raise Terminated(_signum)


def stop_behind(err: BaseException) -> BaseException | None:
    """The Ctrl-C (KeyboardInterrupt) or SIGTERM (`Terminated`) that `err` stands for, else None.

    A stop that lands while a compiled extension initialises comes back as another exception:
    pybind11 (onnxruntime's `onnxruntime_pybind11_state`) raises ImportError("initialization failed")
    from it, and onnxruntime's `__init__` raises that again. The stop is in the chain of causes."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, (KeyboardInterrupt, Terminated)):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def raise_on_sigterm() -> None:
    """From now on SIGTERM, and SIGHUP (a closed terminal or ssh session), raise `Terminated` in the main
    thread; a signal the parent made this process ignore (SIG_IGN: `nohup`), or one another handler
    already takes, is left as it is. A hang-up killed a command without its `finally` blocks: a run lost
    its epoch, `tag --output-dir` left temporaries, `launch` its job."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _terminated)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Run a block with Ctrl-C held, then raise the KeyboardInterrupt it got, if any. For the import of a
    compiled library that drops one: `import mxnet` imports SciPy, whose NumPy C-API set-up prints a
    KeyboardInterrupt that lands in it and goes on, so a Ctrl-C then was lost and training ran to its end,
    exit 0 (a new-user trial). A second Ctrl-C is raised at once (an import that hangs can still be
    stopped). Only in the main thread, where Python's own handler is installed."""
    if threading.current_thread() is not threading.main_thread() or (
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if caught:
            raise KeyboardInterrupt
        caught.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt
