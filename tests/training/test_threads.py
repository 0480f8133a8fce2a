"""MXNet's thread count for training: every usable core unless the user chose (issue 12, part 4)."""
from __future__ import annotations

import os

import pytest

from ner_fast.training.distributed import Cluster
from ner_fast.training.cpu import omp_threads, set_mxnet_threads


def test_omp_threads_share_out_the_usable_cores() -> None:
    cores = len(os.sched_getaffinity(0))
    assert omp_threads() == cores
    assert omp_threads(2) == max(1, cores // 2)
    assert omp_threads(cores + 5) == 1  # never 0 threads
    assert omp_threads(0) == cores


def test_set_mxnet_threads_fills_in_a_missing_value_and_keeps_the_users() -> None:
    env: dict[str, str] = {}
    assert set_mxnet_threads(env) == str(omp_threads())
    assert env == {"OMP_NUM_THREADS": str(omp_threads())}
    mine = {"OMP_NUM_THREADS": "7"}
    assert set_mxnet_threads(mine, processes=4) == "7"
    assert mine == {"OMP_NUM_THREADS": "7"}


def test_set_mxnet_threads_defaults_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert set_mxnet_threads() == str(omp_threads())
    assert os.environ["OMP_NUM_THREADS"] == str(omp_threads())


def test_local_workers_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cluster = Cluster("127.0.0.1", 9000, workers=2, servers=1)
    assert cluster.env("worker", "127.0.0.1", "lo")["OMP_NUM_THREADS"] == str(omp_threads(2))
    assert "OMP_NUM_THREADS" not in cluster.env("server", "127.0.0.1", "lo")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cluster.env("worker", "127.0.0.1", "lo")["OMP_NUM_THREADS"] == "3"


def test_several_cpu_contexts_get_an_engine_thread_each_and_share_the_cores() -> None:
    env: dict[str, str] = {}
    assert set_mxnet_threads(env, cpu_contexts=2) == str(omp_threads(2))
    assert env == {"OMP_NUM_THREADS": str(omp_threads(2)), "MXNET_CPU_WORKER_NTHREADS": "2"}
    one: dict[str, str] = {}
    set_mxnet_threads(one, cpu_contexts=1)
    assert "MXNET_CPU_WORKER_NTHREADS" not in one  # MXNet's own default for one context
    mine = {"MXNET_CPU_WORKER_NTHREADS": "5"}
    set_mxnet_threads(mine, cpu_contexts=2)
    assert mine["MXNET_CPU_WORKER_NTHREADS"] == "5"


def test_spinning_openmp_threads_is_a_default_the_user_overrides() -> None:
    from ner_fast.training.cpu import spin_openmp_threads

    env: dict[str, str] = {}
    assert spin_openmp_threads(env) == "ACTIVE" and env == {"OMP_WAIT_POLICY": "ACTIVE"}
    mine = {"OMP_WAIT_POLICY": "PASSIVE"}
    assert spin_openmp_threads(mine) == "PASSIVE" and mine == {"OMP_WAIT_POLICY": "PASSIVE"}
