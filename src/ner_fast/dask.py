"""Tagging on a Dask cluster (`pip install ner-fast[dask]`): whole input files into an output folder of
parts (`tag_files`, what `ner-fast tag --output-dir` runs), or a Dask bag or dataframe a user already
holds (`tag_bag`, `tag_dataframe`).

    from ner_fast.dask import tag_bag, tag_dataframe
    docs = tag_bag(dask.bag.read_text("docs-*.txt").map(str.strip), "/shared/pkg")   # a bag of Doc dicts
    df = tag_dataframe(ddf, column="text", package="/shared/pkg")                    # adds a "doc" column

Every path (package, inputs, output folder) must mean the same files on the client and on every worker
(one machine, or a shared file system). Workers receive the package path and the sha256 of its manifest,
never a tagger: each worker process opens the package once, checks it, and keeps its `Tagger`
(`ner_fast.partition.worker_tagger`).

The output folder of `tag_files`:

    OUT/part-00000.jsonl ...   one part per partition, one JSON line per document (a corpus: per
                               sentence, tagged as its tokens), in input order
    OUT/manifest.json          the plan (every partition: source file, lines, documents, sha256 of its
                               input), the package, the settings, and which parts are done (with the
                               sha256 of each done part's bytes)

Concatenating the parts in name order (`cat OUT/part-*.jsonl`) gives the single-process output. A part
is written by its worker to a temporary name and renamed, so it is whole or absent; a partition run
twice (Dask retries the partitions of a lost worker) writes the same bytes. The client rewrites the
manifest (atomically) as parts complete, so after a crash, Ctrl-C or a malformed line, `--resume` tags
only the partitions not recorded as done, and any whose input bytes changed since or whose part file
no longer has the bytes recorded (truncated, edited, removed).

This module is named after the library it drives; `import dask` inside it is the library (absolute
imports), and nothing in the runtime imports this module.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ner_fast.atomic import atomic_write_json, folder_lock
from ner_fast.engine import check_reads_no_pos
from ner_fast.errors import OptionError
from ner_fast.package import MANIFEST_FILE, TAGGED_PART, tagged_parts
from ner_fast.partition import (
    JSONL,
    PARTITION_SIZE,
    SCHEDULER_TIMEOUT,
    TEXT_FIELD,
    Partition,
    file_sha256,
    plan_partitions,
    tag_partition,
    tag_texts,
)

# The parts (`Partition.part`) are named as `package.TAGGED_PART` says: a run writes them, and `--force` removes
# an earlier run's; the manifest that lists them has the name of a package's (`package.tagged_parts` tells the
# two folders apart).
MANIFEST_VERSION = 1
#: Least seconds between two manifest writes while parts complete (the last one is always written).
MANIFEST_EVERY = 1.0


class PartitionsFailed(RuntimeError):
    """Some partitions failed (the first failure is the cause); the others' parts are kept and recorded."""


class SchedulerUnreachable(ConnectionError):
    """The scheduler address does not answer as a Dask scheduler (closed port, silent or other server)."""


def labels_ref(labels: str | os.PathLike[str] | None, package: str) -> dict[str, Any] | None:
    """The label map `labels` names (`ner_fast.labels`) for the package folder `package`, resolved here (a
    bad map fails before any worker starts; a label file is read once, on the client) as JSON for the
    workers; None for the package's own labels."""
    from ner_fast.labels import PACKAGE, label_map, package_descriptions
    from ner_fast.package import load_package
    from ner_fast.schemes import TagScheme

    if labels is None or labels == PACKAGE:
        return None
    pkg = load_package(package, verify=False)  # verified by `package_ref` already
    types = TagScheme(pkg.tags).types
    return label_map(labels, types, package_descriptions(pkg.model, types)).to_json()


def package_ref(package: str | os.PathLike[str] | None) -> tuple[str, str]:
    """(absolute path, checksum) of a package, verified here first so that a bad package fails before
    any worker starts. None: the bundled default package; a bundled name (`ensemble`): that package. Workers are given no POS tags (raw text
    has none, and a corpus's POS column is not carried), so a package that reads them is refused here too (ValueError)."""
    from ner_fast.package import load_package, package_checksum, package_path

    given = package_path(package)
    pkg = load_package(given)  # as given, so that a misspelt name (`robst`) is told as one
    path = given.resolve()
    try:
        check_reads_no_pos(bool(pkg.model.get("use_pos")), "a cluster run does not pass to its workers",
                           "use a package trained without POS input")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return str(path), package_checksum(path)


# --------------------------------------------------------------------------- collections a user holds


def tag_bag(bag: Any, package: str | os.PathLike[str] | None = None, threads: int | None = 1,
            batch_size: int | None = None, labels: str | os.PathLike[str] | None = None) -> Any:
    """A Dask bag of document strings -> a bag of tagged documents (`Doc.to_dict()` dicts), same partitions.
    `labels`: the entities' label map (`ner_fast.labels`; None: the package's labels)."""
    import dask.bag

    if not isinstance(bag, dask.bag.Bag):
        raise TypeError(f"tag_bag takes a dask.bag.Bag, not a {_type_name(bag)} (dask.bag.from_sequence makes one;"
                        " in one process, Tagger.pipe)")
    path, checksum = package_ref(package)
    return bag.map_partitions(tag_texts, package=path, checksum=checksum, threads=threads, batch_size=batch_size,
                              labels=labels_ref(labels, path))


def _type_name(value: Any) -> str:
    """`pandas.DataFrame`, not `DataFrame`: Dask's and pandas' classes have the same names."""
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__.split('.')[0]}.{kind.__name__}"


def tag_dataframe(df: Any, column: str = "text", package: str | os.PathLike[str] | None = None,
                  into: str = "doc", threads: int | None = 1, batch_size: int | None = None,
                  labels: str | os.PathLike[str] | None = None) -> Any:
    """A Dask dataframe with a text `column` -> the same dataframe plus an object column `into` holding each
    row's `Doc.to_dict()` (one `map_partitions` task per partition); `labels` as in `tag_bag`. An `into`
    that is already a column (the text column too) is refused: it was replaced, silently."""
    import dask
    import pandas as pd
    from dask.dataframe.utils import is_dataframe_like

    # By shape, not class: dask-expr's DataFrame and the legacy API's (to_legacy_dataframe) both serve.
    if not (dask.is_dask_collection(df) and is_dataframe_like(getattr(df, "_meta", None))):
        raise TypeError(f"tag_dataframe takes a Dask DataFrame, not a {_type_name(df)} (dask.dataframe.from_pandas"
                        " makes one; in one process, Tagger.pipe on the text column)")
    if column not in df.columns:
        raise KeyError(f"no column {column!r} (columns: {', '.join(map(str, df.columns))})")
    named = list(df.columns).count(column)
    if named > 1:
        raise ValueError(f"the dataframe has {named} columns named {column!r}: rename them")
    if not into or into in df.columns:
        raise ValueError(f"into={into!r}: " + ("name the new column" if not into else "already a column of the"
                                               " dataframe, which the documents would replace: name another"))
    path, checksum = package_ref(package)
    mapped = labels_ref(labels, path)

    def tag_frame(frame: pd.DataFrame) -> pd.DataFrame:
        docs = tag_texts(frame[column], path, checksum, threads, batch_size, mapped)
        return frame.assign(**{into: pd.Series(docs, index=frame.index, dtype=object)})

    meta = df._meta.assign(**{into: pd.Series(dtype=object)})
    return df.map_partitions(tag_frame, meta=meta)


# --------------------------------------------------------------------------- files into an output folder


def tag_files(
    inputs: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    package: str | os.PathLike[str] | None = None,
    *,
    client: Any = None,
    scheduler: str | None = None,
    local_workers: int | None = None,
    input_format: str = "auto",
    text_field: str | None = None,
    partition_size: int = PARTITION_SIZE,
    resume: bool = False,
    force: bool = False,
    threads: int | None = 1,
    batch_size: int | None = None,
    progress: bool = True,
    scheduler_timeout: float = SCHEDULER_TIMEOUT,
    labels: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Tag input files on a Dask cluster into the output folder `out_dir` (see the module docstring).

    The cluster: `client` (a `distributed.Client` the caller holds), else the scheduler at `scheduler`
    (`tcp://host:port`; `SchedulerUnreachable` when it does not answer as a Dask scheduler within
    `scheduler_timeout` seconds), else a `LocalCluster` of `local_workers` processes (one thread each)
    on 127.0.0.1, closed on return. `out_dir` follows `atomic.claim_output_dir` (other files refuse it
    unless `force`, and are kept even then); an earlier run there is finished with `resume` (which must
    have the same settings and inputs) or started over with `force` (its parts and manifest deleted
    first), else refused (`config.OptionError`, as for the option mistakes). Returns a summary:
    partitions, parts done before, parts tagged now, documents, seconds.

    Raises `PartitionsFailed` (its cause: the first failure, e.g. a `CorpusError` naming a file and line)
    after all other partitions have finished and been recorded.

    `text_field`: the field holding each JSON lines document (None: `partition.TEXT_FIELD`, "text"); given
    with another input format, an OptionError.

    `labels`: the entities' label map (`ner_fast.labels`; None: the package's labels); it is part of the
    run's settings, so `resume` refuses another one.

    A script that starts a local cluster must call this under `if __name__ == "__main__":` (the worker
    processes are started by re-importing the main module).
    """
    started = time.perf_counter()
    out = Path(out_dir)
    inputs = list(inputs)
    _refuse_inputs_inside(inputs, out)
    text_field = _text_field(text_field, input_format)
    path, checksum = package_ref(package)
    mapped = labels_ref(labels, path)
    plan = plan_partitions(inputs, input_format, text_field, partition_size)
    settings = {"package": {"path": path, "checksum": checksum}, "input_format": input_format,
                "text_field": text_field, "partition_size": partition_size}
    if mapped is not None:  # only then: runs made before label maps existed resume as before
        settings["labels"] = mapped
    busy = f"{out}: another ner-fast tag --output-dir is writing this folder now; wait for it to end, or stop it"
    with ExitStack() as hold:  # one run a folder: two wrote each other's parts under one manifest, both exit 0
        made = not out.exists()
        if made:  # made first, so that two runs starting on one new folder cannot both claim it
            out.mkdir(parents=True, exist_ok=True)
        hold.enter_context(folder_lock(out, busy))  # before anything there is read or removed
        if made:  # a scheduler not there, a refusal: no empty folder left behind (removed still holding it)
            hold.callback(_remove_if_empty, out)
        done = _prepare_output(out, plan, settings, resume, force)
        todo = [p for p in plan if p.part not in done]
        writer = _ManifestWriter(out / MANIFEST_FILE, plan, settings, done)
        tagged, failures = 0, []
        if todo:
            with _cluster(client, scheduler, local_workers, scheduler_timeout) as active:
                writer.write()  # only once connected: a scheduler that cannot be reached leaves no manifest behind
                tagged, failures = _run(active, todo, out, path, checksum, threads, batch_size, writer, progress, mapped)
        writer.write()
    if failures:
        _, err = min(failures, key=lambda f: f[0])
        raise PartitionsFailed(
            f"{err} ({len(failures)} of {len(plan)} partitions failed; {_parts_done(len(writer.done))} in {out}: fix the"
            " input and rerun with --resume)"
        ) from err
    return {"out": str(out), "partitions": len(plan), "parts_before": len(plan) - len(todo), "parts_tagged": tagged,
            "documents": sum(int(d["documents"]) for d in writer.done.values()),
            "seconds": round(time.perf_counter() - started, 3)}


def _remove_if_empty(folder: Path) -> None:
    """Remove `folder` if it is empty: the output folder a failed run made and wrote nothing into."""
    try:
        folder.rmdir()
    except OSError:
        pass  # it holds the run's output (or someone else's file): kept


def _parts_done(n: int) -> str:
    """What the message of failed partitions says of the parts done ("the 1 parts done are kept" was its grammar)."""
    return {0: "no part is done", 1: "the 1 part done is kept"}.get(n, f"the {n} parts done are kept")


def _text_field(text_field: str | None, input_format: str) -> str:
    """The JSON lines field of each document: `text_field`, or `TEXT_FIELD` when None; an OptionError when
    given for another input format, or empty (which read the default field)."""
    if text_field is not None and input_format != JSONL:
        raise OptionError("--text-field", f"names the documents' field in JSON lines: it needs --input-format {JSONL}")
    if text_field == "":
        raise OptionError("--text-field", "is empty: give the name of the field that holds each document")
    return TEXT_FIELD if text_field is None else text_field


def _refuse_inputs_inside(inputs: list[str | os.PathLike[str]], out: Path) -> None:
    """An input that is one of the files a run writes in the output folder (its manifest, a part), which
    `--force` removes and the run replaces, is refused; other files there are kept, inputs or not."""
    folder = out.resolve()
    for name in inputs:
        path = Path(name).resolve()
        if path.parent == folder and (path.name == MANIFEST_FILE or TAGGED_PART.fullmatch(path.name)):
            raise OptionError("--output-dir", f"{name} is a file of a tagging run in {out} (a part or its manifest),"
                                              " which the run replaces: copy it elsewhere to tag it")


def run_files(folder: Path) -> set[str] | None:
    """The files of an earlier `tag_files` run in `folder`, its manifest and parts (None: it holds none). Only
    the parts the manifest plans are the run's (`package.tagged_parts`): any other part-*.jsonl is the user's."""
    parts = tagged_parts(folder)
    return None if parts is None else {MANIFEST_FILE, *parts}


def _prepare_output(out: Path, plan: list[Partition], settings: dict[str, Any], resume: bool,
                    force: bool) -> dict[str, dict[str, Any]]:
    """Claim the output folder (`package.claim_folder`: a folder of another kind is refused, other files refuse
    it unless `force` and are never touched); return the parts already done (by part name), which only `resume` keeps."""
    from ner_fast.atomic import read_json
    from ner_fast.package import claim_folder

    if (out / MANIFEST_FILE).is_file():
        try:
            read_json(out / MANIFEST_FILE, "tagging manifest")
        except ValueError as err:  # truncated or damaged: it no longer says which files are the run's
            raise OptionError("--output-dir", f"the manifest is unreadable ({err}); remove it and the parts, or choose "
                                              "another folder") from None
    claim = claim_folder(out, "tagged", run_files, force=force, option="--output-dir",
                             writes=[MANIFEST_FILE, *(p.part for p in plan)])
    if claim.previous and not (resume or force):
        raise OptionError("--output-dir", f"{out} holds a tagging run: --resume to finish it, or add --force to start over")
    if not (claim.previous and resume):
        for name in claim.previous:  # --force: the earlier run's files, nothing else
            (out / name).unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        return {}
    manifest = read_json(out / MANIFEST_FILE, "tagging manifest")
    recorded, old_settings = manifest.get("partitions"), manifest.get("settings")
    if not (isinstance(recorded, list) and all(isinstance(r, dict) for r in recorded) and isinstance(old_settings, dict)):
        raise OptionError("--resume", f"{out}/{MANIFEST_FILE} is damaged (its partitions or settings); add --force to start over")
    # The package may have moved: its checksum, not its path, says whether it is the same model.
    same = {**settings, "package": settings["package"]["checksum"]}
    recorded_package = old_settings.get("package")
    old_same = {**old_settings, "package": recorded_package.get("checksum") if isinstance(recorded_package, dict) else None}
    if old_same != same:
        changed = sorted(k for k in same.keys() | old_same.keys() if old_same.get(k) != same.get(k))
        raise OptionError("--resume", f"{out} was started with other settings ({', '.join(changed)}); add --force to start over")
    # An input is the same file by the path as typed (a folder moved with its inputs) or by its absolute path
    # (`a.txt`, then `/data/a.txt`); its bytes are checked by each part's sha256 below.
    shape = ("part", "format", "first_line", "lines")
    if len(recorded) != len(plan) or any(
            [r.get(k) for k in shape] != [p.describe()[k] for k in shape]
            or (r.get("source") != p.source and r.get("path") != p.path) for r, p in zip(recorded, plan)):
        raise OptionError("--resume", f"{out} was started on other inputs (files or line counts differ); add --force to start over")
    # A part counts as done only with its input unchanged since it was tagged and its file holding the
    # bytes written then (a truncated or edited part is tagged again).
    return {r["part"]: r for r, p in zip(recorded, plan)
            if r.get("done") and r.get("sha256") == p.sha256 and r.get("part_sha256")
            and file_sha256(out / p.part) == r["part_sha256"]}


class _ManifestWriter:
    """The manifest of a run: the plan, the settings, and the parts done so far (rewritten atomically)."""

    def __init__(self, path: Path, plan: list[Partition], settings: dict[str, Any], done: dict[str, dict[str, Any]]):
        self.path, self.plan, self.settings, self.done = path, plan, settings, dict(done)
        self.written_at = 0.0

    def record(self, result: dict[str, Any]) -> None:
        self.done[result["part"]] = result
        if time.monotonic() - self.written_at >= MANIFEST_EVERY:
            self.write()

    def write(self) -> None:
        partitions = [{**p.describe(), **self.done.get(p.part, {}), "done": p.part in self.done} for p in self.plan]
        atomic_write_json(self.path, {"format_version": MANIFEST_VERSION, "settings": self.settings,
                                      "complete": len(self.done) == len(self.plan), "partitions": partitions})
        self.written_at = time.monotonic()


def local_cluster(n_workers: int) -> Any:
    """A `distributed.LocalCluster` of `n_workers` processes of one thread each, every socket on 127.0.0.1
    (the scheduler's and the workers' HTTP servers too: by default they listen on every interface).

    Its worker processes never take a Ctrl-C: a terminal sends it to the whole process group, and each
    worker raised KeyboardInterrupt and printed its traceback under the command's "Aborted!". The process
    that made the cluster handles it (closing the cluster stops them). SIGINT is blocked in this thread
    while the cluster starts: the threads it starts, which start the worker processes (and restart them),
    inherit the block, and the processes keep it (a signal mask survives fork and exec). This thread's
    mask is restored at once after, so a Ctrl-C during the start arrives then, not lost. multiprocessing's
    resource tracker is started first: starting it unblocks SIGINT in the thread that does (Python 3.11's
    `resource_tracker.ensure_running` ends with SIG_UNBLOCK, not the mask it found), which was the
    cluster's event loop, the thread that starts the worker processes."""
    from multiprocessing import resource_tracker

    from distributed import LocalCluster

    resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def quiet_stop_plugin() -> Any:
    """A worker plugin for the clusters this module starts (never a scheduler's given with --scheduler, whose
    workers are someone else's): a Ctrl-C closes the cluster under its running partitions, and each worker
    logged "Async instruction for <Task cancelled ...> ended with CancelledError", a warning per partition
    in flight, under the command's "Aborted!". That one message is dropped; every other record stays. (The
    class is made here, where `distributed` is imported: the runtime does not import it.)"""
    from distributed import WorkerPlugin

    class QuietStop(WorkerPlugin):
        def setup(self, worker: Any) -> None:
            import logging

            logging.getLogger("distributed.worker.state_machine").addFilter(_not_cancel_warning)

    return QuietStop()


def _not_cancel_warning(record: Any) -> bool:
    return not record.getMessage().endswith("ended with CancelledError")


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Raise `SchedulerUnreachable` unless a Dask scheduler answers at `address` within `timeout` seconds.

    `distributed.Client` alone waits forever for a server that accepts and never answers (its handshake
    read has no deadline), retries a closed port for its whole timeout, and reads an HTTP server's answer
    as frame lengths (a traceback ending "Unable to allocate 3.07 EiB"). So, first: a TCP connection
    (a closed port fails at once), then distributed's own handshake, both within `timeout`.
    """
    import asyncio
    import socket
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect, parse_address
    from distributed.comm.addressing import parse_host_port
    from distributed.security import Security

    scheme, location = parse_address(address)
    deadline = time.monotonic() + timeout
    if scheme == "tcp":
        try:
            socket.create_connection(parse_host_port(location), timeout=timeout).close()
        except (OSError, ValueError) as err:
            reason = "nothing listens there" if isinstance(err, ConnectionRefusedError) else (
                f"no connection within {timeout:g} s" if isinstance(err, TimeoutError) else str(err))
            raise SchedulerUnreachable(f"--scheduler {address}: {reason}") from None

    async def handshake() -> None:
        # The connection arguments a Client would use (TLS settings from the Dask configuration).
        options = Security().get_connection_args("client")
        comm = await connect(address, timeout=max(0.1, deadline - time.monotonic()), **options)
        await comm.close()

    try:
        # In a thread of its own: the caller may be inside an event loop (a notebook), where asyncio.run fails.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, asyncio.wait_for(handshake(), max(0.1, deadline - time.monotonic()))).result()
    except (TimeoutError, asyncio.TimeoutError):
        raise SchedulerUnreachable(f"--scheduler {address}: no answer from a Dask scheduler within {timeout:g} s "
                                   "(--scheduler-timeout)") from None
    except Exception as err:  # noqa: BLE001 - whatever a non-Dask server's bytes make of the handshake
        # An HTTP answer read as frame lengths asks for exabytes (MemoryError): its text would only mislead.
        detail = f" ({err})" if isinstance(err, OSError) else ""
        raise SchedulerUnreachable(f"--scheduler {address} does not answer as a Dask scheduler{detail}: is it "
                                   "another kind of server?") from None


class _cluster:
    """The client to run on: the caller's (left open), or one made here and closed on exit with its cluster."""

    def __init__(self, client: Any, scheduler: str | None, local_workers: int | None,
                 scheduler_timeout: float = SCHEDULER_TIMEOUT) -> None:
        self.given, self.scheduler, self.local_workers = client, scheduler, local_workers
        self.scheduler_timeout = scheduler_timeout
        self.owned: list[Any] = []

    def __enter__(self) -> Any:
        if self.given is not None:
            return self.given
        from distributed import Client

        try:
            if self.scheduler is not None:
                check_scheduler(self.scheduler, self.scheduler_timeout)
                self.owned.append(Client(self.scheduler, timeout=self.scheduler_timeout))
            else:
                cluster = local_cluster(self.local_workers or 1)
                self.owned.append(cluster)
                self.owned.append(Client(cluster))
                self.owned[-1].register_plugin(quiet_stop_plugin(), name="ner-fast-quiet-stop")
        except BaseException:
            self.__exit__()
            raise
        return self.owned[-1]

    def __exit__(self, *exc: object) -> None:
        for thing in reversed(self.owned):
            thing.close()
        self.owned.clear()


def _tag_part(part: Partition, **options: Any) -> dict[str, Any]:
    """The task of one partition: `tag_partition`, with a data error (a malformed line, a changed input,
    another package) returned as `{"part", "error"}` rather than raised, so that the worker does not log
    its 7-line "Compute Failed" block (key, state, function, args, traceback) before the one-line message."""
    try:
        return tag_partition(part, **options)
    except (ValueError, OSError) as err:  # CorpusError and PackageError are ValueErrors
        return {"part": part.part, "error": err}


def _run(client: Any, todo: list[Partition], out: Path, path: str, checksum: str, threads: int | None,
         batch_size: int, writer: _ManifestWriter, progress: bool,
         labels: dict[str, Any] | None = None) -> tuple[int, list[tuple[int, BaseException]]]:
    """Submit every partition, record parts as they complete; return (parts tagged, failures by index)."""
    import sys

    from distributed import as_completed
    from tqdm import tqdm

    # retries=0: a partition lost with its worker is rescheduled by the scheduler anyway (up to its
    # allowed-failures); an error raised by the partition itself (a malformed line) would fail again.
    run_id = uuid.uuid4().hex[:8]  # keys unique per run: a client must not hand back an earlier run's result
    # Absolute, as the inputs' paths (`Partition.path`) and the package's: a worker may run in another folder.
    futures = client.map(_tag_part, todo, out_dir=str(out.resolve()), package=path, checksum=checksum, threads=threads,
                         batch_size=batch_size, labels=labels, key=[f"ner-fast-tag-{run_id}-{p.part}" for p in todo], retries=0)
    index_of = {f.key: p.index for f, p in zip(futures, todo)}
    tagged, failures = 0, []
    try:
        with tqdm(total=sum(p.documents for p in todo), unit="doc", disable=not progress, file=sys.stderr) as bar:
            for future in as_completed(futures):
                if future.status in ("error", "cancelled"):  # "error" also: a task whose workers all died
                    error = future.exception() if future.status == "error" else None
                    failures.append((index_of[future.key], error or RuntimeError(f"{future.key} was cancelled")))
                    continue
                try:
                    # "lost": it finished, then its worker died before the result came back; the scheduler
                    # runs it again (the part is rewritten with the same bytes) and result() waits for that.
                    result = future.result()
                except Exception as err:  # noqa: BLE001 - recorded; the other partitions go on
                    failures.append((index_of[future.key], err))
                    continue
                if "error" in result:
                    failures.append((index_of[future.key], result["error"]))
                    continue
                writer.record(result)
                tagged += 1
                bar.update(int(result["documents"]))
    finally:
        client.cancel(futures)  # after Ctrl-C, stop the rest (parts already renamed stay valid)
        writer.write()
    return tagged, failures
