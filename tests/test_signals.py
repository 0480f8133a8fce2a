"""SIGTERM as `Terminated`: the handler's exception can be lost where Python happens to run it (a
`__del__`, a ctypes callback), so the request is also kept for `check_terminated` (a training epoch
polls it per batch). The CI once saw `ner-fast train` train on after a SIGTERM for this reason."""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time

import pytest

from ner_fast import signals


@pytest.fixture
def handler():
    before = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signals.raise_on_sigterm()
    try:
        yield
    finally:
        signals._pending = False
        signal.signal(signal.SIGTERM, before)


class _RaisesInDel:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside __del__


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_sigterm_lost_in_a_del_is_raised_by_check_terminated(handler) -> None:
    signals.check_terminated()  # nothing pending: no exception
    obj = _RaisesInDel()
    del obj  # the Terminated raised inside __del__ is printed as "Exception ignored" and lost
    gc.collect()
    assert signal.getsignal(signal.SIGTERM) is signals._again  # the handler did run
    with pytest.raises(signals.Terminated):
        signals.check_terminated()
    signals.check_terminated()  # raised once: the request is consumed


def test_raise_on_sigterm_leaves_an_ignored_sigterm_ignored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signals.raise_on_sigterm()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)


_CHILD = """
import sys, time
from ner_fast import signals
signals.raise_on_sigterm()
try:
    print("ready", flush=True)
    while True:
        time.sleep(0.01)
except signals.Terminated:
    time.sleep(float(sys.argv[1]))  # unwinding: a temporary to remove, parameters to save
    print("unwound", flush=True)
    sys.exit(143)
"""


def _stop_twice(gap: float, unwinding: float) -> tuple[int, str]:
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(unwinding)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGTERM)
        time.sleep(gap)
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=30)
        return child.returncode, out
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_same_stop_sent_twice_still_unwinds() -> None:
    # GNU timeout signals the process and then its process group: two SIGTERMs, milliseconds apart
    # on a busy machine. The second is the same request, not an impatient one: the command unwinds.
    code, out = _stop_twice(gap=0.05, unwinding=0.5)
    assert code == 143 and out == "unwound\n"


def test_a_second_sigterm_later_ends_the_unwinding_at_once() -> None:
    code, out = _stop_twice(gap=signals.REPEAT_GRACE_S + 0.5, unwinding=20)
    assert code == -signal.SIGTERM and out == ""


def test_a_hang_up_unwinds_as_sigterm_does() -> None:
    # A closed terminal or ssh session (SIGHUP) killed a command on the spot: no `finally`, so a run lost its
    # epoch, `tag --output-dir` left temporaries and `launch` its job. It unwinds now, as SIGTERM does.
    script = _CHILD.replace("except signals.Terminated:", "except signals.Terminated as stop:\n    print(stop.signum)")
    # As in a terminal: under `nohup` (a CI runner may be) SIGHUP is ignored, and stays so by design.
    script = "import signal\nsignal.signal(signal.SIGHUP, signal.SIG_DFL)\n" + script
    child = subprocess.Popen([sys.executable, "-c", script, "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGHUP)
        out, _ = child.communicate(timeout=30)
        assert child.returncode == 143 and out == f"{int(signal.SIGHUP)}\nunwound\n"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_ctrl_c_during_a_held_block_is_raised_after_it() -> None:
    # `import mxnet` (SciPy's NumPy C-API set-up) printed a KeyboardInterrupt that landed in it and went on:
    # the Ctrl-C was lost and `ner-fast train` ran to its end with exit 0. Held, it is raised once the import is done.
    finished = False
    # Python's own Ctrl-C handler, as a terminal's command has it (CI starts the suite with SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals.interrupts_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs here: recorded, not raised
                finished = True
        assert finished and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with signals.interrupts_held():  # nothing arrives: nothing raised
            pass
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        reached = False
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C stops a block that hangs at once
            with signals.interrupts_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                reached = True
        assert not reached and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
