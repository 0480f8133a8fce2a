"""`ner-fast launch`: start parameter-server training (scheduler, servers, workers)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ner_fast.option_table import DIST_KVSTORES, command_options, is_distributed


@click.command(context_settings={"ignore_unknown_options": True})
@command_options("launch")
@click.argument("worker_args", nargs=-1, type=click.UNPROCESSED)
def launch_command(
    workers: int,
    servers: int,
    role: str,
    scheduler_addr: str | None,
    host: str,
    interface: str,
    log_dir: str | None,
    timeout: float | None,
    worker_args: tuple[str, ...],
) -> None:
    """Run MXNet parameter-server training: `ner-fast launch [OPTIONS] -- train --kvstore dist_sync --out DIR ...`.

    WORKER_ARGS is the `ner-fast` command each worker runs (a `train` with a dist_* kvstore).
    With --role all (the default) a scheduler, --servers servers and --workers workers start on
    this machine, bound to --host on --interface (loopback by default), and stop together. For
    several machines start one role per process with the same --scheduler everywhere and each
    machine's own --host / --interface (see the `ner_fast.training.distributed` docs).
    """
    from ner_fast.training.distributed import Cluster, launch, run_role

    if role in ("all", "worker") and not worker_args:
        raise click.UsageError("give the worker command after --, e.g. -- train --kvstore dist_sync --out DIR")
    if role in ("all", "worker") and worker_args[0] != "train":  # evaluate, tag, export: run N times over
        raise click.UsageError(f"the worker command is a train with a dist_* kvstore, not {worker_args[0]!r}")
    kvstore = _option_value(worker_args, "--kvstore")
    resumed = _option_value(worker_args, "--resume") is not None  # its kvstore is the run's (config.json), checked by the workers
    if role in ("all", "worker") and not resumed and not is_distributed(kvstore):  # before any process starts
        raise click.UsageError(f"the worker command needs --kvstore {DIST_KVSTORES[0]} (or another dist_* kvstore), not "
                               f"{kvstore or 'the default, device'}: each worker would train the whole run alone")
    if role != "all" and (timeout is not None or log_dir is not None):  # one process, in the foreground
        raise click.UsageError("--timeout and --log-dir apply with --role all only")
    if scheduler_addr:
        sched_host, _, sched_port = scheduler_addr.rpartition(":")
        if not sched_host or not sched_port.isdigit() or not 0 < int(sched_port) < 65536:
            raise click.BadParameter(f"expected HOST:PORT (a port from 1 to 65535), got {scheduler_addr!r}",
                                     param_hint="--scheduler")
        port: int | None = int(sched_port)
    elif role != "all":
        raise click.UsageError("--scheduler HOST:PORT is required with --role scheduler/server/worker")
    else:
        sched_host, port = host, None
    if role == "all":
        if sched_host != host:
            raise click.UsageError("with --role all the scheduler runs here: --scheduler must use --host")
        try:
            result = launch(worker_args, workers=workers, servers=servers, host=host, port=port,
                           interface=interface, log_dir=log_dir, timeout=timeout)
        except (TimeoutError, ValueError, RuntimeError) as err:
            raise click.ClickException(str(err)) from err
        codes = result.worker_codes
        failed = next((i for i, c in enumerate(codes) if c not in (None, 0)), None)
        if failed is not None:
            # Named by its log file (start order; its rank is in its output), with its own exit code where that
            # is a ner-fast one (2: a usage error such as --out holding a run), else 1.
            where = f": see {Path(log_dir) / f'worker-{failed}.log'}{_said(Path(log_dir) / f'worker-{failed}.log')}" \
                if log_dir is not None else " (its output is above)"
            error = click.ClickException(f"worker-{failed} failed (exit code {codes[failed]}){where}")
            error.exit_code = codes[failed] if codes[failed] in (1, 2) else 1
            raise error
        return
    assert port is not None  # --scheduler is required for single roles (checked above)
    cluster = Cluster(sched_host, port, workers, servers)
    sys.exit(run_role(role, worker_args, cluster, host, interface))


def _said(log: Path) -> str:
    """A failed worker's one-line reason (our commands' last line, `Error: ...`) from its log, to quote."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f', which ends "{lines[-1]}"' if lines and lines[-1].startswith("Error: ") else ""


def _option_value(args: tuple[str, ...], flag: str) -> str | None:
    """The value given to `flag` in a command line (`--flag VALUE` or `--flag=VALUE`; the last one wins, as in
    click); None where it is not given."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg[len(flag) + 1 :]
    return value
