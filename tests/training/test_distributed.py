"""Parameter-server training on loopback: 1 scheduler, 1 server, 2 workers, one tiny run."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from ner_fast.training.distributed import Cluster, free_port, launch


def _result(log: Path) -> dict[str, Any]:
    """The JSON line `ner-fast train --json` printed last in a worker's log."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    assert lines, f"no result in {log}:\n{log.read_text(errors='replace')[-3000:]}"
    return json.loads(lines[-1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cluster_env_stays_on_loopback() -> None:
    env = Cluster("127.0.0.1", 9999, workers=2, servers=1).env("server", "127.0.0.1", "lo")
    assert (env["DMLC_ROLE"], env["DMLC_PS_ROOT_URI"], env["DMLC_NODE_HOST"], env["DMLC_INTERFACE"]) == (
        "server",
        "127.0.0.1",
        "127.0.0.1",
        "lo",
    )
    assert (env["DMLC_NUM_WORKER"], env["DMLC_NUM_SERVER"], env["DMLC_PS_ROOT_PORT"]) == ("2", "1", "9999")
    with pytest.raises(ValueError):
        Cluster("127.0.0.1", 1, 1, 1).env("boss", "127.0.0.1", "lo")


@pytest.mark.slow
def test_two_workers_end_with_identical_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = [
        "train", "--kvstore", "dist_sync", "--out", str(tmp_path / "run"), "--max-sentences", "240",
        "--epochs", "2", "--patience", "0", "--hidden", "16", "--word-dim", "16", "--filters", "8",
        "--batch-size", "16", "--lr", "0.02", "--no-progress", "--json",
    ]  # fmt: skip
    # launch() stops every process it started in a finally: on success, failure and timeout alike.
    result = launch(
        args, workers=2, servers=1, host="127.0.0.1", port=free_port(), interface="lo",
        log_dir=tmp_path / "logs", timeout=240,
    )  # fmt: skip
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in (tmp_path / "logs").iterdir()}
    assert result.worker_codes == [0, 0], logs
    assert len(result.pids) == 4 and not any(_alive(pid) for pid in result.pids)
    results = [_result(tmp_path / "logs" / f"worker-{i}.log") for i in range(2)]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["num_workers"] == 2 for r in results)
    # Each worker trained on its own half of the batches, yet both hold the servers' parameters.
    assert results[0]["history"][0]["train"]["tokens"] != results[1]["history"][0]["train"]["tokens"]
    assert results[0]["params_sha256"] == results[1]["params_sha256"]
    for r in results:
        losses = [h["train"]["loss"] for h in r["history"]]
        assert losses[-1] < losses[0]
    assert (tmp_path / "run" / "best.params.npz").exists()  # written by worker 0 only


def test_launch_stops_everything_when_a_worker_fails(tmp_path: Path) -> None:
    # The scheduler and server would wait for these workers forever; launch must stop them.
    result = launch(["train", "--no-such-option"], workers=2, servers=1, port=free_port(), log_dir=tmp_path, timeout=60)
    assert 2 in result.worker_codes and set(result.worker_codes) <= {2, None}  # None: stopped once the other failed
    assert len(result.pids) == 4 and not any(_alive(pid) for pid in result.pids)


# A stand-in for every role: it notes when SIGTERM reaches it; a worker then takes a while to exit, as one
# that saves its checkpoint does (it pulls the parameters from the servers).
_ROLE = """
import os, signal, sys, time
role = os.environ["DMLC_ROLE"]
def note(what):
    with open(sys.argv[1], "a") as f:
        f.write(f"{role} {what}\\n")
def stop(*_):
    note("stopped")
    if role == "worker":
        time.sleep(0.5)
        note("saved")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
note("up")
while True:
    time.sleep(0.05)
"""


def test_launch_stops_the_workers_before_the_servers_and_the_scheduler(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Stopped all at once (Ctrl-C, a timeout, a failed worker), worker 0 was often cut off while saving
    # its interrupted epoch: the servers it pulls the parameters from were already gone.
    import sys

    import ner_fast.training.distributed as distributed

    log = tmp_path / "log"
    monkeypatch.setattr(distributed, "role_command", lambda role, args: [sys.executable, "-c", _ROLE, str(log)])
    with pytest.raises(TimeoutError):
        launch(["train"], workers=2, servers=1, port=free_port(), timeout=3)
    lines = log.read_text().splitlines()
    assert sorted(lines[:4]) == ["scheduler up", "server up", "worker up", "worker up"], lines
    saved = [i for i, line in enumerate(lines) if line == "worker saved"]
    others = [i for i, line in enumerate(lines) if line in ("server stopped", "scheduler stopped")]
    assert len(saved) == 2 and len(others) == 2, lines
    assert max(saved) < min(others), lines


# A stand-in for every role that notes its pid and runs until stopped; the scheduler fails at once where
# the test's FAIL environment variable says so (as one that cannot bind its port does).
_WAITING_ROLE = """
import os, sys, time
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()}\\n")
if os.environ["DMLC_ROLE"] == "scheduler" and os.environ.get("FAIL"):
    sys.exit(1)
while True:
    time.sleep(0.05)
"""


def test_launch_ends_when_the_scheduler_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A scheduler that could not bind its port died at once, and the launcher waited for the workers forever.
    import sys

    import ner_fast.training.distributed as distributed

    monkeypatch.setenv("FAIL", "1")
    log = tmp_path / "pids"
    monkeypatch.setattr(distributed, "role_command", lambda role, args: [sys.executable, "-c", _WAITING_ROLE, str(log)])
    with pytest.raises(RuntimeError, match=r"^the scheduler failed \(exit code 1\) before the workers finished: see "):
        launch(["train"], workers=2, servers=1, port=free_port(), log_dir=tmp_path, timeout=60)
    pids = [int(p) for p in log.read_text().split()]  # those that started before the others were stopped
    assert pids and not any(_alive(pid) for pid in pids)


_LATE_WORKER = """
import os, sys, time
role = os.environ["DMLC_ROLE"]
if role == "server":
    sys.exit(134)  # aborts at once, as when a worker pushed before worker 0 initialised ("init 0 first")
if role == "worker":
    import fcntl
    with open(sys.argv[1], "a+") as f:  # which worker this is, by the order they get here
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        first = not f.read()
        f.write("x")
    if first:
        time.sleep(60)  # still running when the other fails: stopped by the launcher
    time.sleep(2)  # the other, refusing its options: its error comes after the server's crash
    print("this worker failed", flush=True)  # into its own log
    sys.exit(2)
while True:
    time.sleep(0.05)
"""


def test_a_workers_failure_after_the_server_crash_it_caused_is_what_is_reported(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Worker 0 refused --out (a run there) while the other pushed to the server, which aborted: the launcher
    # reported "the server-0 failed (exit code -6)" and exited 1; the worker's one-line reason went unnamed.
    # Here the second worker started fails; the first still runs (a failed worker named by its position).
    import sys

    import ner_fast.training.distributed as distributed
    from click.testing import CliRunner

    from ner_fast.cli.launch import launch_command

    for attempt in ("api", "cli"):
        marks = tmp_path / f"marks-{attempt}"
        monkeypatch.setattr(distributed, "role_command", lambda role, args: [sys.executable, "-c", _LATE_WORKER, str(marks)])
        if attempt == "api":
            codes = launch(["train"], workers=2, servers=1, port=free_port(), log_dir=tmp_path, timeout=60).worker_codes
            assert sorted(codes, key=str) == [2, None]  # which of the two got to the mark first is the OS's choice
            continue
        # The command names that worker and its log, and exits with its code (it said "worker exit codes: [2]", 1).
        res = CliRunner().invoke(launch_command, ["--log-dir", str(tmp_path / "logs"), "--", "train", "--kvstore", "dist_sync"])
        assert res.exit_code == 2, res.output
        found = re.search(r"Error: worker-(\d) failed \(exit code 2\): see (\S+)", res.output)
        assert found and found.group(2) == str(tmp_path / "logs" / f"worker-{found.group(1)}.log"), res.output
        assert "this worker failed" in (tmp_path / "logs" / f"worker-{found.group(1)}.log").read_text()


def test_a_real_worker_refusing_its_out_is_reported_with_its_reason(tmp_path: Path) -> None:
    # The same, with real workers: the one that refused --out then hung in MXNet's exit (its kvstore waits at
    # a barrier for the other workers) until the server aborted, and that abort was reported (exit 1).
    from click.testing import CliRunner

    from helpers import make_checkpoint
    from ner_fast.cli.launch import launch_command

    run = tmp_path / "run"
    make_checkpoint(run)
    (run / "state.json").write_text(json.dumps({"epoch": 1, "best_f1": 0.5, "best_epoch": 1, "bad_epochs": 0}))
    logs = tmp_path / "logs"
    res = CliRunner().invoke(launch_command, ["--log-dir", str(logs), "--timeout", "120", "--", "train", "--kvstore", "dist_sync",
                                              "--out", str(run), "--max-sentences", "300", "--epochs", "1", "--no-progress"])
    assert res.exit_code == 2, res.output
    found = re.search(r'Error: worker-(\d) failed \(exit code 2\): see (\S+), which ends "Error: --out: (\S+) holds a'
                      r' training run', res.output)
    assert found and found.group(3) == str(run), res.output
    assert "server-0 failed" not in res.output


@pytest.mark.parametrize("failure", ["raise SystemExit(2)", "raise RuntimeError('the kvstore says no')"])
def test_a_failed_worker_ends_without_python_s_exit(failure: str) -> None:
    # Python's exit runs MXNet's kvstore finalizer, which waits at a barrier for the other workers (an atexit
    # handler that never returns stands in for it): a usage error, and a traceback too, end at once.
    import subprocess
    import sys

    code = ("import atexit, time, ner_fast.cli.worker as worker\n"
            "atexit.register(time.sleep, 600)\n"
            f"def main():\n    {failure}\n"
            "worker.main = main\nworker.worker_main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == (2 if "SystemExit" in failure else 1), done.stderr
    assert "SystemExit" in failure or "RuntimeError: the kvstore says no" in done.stderr


def test_a_launchers_job_dies_with_it(tmp_path: Path) -> None:
    # Killed (SIGKILL, the out-of-memory killer), the launcher left its job training on, unowned.
    import signal
    import subprocess
    import sys
    import time

    log = tmp_path / "pids"
    parent = (
        "import sys\n"
        "import ner_fast.training.distributed as d\n"
        f"d.role_command = lambda role, args: [sys.executable, '-c', {_WAITING_ROLE!r}, {str(log)!r}]\n"
        "d.launch(['train'], workers=2, servers=1, port=d.free_port(), timeout=60)\n"
    )
    launcher = subprocess.Popen([sys.executable, "-c", parent])
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and len(log.read_text().split()) == 4):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        pids = [int(p) for p in log.read_text().split()]
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in pids)
    finally:
        launcher.kill()
        for pid in [int(p) for p in log.read_text().split()] if log.exists() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_launch_command_checks_its_arguments() -> None:
    from click.testing import CliRunner

    from ner_fast.cli.launch import launch_command

    runner = CliRunner()
    res = runner.invoke(launch_command, ["--workers", "2"])
    assert res.exit_code != 0 and "give the worker command" in res.output
    res = runner.invoke(launch_command, ["--role", "server"])
    assert res.exit_code != 0 and "--scheduler" in res.output
    res = runner.invoke(launch_command, ["--role", "worker", "--scheduler", "nohost", "--", "train", "--kvstore=dist_sync"])
    assert res.exit_code != 0 and "HOST:PORT" in res.output
    # A worker command without a dist_* kvstore: refused before any process starts (each worker said so in its
    # log, and launch then "worker exit codes: [2]", exit 1).
    for worker in (["train", "--out", "run"], ["train", "--kvstore", "dist_sync", "--kvstore", "device"]):
        res = runner.invoke(launch_command, ["--", *worker])
        assert res.exit_code == 2 and "the worker command needs --kvstore dist_sync" in res.output, res.output
    # A resumed run's kvstore is its config.json's, which its workers check: not refused here (review).
    res = runner.invoke(launch_command, ["--role", "worker", "--scheduler", "nohost", "--", "train", "--resume", "run"])
    assert res.exit_code == 2 and "HOST:PORT" in res.output and "--kvstore" not in res.output
    # Ran any command once a worker (`-- evaluate RUN` printed its scores twice), and ignored what a single
    # role does not use; a port out of range hung.
    res = runner.invoke(launch_command, ["--", "evaluate", "runs/a"])
    assert res.exit_code == 2 and "the worker command is a train with a dist_* kvstore, not 'evaluate'" in res.output
    res = runner.invoke(launch_command, ["--role", "scheduler", "--scheduler", "127.0.0.1:9501", "--timeout", "3"])
    assert res.exit_code == 2 and "--timeout and --log-dir apply with --role all only" in res.output
    res = runner.invoke(launch_command, ["--role", "scheduler", "--scheduler", "127.0.0.1:99999"])
    assert res.exit_code == 2 and "a port from 1 to 65535" in res.output


def test_a_launched_worker_without_a_dist_kvstore_is_refused(tmp_path: Path) -> None:
    # `ner-fast launch --workers 2 -- train --out run` (the kvstore left at its default, `device`): each worker
    # trained the whole run alone ("worker 0 of 1"), both writing `run` at once, while the servers idled.
    logs = tmp_path / "logs"
    result = launch(["train", "--out", str(tmp_path / "run"), "--max-sentences", "40", "--no-progress"], workers=2,
                    servers=1, port=free_port(), log_dir=logs, timeout=120)
    assert 2 in result.worker_codes and set(result.worker_codes) <= {2, None}
    assert not any(_alive(pid) for pid in result.pids)
    # The log of a worker that failed (the others may be stopped before they say it: logs are in start order).
    text = (logs / f"worker-{result.worker_codes.index(2)}.log").read_text(errors="replace")
    assert "Error: --kvstore: device" in text and "dist_sync" in text and "Traceback" not in text, text
    # The help it points to is ner-fast's: a worker runs `python -c ...`, whose argv[0] made it "see '-c train --help'".
    assert "(see 'ner-fast train --help')" in text, text
    assert not (tmp_path / "run").exists()


def test_a_dist_kvstore_outside_a_launched_job_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `ner-fast train --kvstore dist_sync` run by hand (no `ner-fast launch`) ended in MXNet's C++ traceback
    # ("Check notnull: ... DMLC_NUM_WORKER").
    from click.testing import CliRunner

    from ner_fast.cli import cli

    monkeypatch.delenv("DMLC_ROLE", raising=False)
    result = CliRunner().invoke(cli, ["train", "--kvstore", "dist_sync", "--out", str(tmp_path / "run"),
                                      "--max-sentences", "40", "--no-progress"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "--kvstore: dist_sync" in result.output and "ner-fast launch" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
