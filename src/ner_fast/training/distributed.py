"""Starting MXNet's parameter-server processes for multi-machine training (`ner-fast launch`).

A parameter-server job has one scheduler, some servers and some workers. Every process reads
its part from environment variables (DMLC_*): its role, the scheduler's address and port, and
how many servers and workers there are. Servers and the scheduler need no code of ours: importing
mxnet with `DMLC_ROLE=server` (or `scheduler`) runs that role until the workers finish. Workers run
`ner-fast train ... --kvstore dist_sync` (or `dist_device_sync` / `dist_async`); each trains on its
own share of every epoch's batches and the servers combine their gradients (see `train.py`).

On one machine `launch(...)` starts everything on the loopback interface. On several machines run
one role per process with the same scheduler address everywhere, e.g. for 2 workers, 1 server:

    host A:  ner-fast launch --role scheduler --scheduler A:9091 --workers 2 --servers 1
    host A:  ner-fast launch --role server    --scheduler A:9091 --workers 2 --servers 1 --host A
    host B:  ner-fast launch --role worker    --scheduler A:9091 --workers 2 --servers 1 --host B -- train --kvstore dist_sync --out run
    host C:  ner-fast launch --role worker    --scheduler A:9091 --workers 2 --servers 1 --host C -- train --kvstore dist_sync --out run

`--host` is the address this node announces (DMLC_NODE_HOST) and `--interface` the network
interface it binds (DMLC_INTERFACE); set both, or ps-lite may pick another address of the machine.
Only worker 0 writes the checkpoint folder.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

from ner_fast.option_table import DIST_KVSTORES, is_distributed, row
from ner_fast.training.cpu import set_mxnet_threads

ROLES = ("scheduler", "server", "worker")
# A worker is the `ner-fast` command line itself, run by this Python; named so (click takes the name from
# argv[0], which `-c` makes "-c": a mistake said "see '-c train --help'").
_CLI = [sys.executable, "-c", "import sys; sys.argv[0] = 'ner-fast'; from ner_fast.cli.worker import worker_main; worker_main()"]
# Servers and the scheduler are MXNet itself (its import starts the role). Servers run the optimizer,
# so they flush denormals too (see `train.flush_denormals`).
_ROLE_ONLY = [sys.executable, "-c", "from ner_fast.training.cpu import flush_denormals; flush_denormals(); import mxnet"]


def check_worker_kvstore(kvstore: str, resumed: str | None = None) -> None:
    """OptionError (`--kvstore`) when `kvstore` does not fit this process's place: a worker of a
    parameter-server job (`DMLC_ROLE`, set by `ner-fast launch`) needs a dist_* one, else each worker would
    train the whole run alone, all writing the same --out, while the servers wait; a dist_* one needs that
    job, else MXNet stops with its own C++ traceback (no DMLC_* variables). `resumed`: the run folder of a
    resumed run, which keeps its kvstore (the advice is then to resume it through `launch`)."""
    from ner_fast.errors import OptionError

    worker = os.environ.get("DMLC_ROLE") == "worker"
    if worker and not is_distributed(kvstore) and resumed is not None:
        raise OptionError("--kvstore", f"{resumed} trained with --kvstore {kvstore}, on one machine: resume it there,"
                          f" `ner-fast train --resume {resumed}`, not as a worker of `ner-fast launch` (a resumed run"
                          " keeps its kvstore)")
    if worker and not is_distributed(kvstore):
        raise OptionError("--kvstore", f"{kvstore}, but this is a worker of `ner-fast launch`, whose workers share"
                          f" one run through the servers: give --kvstore {DIST_KVSTORES[0]} (or {', '.join(DIST_KVSTORES[1:])})")
    if not worker and is_distributed(kvstore) and resumed is not None:
        # A resumed run keeps the kvstore it started with: `--kvstore device` is refused there.
        raise OptionError("--kvstore", f"{resumed} trained with --kvstore {kvstore}, on a parameter-server job: resume it"
                          f" through one, `ner-fast launch --workers N --servers M -- train --resume {resumed}`"
                          " (docs/TRAINING.md, 'Several machines')")
    if not worker and is_distributed(kvstore):
        raise OptionError("--kvstore", f"{kvstore} trains on a parameter-server job: run it through `ner-fast launch"
                          f" --workers N --servers M -- train --kvstore {kvstore} ...` (docs/TRAINING.md, 'Several"
                          " machines'), or use local or device on one machine")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago; ValueError when `host` is no address of this
    machine (a name that does not resolve, another machine's address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, 0))
        except OSError as err:  # socket.gaierror too
            raise ValueError(f"--host {host}: cannot listen there ({err.strerror or err}): give an address of"
                             " this machine") from None
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """Where the scheduler listens and how many servers and workers join."""

    scheduler_host: str
    scheduler_port: int
    workers: int
    servers: int

    def env(self, role: str, node_host: str, interface: str | None) -> dict[str, str]:
        """The environment of one process of this cluster."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        env = dict(os.environ)
        env.update(
            DMLC_ROLE=role,
            DMLC_PS_ROOT_URI=self.scheduler_host,
            DMLC_PS_ROOT_PORT=str(self.scheduler_port),
            DMLC_NUM_WORKER=str(self.workers),
            DMLC_NUM_SERVER=str(self.servers),
            DMLC_NODE_HOST=node_host,
        )
        if interface:
            env["DMLC_INTERFACE"] = interface
        if role == "worker":
            # The workers share this machine's cores (unless the user set OMP_NUM_THREADS).
            set_mxnet_threads(env, processes=self.workers)
        return env


@dataclass
class LaunchResult:
    """The workers' exit codes (in start order; None for one still running when another failed, then stopped) and
    every process id started."""

    worker_codes: list[int | None]
    pids: list[int]


def role_command(role: str, worker_args: Sequence[str]) -> list[str]:
    """The command line of one process: a bare mxnet import, or `ner-fast <worker_args>` for workers."""
    return _CLI + list(worker_args) if role == "worker" else list(_ROLE_ONLY)


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Terminate our child processes (and their own children), then kill what is left."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, 15)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            p.wait()


def _end_with_parent() -> None:
    """In a child, before it runs: kill it when the launcher dies (Linux `PR_SET_PDEATHSIG`). Killed itself
    (SIGKILL, the out-of-memory killer), the launcher left its job training on, unowned, into the same run
    folder as the next one. SIGKILL, not SIGTERM: a worker told to stop saves by pulling the parameters
    from the servers, which die with it (the workers then hung); the run resumes from its last epoch.
    Asked to stop (Ctrl-C, SIGTERM, SIGHUP), the launcher stops its job in order (`_stop`)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


#: Seconds a scheduler's or server's failure waits for a worker's to report instead: worker 0 refusing its
#: options (`--out` holds a run) exits after the others pushed to the servers, which abort ("init 0 first");
#: one 0.5 s round reported the server's crash, and the worker's one-line reason went unnamed (2 of 2 tries).
FAILURE_GRACE = 5.0


def _wait_for_workers(others: Sequence[subprocess.Popen[bytes]], workers: Sequence[subprocess.Popen[bytes]],
                      timeout: float | None, log_dir: str | os.PathLike[str] | None) -> list[int | None]:
    """The workers' exit codes (in start order) once all are done, or once one fails (the others would wait
    for it at the next synchronisation forever: those still running then are None, and stopped); RuntimeError when the scheduler or a
    server (`others`) fails first, as one that cannot bind its port does; TimeoutError after `timeout`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    names = ["scheduler", *(f"server-{i}" for i in range(len(others) - 1))]
    ended, ended_at = None, 0.0
    while True:
        codes = [p.poll() for p in workers]
        if any(c not in (None, 0) for c in codes) or all(c is not None for c in codes):
            return codes
        if ended is not None and time.monotonic() - ended_at > FAILURE_GRACE:
            # Still no worker's failure to report: the scheduler's or server's.
            where = f": see {Path(log_dir) / (ended[0] + '.log')}" if log_dir is not None else " (launch again with --log-dir DIR for its output)"
            raise RuntimeError(f"the {ended[0]} failed (exit code {ended[1]}) before the workers finished{where}")
        # One ending cleanly (the job's end, seen before the workers' own) is no failure; one failing may
        # have followed a worker's failure (then the worker's is what to report): `FAILURE_GRACE` decides.
        if ended is None:
            ended = next(((name, p.returncode) for name, p in zip(names, others) if p.poll() not in (None, 0)), None)
            ended_at = time.monotonic()
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"the workers did not finish within {timeout} s")
        time.sleep(0.2)


def launch(
    worker_args: Sequence[str],
    *,
    workers: int = row("launch", "workers").default,
    servers: int = row("launch", "servers").default,
    host: str = row("launch", "host").default,
    port: int | None = None,
    interface: str | None = row("launch", "interface").default,
    log_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> LaunchResult:
    """Run a whole parameter-server job on this machine.

    Every node binds `host` on `interface` (loopback by default, so no byte leaves the machine).
    With `log_dir`, process output goes to `scheduler.log`, `server-<i>.log`, `worker-<i>.log` there;
    otherwise workers share this terminal and the others are silent. Every process is stopped when
    the workers are done, on error, on Ctrl-C and after `timeout` seconds (then TimeoutError): the
    workers first, then the servers and the scheduler.
    """
    if workers < 1 or servers < 1:
        raise ValueError("a job needs at least one worker and one server")
    cluster = Cluster(host, port or free_port(host), workers, servers)
    logs: list[IO[bytes]] = []
    procs: list[subprocess.Popen[bytes]] = []
    workers_started: list[subprocess.Popen[bytes]] = []

    def start(role: str, name: str) -> subprocess.Popen[bytes]:
        out: IO[bytes] | int | None
        if log_dir is not None:
            out = open(Path(log_dir) / f"{name}.log", "wb")
            logs.append(out)
        else:
            out = None if role == "worker" else subprocess.DEVNULL
        p = subprocess.Popen(
            role_command(role, worker_args),
            env=cluster.env(role, host, interface),
            stdout=out,
            stderr=subprocess.STDOUT if log_dir is not None else out,
            start_new_session=True,  # its own process group, so _stop reaches its children too
            preexec_fn=_end_with_parent,
        )
        procs.append(p)
        if role == "worker":
            workers_started.append(p)
        return p

    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    try:
        start("scheduler", "scheduler")
        for i in range(servers):
            start("server", f"server-{i}")
        worker_procs = [start("worker", f"worker-{i}") for i in range(workers)]
        codes = _wait_for_workers(procs[: 1 + servers], worker_procs, timeout, log_dir)
        return LaunchResult(codes, [p.pid for p in procs])
    finally:
        # Workers first: one told to stop saves its checkpoint, pulling the parameters from the servers,
        # which must still be there (stopped together, worker 0 was often cut off mid-save: the epoch in
        # progress lost, no "interrupted: parameters saved" line). Then the servers and the scheduler.
        _stop(workers_started)
        _stop(procs)
        for f in logs:
            f.close()


def run_role(role: str, worker_args: Sequence[str], cluster: Cluster, host: str, interface: str | None) -> int:
    """Run one process of a multi-machine job in the foreground; returns its exit code."""
    return subprocess.call(role_command(role, worker_args), env=cluster.env(role, host, interface))
