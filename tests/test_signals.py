"""SIGTERM as `Terminated`: the handler's exception can be lost where Python happens to run it (a
`__del__`, a ctypes callback), so the request is also kept for `check_terminated` (a training epoch
polls it per batch). The CI once saw `ner-fast train` train on after a SIGTERM for this reason."""
from __future__ import annotations

import gc
import os
import signal

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
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler did run
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
