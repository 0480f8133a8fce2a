"""Tagging on Dask: a LocalCluster of 2 worker processes on 127.0.0.1 (one per module) tags input files into
parts equal to single-process tagging, survives a killed worker without losing or repeating a document,
keeps the other parts when a line is malformed and finishes with --resume; bags and dataframes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_fast.cli import cli
from ner_fast.corpus import CorpusError
from ner_fast.training.export import export_model
from ner_fast.package import PackageError
from ner_fast.partition import plan_partitions, read_partition, worker_tagger
from helpers import SENTENCES, make_checkpoint, write_conll

distributed = pytest.importorskip("distributed")

WORDS = sorted({w for s in SENTENCES for w in s}) + ["Zyxwv", "straße", "Ω", "Mr.", "U.S.-led", "(", ")", '"']


def documents(n: int, seed: int) -> list[str]:
    """n different documents (each starts with its number) of 1 to 60 words, a few of several sentences."""
    rng = np.random.default_rng(seed)
    return [" ".join([f"d{i}", *(WORDS[k] for k in rng.integers(0, len(WORDS), rng.integers(0, 60)))]) for i in range(n)]


def write_text(path: Path, docs: list[str]) -> Path:
    path.write_text("".join(d + "\n" for d in docs), encoding="utf-8")
    return path


def read_parts(out: Path) -> str:
    parts = sorted(out.glob("part-*.jsonl"))
    assert parts
    return "".join(p.read_text(encoding="utf-8") for p in parts)


def single_process(package: Path, docs: list[str], tmp_path: Path) -> str:
    """What `ner-fast tag PACKAGE INPUT --input-format text` writes for the same documents, in one process."""
    path = write_text(tmp_path / "reference.txt", docs)
    result = CliRunner().invoke(cli, ["tag", str(package), str(path), "--input-format", "text", "--output",
                                      str(tmp_path / "reference.jsonl"), "--force"])  # called once per input
    assert result.exit_code == 0, result.output
    text = (tmp_path / "reference.jsonl").read_text(encoding="utf-8")
    assert text.count("\n") == len(docs)
    return text


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dask")
    make_checkpoint(folder / "model", with_pos=False)
    return export_model(folder / "model", folder / "pkg", quantize=None)


@pytest.fixture(scope="module")
def client() -> distributed.Client:
    from ner_fast.dask import _cluster

    # What `tag_files` starts for --local-workers 2: `local_cluster` (LocalCluster(n_workers=2,
    # threads_per_worker=1, processes=True) on 127.0.0.1) with its worker plugin; closed on exit.
    with _cluster(None, None, 2) as client:
        yield client


def _sigint_blocked() -> bool:
    import signal

    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_local_workers_never_take_a_ctrl_c_and_the_client_still_does(client: distributed.Client) -> None:
    # A terminal's Ctrl-C reaches every process of its group: each local worker printed a KeyboardInterrupt
    # traceback under the command's "Aborted!". Their SIGINT is blocked; the process that made the cluster
    # (this one) still takes it.
    blocked = client.run(_sigint_blocked)
    assert len(blocked) == 2 and all(blocked.values()), blocked
    assert not _sigint_blocked()


def _state_machine_keeps(*messages: str) -> list[bool]:
    import logging

    log = logging.getLogger("distributed.worker.state_machine")
    return [bool(log.filter(log.makeRecord(log.name, logging.WARNING, __file__, 0, m, (), None))) for m in messages]


def test_local_workers_drop_only_the_cancel_warning_of_a_stop(client: distributed.Client) -> None:
    # A Ctrl-C closes the local cluster under its running partitions: each worker logged "Async instruction
    # for <Task cancelled ...> ended with CancelledError" under "Aborted!". That message goes, others stay.
    kept = client.run(_state_machine_keeps, "Async instruction for <Task cancelled name='x'> ended with "
                      "CancelledError", "Async instruction for <Task> failed")
    assert len(kept) == 2 and all(k == [False, True] for k in kept.values()), kept
    assert _state_machine_keeps("ended with CancelledError") == [True]  # this process (the client's) untouched


def test_plan_puts_every_document_in_one_bounded_partition(tmp_path: Path) -> None:
    docs = documents(103, seed=1)
    docs[5] = docs[40] = "   "  # blank lines are documents too (output line i answers input line i)
    path = tmp_path / "in.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(docs).encode())  # BOM, CRLF, no final line end
    again = tmp_path / "again.txt"
    again.write_bytes(path.read_bytes())
    plan = plan_partitions([path, again], "text", size=10)
    assert [p.index for p in plan] == list(range(22))
    assert all(1 <= p.documents <= 10 for p in plan)
    assert [d for p in plan for d in read_partition(p)] == docs + docs
    assert [p.first_line for p in plan[:3]] == [1, 11, 21]

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n\n".join(json.dumps({"body": d}) for d in docs) + "\n", encoding="utf-8")
    plan = plan_partitions([jsonl], "jsonl", text_field="body", size=10)  # blank JSON lines hold no document
    assert [d for p in plan for d in read_partition(p)] == docs
    assert [p.first_line for p in plan[:3]] == [1, 21, 41]

    cr = tmp_path / "cr.txt"
    cr.write_bytes("\r".join(docs[:25]).encode())  # classic Mac line ends
    assert [d for p in plan_partitions([cr], "text", size=10) for d in read_partition(p)] == docs[:25]


def test_malformed_lines_name_their_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a b"}\n' * 12 + '\n{"text": 3}\n', encoding="utf-8")
    plan = plan_partitions([path], "jsonl", size=5)
    assert len(plan) == 3
    with pytest.raises(CorpusError, match=rf"^{path}:14: .*string field 'text'"):
        read_partition(plan[2])
    assert read_partition(plan[1]) == ["a b"] * 5
    (tmp_path / "in.txt").write_bytes(b"ok\n" * 7 + b"stra\xdfe\n")
    plan = plan_partitions([tmp_path / "in.txt"], "text", size=3)
    with pytest.raises(CorpusError, match=r"in\.txt:8: .*UTF-8"):
        read_partition(plan[2])


@pytest.mark.parametrize("fmt", ["text", "jsonl", "auto", "conll", "tokens", "gmb"])
def test_an_empty_file_is_one_partition_of_no_documents(tmp_path: Path, fmt: str) -> None:
    """So that its part is written, empty, between the other files' parts, numbered in order."""
    (tmp_path / "a.txt").write_bytes(b"")
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbf")
    if fmt == "jsonl":
        other = write_text(tmp_path / "before.jsonl", [json.dumps({"text": "x y"})] * 3)
    elif fmt in ("auto", "conll"):
        other = write_conll(tmp_path / "before.conll", [[("x", "O"), ("y", "O")]] * 3)
    elif fmt == "gmb":
        other = tmp_path / "before.csv"
        other.write_text("Sentence #,Word,Tag\n" + "".join(f"Sentence: {i},x,O\n,y,O\n" for i in range(3)))
    else:
        other = write_text(tmp_path / "before.txt", ["x y"] * 3)
    plan = plan_partitions([other, tmp_path / "a.txt", tmp_path / "b.txt"], fmt, size=2)
    assert [p.index for p in plan] == [0, 1, 2, 3]
    assert [p.source for p in plan] == [str(other)] * 2 + [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    if fmt in ("text", "jsonl"):
        assert [(p.documents, read_partition(p)) for p in plan] == [(2, ["x y"] * 2), (1, ["x y"]), (0, []), (0, [])]
    else:  # a corpus: its sentences travel with the partition, as tokens
        xy = ("x", "y")
        assert [(p.documents, p.sentences) for p in plan] == [(2, (xy, xy)), (1, (xy,)), (0, ()), (0, ())]


def test_blank_lines_are_documents_of_raw_text_and_nothing_in_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_bytes(b"\xef\xbb\xbf \n\n")
    plan = plan_partitions([path], "text")
    assert [(p.documents, read_partition(p)) for p in plan] == [(2, [" ", ""])]
    plan = plan_partitions([path], "jsonl")
    assert [(p.documents, read_partition(p)) for p in plan] == [(0, [])]


def test_a_worker_refuses_a_package_that_is_not_the_clients(package: Path) -> None:
    with pytest.raises(PackageError, match="not the package the run was started with"):
        worker_tagger(package, checksum="0" * 64)


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_parts_equal_single_process_tagging(package: Path, client: distributed.Client, tmp_path: Path) -> None:
    docs = documents(300, seed=2)
    docs[17] = ""
    reference = single_process(package, docs, tmp_path).split("\n")
    text = write_text(tmp_path / "in.txt", docs[:200])
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "body": d}) + "\n" for i, d in enumerate(docs[200:])), encoding="utf-8")
    from ner_fast.dask import tag_files

    summary = tag_files([text], tmp_path / "out", package, client=client, input_format="text", partition_size=37,
                        progress=False)
    assert summary["partitions"] == 6 and summary["documents"] == 200
    assert read_parts(tmp_path / "out") == "\n".join(reference[:200]) + "\n"  # byte for byte
    summary = tag_files([jsonl], tmp_path / "out2", package, client=client, input_format="jsonl", text_field="body",
                        partition_size=37, progress=False)
    assert summary["partitions"] == 3
    assert read_parts(tmp_path / "out2") == "\n".join(reference[200:])
    manifest = json.loads((tmp_path / "out2" / "manifest.json").read_text())
    assert manifest["complete"] and all(p["done"] for p in manifest["partitions"])

    # A corpus (sniffed: .conll): its sentences are tagged as the tokens they are, as `ner-fast tag FILE
    # --output-format jsonl` tags them (they were joined by spaces and tokenized and split again: "Mr ." lost
    # its entity, a 300-token sentence became two). Sentences past the largest bucket and tokens that the
    # tokenizer would split are among them.
    sentences = [d.split() for d in docs[:40] if d] + [["Mr", ".", *docs[3].split()], docs[5].split() * 12]
    conll = write_conll(tmp_path / "in.conll", [[(w, "O") for w in s] for s in sentences])
    tag_files([conll], tmp_path / "out3", package, client=client, partition_size=15, progress=False)
    result = CliRunner().invoke(cli, ["tag", str(package), str(conll), "--output-format", "jsonl", "--output",
                                      str(tmp_path / "conll.jsonl")])
    assert result.exit_code == 0, result.output
    lines = read_parts(tmp_path / "out3").splitlines()
    assert "\n".join(lines) + "\n" == (tmp_path / "conll.jsonl").read_text(encoding="utf-8")  # byte for byte
    assert [json.loads(line)["tokens"] for line in lines] == sentences and len(sentences[-1]) > 300


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_an_empty_file_among_others_gets_an_empty_part(package: Path, client: distributed.Client, tmp_path: Path) -> None:
    docs = documents(30, seed=8)
    text = write_text(tmp_path / "in.txt", docs)
    (tmp_path / "empty.txt").write_bytes(b"")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["tag", str(package), str(text), str(tmp_path / "empty.txt"), "--output-dir", str(out),
                                      "--input-format", "text", "--partition-size", "20",
                                      "--scheduler", client.scheduler.address])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"]
    parts = {p["part"]: (p["source"], p["documents"]) for p in manifest["partitions"]}
    assert parts == {"part-00000.jsonl": (str(text), 20), "part-00001.jsonl": (str(text), 10),
                     "part-00002.jsonl": (str(tmp_path / "empty.txt"), 0)}
    assert (out / "part-00002.jsonl").read_bytes() == b""
    tagged = read_parts(out)
    assert tagged == single_process(package, docs, tmp_path)
    assert any(json.loads(line)["entities"] for line in tagged.splitlines())  # the other file is tagged, entities and all

    _named_as_a_tagging_folder(out, package, text)


def _named_as_a_tagging_folder(out: Path, package: Path, text: Path) -> None:
    """Its manifest.json has a package's name: tag/info said "manifest.json: its files field must be ...", train
    "--out is a model package", and export --force wrote a package's manifest over the one listing the parts."""
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    what = f"{out}: a `ner-fast tag --output-dir` folder (tagged text, not a model)"
    for args, code, message in ((["tag", str(out), "--text", "Paris"], 1, f"{what}, not a model package"),
                                (["info", str(out)], 1, f"{what}, not a model package"),
                                (["evaluate", str(out), str(text)], 1, f"{what}, not a training run folder"),
                                (["train", "--init", str(out), "--out", str(out.parent / "r")], 2,
                                 f"{what}; give a training run"),
                                (["train", "--out", str(out), "--force"], 2, f"{out} is a `ner-fast tag --output-dir`"),
                                (["export", str(package.parent / "model"), "--out", str(out), "--force"], 2,
                                 f"{out} is a `ner-fast tag --output-dir` folder")):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == code and message in result.output and "Traceback" not in result.output, result.output
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_a_run_whose_every_partition_failed_is_still_a_tagging_folder(package: Path, client: distributed.Client,
                                                                       tmp_path: Path) -> None:
    # Its manifest and no part: it read as a package, since the kind was told by the parts.
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "unterminated\n', encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["tag", str(package), str(path), "--output-dir", str(out), "--input-format", "jsonl",
                                      "--scheduler", client.scheduler.address])
    assert result.exit_code == 1 and f"{path}:1: not a JSON object" in result.output, result.output
    assert [f.name for f in out.iterdir()] == ["manifest.json"]
    _named_as_a_tagging_folder(out, package, path)


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_a_killed_worker_loses_and_duplicates_no_document(package: Path, client: distributed.Client, tmp_path: Path) -> None:
    from ner_fast.dask import tag_files

    docs = documents(3000, seed=3)
    path = write_text(tmp_path / "in.txt", docs)
    before = client.run(os.getpid)
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if any("ner-fast-tag" in str(k) for k in keys)]
            if busy and len(list((tmp_path / "out").glob("part-*.jsonl"))) >= 2:
                os.kill(before[busy[0]], signal.SIGKILL)
                killed.append(before[busy[0]])
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    try:
        summary = tag_files([path], tmp_path / "out", package, client=client, input_format="text", partition_size=40,
                            progress=False)
    finally:
        killer.join()
    assert killed, "no worker was busy: the run ended before the kill"
    client.wait_for_workers(2, timeout=60)
    assert killed[0] not in client.run(os.getpid).values()  # the worker really died (its nanny started another)
    assert summary["documents"] == 3000
    got = [json.loads(line)["text"] for line in read_parts(tmp_path / "out").splitlines()]
    assert got == docs  # each document once, in order


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_a_bad_line_keeps_the_other_parts_and_resume_completes(package: Path, client: distributed.Client, tmp_path: Path) -> None:
    docs = documents(120, seed=4)
    path = tmp_path / "in.jsonl"
    lines = [json.dumps({"text": d}) for d in docs]
    good = lines[57]
    lines[57] = '{"text": "unterminated'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["tag", str(package), str(path), "--output-dir", str(out), "--input-format", "jsonl", "--partition-size", "25",
            "--scheduler", client.scheduler.address]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert f"{path}:58: not a JSON object" in result.output and "Traceback" not in result.output
    assert f"(1 of 5 partitions failed; the 4 parts done are kept in {out}: fix the input" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["done"] for p in manifest["partitions"]] == [True, True, False, True, True]
    assert sorted(p.name for p in out.glob("part-*")) == [f"part-0000{i}.jsonl" for i in (0, 1, 3, 4)]
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*")}

    lines[57] = good
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert CliRunner().invoke(cli, args).exit_code == 2  # a non-empty folder needs --resume or --force
    result = CliRunner().invoke(cli, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*") if p.name in kept} == kept  # not redone
    assert read_parts(out) == single_process(package, docs, tmp_path)
    assert json.loads((out / "manifest.json").read_text())["complete"]


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_resume_after_a_killed_client_gives_the_single_process_output(package: Path, client: distributed.Client,
                                                                       tmp_path: Path) -> None:
    import subprocess
    import sys

    docs = documents(2000, seed=7)
    path = write_text(tmp_path / "in.txt", docs)
    out = tmp_path / "out"
    args = [str(package), str(path), "--output-dir", str(out), "--input-format", "text", "--partition-size", "25",
            "--scheduler", client.scheduler.address]
    run = subprocess.Popen([sys.executable, "-c", "from ner_fast.cli import main; main()", "tag", *args],
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("part-*.jsonl"))) < 3 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        run.kill()  # the client dies mid-run, as with a lost terminal or an out-of-memory kill
    finally:
        run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL
    manifest = json.loads((out / "manifest.json").read_text())
    assert not manifest["complete"]  # it was interrupted
    result = CliRunner().invoke(cli, ["tag", *args, "--resume"])
    assert result.exit_code == 0, result.output
    assert read_parts(out) == single_process(package, docs, tmp_path)
    assert json.loads((out / "manifest.json").read_text())["complete"]


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_the_output_folder_is_never_clobbered(package: Path, client: distributed.Client, tmp_path: Path) -> None:
    path = write_text(tmp_path / "in.txt", documents(30, seed=5))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    base = ["tag", str(package), str(path), "--output-dir", str(out), "--input-format", "text", "--scheduler",
            client.scheduler.address]
    for extra in ([], ["--resume"]):
        result = CliRunner().invoke(cli, [*base, *extra])
        assert result.exit_code == 2 and "holds other files (notes.txt)" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    result = CliRunner().invoke(cli, [*base, "--force", "--partition-size", "10"])
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine"
    result = CliRunner().invoke(cli, [*base, "--force", "--resume", "--partition-size", "7"])
    assert result.exit_code == 2 and "--resume or --force" in result.output
    result = CliRunner().invoke(cli, [*base, "--force", "--partition-size", "20"])  # fewer parts: the old ones go
    assert result.exit_code == 0 and sorted(p.name for p in out.glob("part-*")) == ["part-00000.jsonl", "part-00001.jsonl"]
    assert (out / "notes.txt").read_text() == "mine"

    (out / "notes.txt").unlink()
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 2 and "holds a tagging run: --resume to finish it" in result.output
    result = CliRunner().invoke(cli, [*base, "--resume", "--partition-size", "7"])
    assert result.exit_code == 2 and "other settings (partition_size)" in result.output
    # A setting only the earlier run had (its --labels map; none given now) is named too: the reason was "()".
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["settings"]["labels"] = {"per": "PERSON"}
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(cli, [*base, "--resume", "--partition-size", "20"])
    assert result.exit_code == 2 and "other settings (labels);" in result.output
    (out / "manifest.json").unlink()  # without it, nothing says the parts are ours: never overwritten
    result = CliRunner().invoke(cli, [*base, "--force"])
    assert result.exit_code == 2 and "part-00000.jsonl is not an output of this command that it can recognise" in result.output


def test_a_folder_another_run_is_writing_is_refused(package: Path, tmp_path: Path) -> None:
    # Two runs on one folder (the second with --force) wrote each other's parts under one manifest, and both
    # exited 0. The second is refused while the first holds the folder, before it reads or removes anything.
    import subprocess
    import sys

    path = write_text(tmp_path / "in.txt", documents(3, seed=6))
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")  # the first run's, as far as the second can tell
    hold = "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = CliRunner().invoke(cli, ["tag", str(package), str(path), "--output-dir", str(out), "--input-format",
                                          "text", "--local-workers", "1", "--force"])
        assert result.exit_code == 1 and "another ner-fast tag --output-dir is writing this folder now" in result.output
        assert "Traceback" not in result.output and (out / "manifest.json").read_text() == "{}"
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_tag_bag_and_tag_dataframe(package: Path, client: distributed.Client, tmp_path: Path) -> None:
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd

    from ner_fast.dask import tag_bag, tag_dataframe

    docs = documents(50, seed=6)
    want = [json.loads(line) for line in single_process(package, docs, tmp_path).splitlines()]
    assert tag_bag(db.from_sequence(docs, npartitions=3), package).compute() == want
    frame = pd.DataFrame({"id": range(100, 150), "body": docs})
    got = tag_dataframe(dd.from_pandas(frame, npartitions=2), column="body", package=package).compute()
    assert got["id"].tolist() == list(range(100, 150))
    assert got["doc"].tolist() == want


def test_what_tag_bag_and_tag_dataframe_cannot_take_is_refused_when_the_graph_is_built(package: Path) -> None:
    # A breaker trial: an `into` column already there (the text column too) was replaced silently; a list, a
    # pandas DataFrame or a Series failed with "'list' object has no attribute 'map_partitions'" and the like.
    import dask.dataframe as dd
    import pandas as pd

    from ner_fast.dask import tag_bag, tag_dataframe

    frame = dd.from_pandas(pd.DataFrame({"text": ["Paris is big."] * 4, "doc": range(4)}), npartitions=2)
    for into, said in (("doc", "into='doc': already a column"), ("text", "into='text': already a column"),
                       ("", "into='': name the new column")):
        with pytest.raises(ValueError, match=said):
            tag_dataframe(frame, package=package, into=into)
    with pytest.raises(TypeError, match=r"^tag_bag takes a dask.bag.Bag, not a list"):
        tag_bag(["Paris"], package)
    with pytest.raises(TypeError, match=r"^tag_dataframe takes a Dask DataFrame, not a pandas.DataFrame"):
        tag_dataframe(frame.compute(), package=package)
    with pytest.raises(TypeError, match=r"^tag_dataframe takes a Dask DataFrame, not a dask\S*\.Series"):
        tag_dataframe(frame["text"], package=package)
    if hasattr(frame, "to_legacy_dataframe"):  # dask 2024: the legacy API's DataFrame, another class, is one too
        legacy = frame.to_legacy_dataframe()
        assert list(tag_dataframe(legacy, package=package, into="tagged").columns) == ["text", "doc", "tagged"]


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_a_missing_value_is_named_by_its_row(package: Path, client: distributed.Client) -> None:
    # It said "text 3 of the partition is NAType <NA>": which partition, which row?
    import dask.dataframe as dd
    import pandas as pd

    from ner_fast.dask import tag_dataframe

    rows = pd.DataFrame({"text": ["Paris is big."] * 8}, index=[f"r{i}" for i in range(8)])
    rows.loc["r5", "text"] = None
    with pytest.raises(TypeError, match="^the text at index 'r5' is "):
        tag_dataframe(dd.from_pandas(rows, npartitions=2), package=package, into="tagged").compute()


def test_a_missing_value_is_refused_not_tagged_as_its_repr(package: Path) -> None:
    # The partition function made every value a str: None, NaN and pandas' NA became the texts "None",
    # "nan" and "<NA>" (tagged: an entity "NA"), bytes b"Paris" the text "b'Paris'" (a breaker trial).
    import pandas as pd

    from ner_fast.partition import tag_texts

    assert len(tag_texts(pd.Series(["Paris is big.", "Rome too."]), package)) == 2
    for value, shown in ((None, "NoneType None"), (float("nan"), "float nan"), (pd.NA, "NAType <NA>"),
                         (b"Paris", "bytes b'Paris'")):
        with pytest.raises(TypeError, match=rf"^text 1 of the partition is {shown}, not a str: drop or fill"):
            tag_texts(["Paris is big.", value], package)
        with pytest.raises(TypeError, match=rf"^the text at index 'b' is {shown}, not a str"):  # a Series: its label
            tag_texts(pd.Series(["Paris is big.", value], index=["a", "b"], dtype=object), package)
    # One str was tagged a character at a time, a DataFrame as its column names.
    with pytest.raises(TypeError, match="^the partition function takes an iterable of texts, not one str$"):
        tag_texts("Angela Merkel", package)
    with pytest.raises(TypeError, match=r"not a DataFrame: give its text column, df\['text'\]"):
        tag_texts(pd.DataFrame({"text": ["Angela Merkel in Paris"]}), package)
    with pytest.raises(TypeError, match="ordered iterable of texts, not a dict"):  # the rule of Tagger.pipe too
        tag_texts({"Angela Merkel": 1}, package)


def test_a_worker_never_tags_with_a_package_edited_in_place_since_it_opened_it(package: Path, tmp_path: Path) -> None:
    # onnxruntime maps the weights file: a worker's kept tagger tagged with weights zeroed in place, no
    # checksum asked (a breaker trial). The files are looked at before each partition; changed, the package
    # is opened and verified again.
    import shutil

    from ner_fast.package import package_checksum
    from ner_fast.partition import tag_texts

    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    checksum = package_checksum(copy)
    texts = documents(20, seed=3)
    first = tag_texts(texts, copy, checksum)
    weights = copy / "weights.onnx.data"
    original = weights.read_bytes()
    with open(weights, "r+b") as f:  # in place: the same file, the same size
        f.write(bytes(len(original)))
    with pytest.raises(PackageError, match="weights.onnx.data: sha256 does not match the manifest"):
        tag_texts(texts, copy, checksum)
    weights.write_bytes(original)
    assert tag_texts(texts, copy, checksum) == first and first


def test_only_the_parts_its_manifest_plans_belong_to_a_run(tmp_path: Path) -> None:
    """A user's own part-*.jsonl beside a run is not the run's: --force must never delete it."""
    from ner_fast.dask import MANIFEST_FILE, run_files

    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"settings": {}, "partitions": [{"part": "part-00000.jsonl"}]}))
    (tmp_path / "part-00000.jsonl").write_text("{}\n")
    (tmp_path / "part-99999.jsonl").write_text("mine\n")
    assert run_files(tmp_path) == {MANIFEST_FILE, "part-00000.jsonl"}


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_resume_redoes_a_truncated_part_and_keeps_the_whole_ones(package: Path, client: distributed.Client,
                                                                 tmp_path: Path) -> None:
    docs = documents(100, seed=8)
    path = write_text(tmp_path / "in.txt", docs)
    out = tmp_path / "out"
    args = ["tag", str(package), str(path), "--output-dir", str(out), "--input-format", "text", "--partition-size", "20",
            "--scheduler", client.scheduler.address]
    assert CliRunner().invoke(cli, args).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(len(p["part_sha256"]) == 64 for p in manifest["partitions"])
    damaged = out / "part-00003.jsonl"
    damaged.write_bytes(damaged.read_bytes()[:-30])  # cut mid-line, as a full disk or a stray edit would
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*") if p != damaged}
    result = CliRunner().invoke(cli, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert read_parts(out) == single_process(package, docs, tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("part-*") if p != damaged} == kept  # not redone


@pytest.mark.slow  # starts a local cluster of one worker
def test_a_failing_partition_is_one_line_without_the_dask_block(package: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a b"}\n{"text": 3}\n', encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", "from ner_fast.cli import main; main()", "tag", str(package), str(path),
                          "--output-dir", str(tmp_path / "out"), "--input-format", "jsonl", "--local-workers", "1"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert f"Error: {path}:2: expected a JSON object" in run.stderr and "(1 of 1 partitions failed; no part is done in" in run.stderr
    for dask_block in ("Compute Failed", "Key:", "Function:", "Traceback"):
        assert dask_block not in run.stderr, run.stderr


def test_a_package_that_reads_pos_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    # Workers tag raw text; a POS package used to fail every partition, then blame the input.
    make_checkpoint(tmp_path / "model", with_pos=True)
    package = Path(export_model(tmp_path / "model", tmp_path / "pkg", quantize=None))
    path = write_text(tmp_path / "in.txt", documents(3, seed=2))
    result = CliRunner().invoke(cli, ["tag", str(package), str(path), "--output-dir", str(tmp_path / "out"),
                                      "--input-format", "text", "--local-workers", "1"])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: {package.resolve()}: this model reads POS tags, which a cluster run does not pass to its workers:"
        " use a package trained without POS input"]
    assert not (tmp_path / "out").exists()


def test_inputs_that_would_be_lost_or_tagged_twice_are_refused_before_anything_is_written(package: Path,
                                                                                          tmp_path: Path) -> None:
    # A file given twice (also by another spelling) was tagged twice; a pipe of raw text failed with "File or
    # stream is not seekable", naming nothing (its workers read it again); a part of an earlier run given as
    # input is what --force removes; --text-field was accepted for raw text, which has no fields, and an empty
    # one read the field "text".
    path = write_text(tmp_path / "in.txt", documents(3, seed=4))
    out = tmp_path / "out"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "held").mkdir()
    part = write_text(tmp_path / "held" / "part-00000.jsonl", ["{}"])
    cases = [([str(path), str(path)], [], f"INPUT: {path} is given twice"),
             ([str(path), str(tmp_path / "held" / ".." / "in.txt")], [], f"(also as {path})"),
             ([str(fifo)], [], f"INPUT: {fifo} is not a regular file"),
             ([str(path)], ["--text-field", "body"], "--text-field: names the documents' field in JSON lines"),
             ([str(path)], ["--text-field", "text"], "--text-field: names the documents' field in JSON lines"),
             ([str(path)], ["--input-format", "jsonl", "--text-field", ""], "--text-field: is empty"),  # was "text"
             ([str(part)], ["--force"], f"{part} is a file of a tagging run in {part.parent}")]
    for inputs, extra, said in cases:
        target = part.parent if "--force" in extra else out
        result = CliRunner().invoke(cli, ["tag", str(package), *inputs, "--output-dir", str(target), "--input-format",
                                          "text", "--local-workers", "1", *extra])
        assert result.exit_code == 2 and said in result.output, result.output
        assert "Traceback" not in result.output
    assert not out.exists() and [p.name for p in part.parent.iterdir()] == ["part-00000.jsonl"]


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_other_inputs_inside_the_output_folder_and_a_corpus_from_a_pipe_are_tagged(
        package: Path, client: distributed.Client, tmp_path: Path) -> None:
    # Refused by the first form of the rules above (review): an input inside OUT that no run writes, and a
    # corpus from a pipe (read once: its sentences travel to the workers).
    out = tmp_path / "out"
    out.mkdir()
    mine = write_text(out / "in.txt", documents(4, seed=1))
    result = CliRunner().invoke(cli, ["tag", str(package), str(mine), "--output-dir", str(out), "--input-format", "text",
                                      "--scheduler", client.scheduler.address, "--force"])
    assert result.exit_code == 0, result.output
    assert (out / "in.txt").read_text() == "".join(d + "\n" for d in documents(4, seed=1))
    assert read_parts(out) == single_process(package, documents(4, seed=1), tmp_path)
    conll = write_conll(tmp_path / "in.conll", [[(w, "O") for w in s] for s in SENTENCES])
    pipe = subprocess.Popen(["cat", str(conll)], stdout=subprocess.PIPE)
    try:
        result = CliRunner().invoke(cli, ["tag", str(package), f"/dev/fd/{pipe.stdout.fileno()}", "--output-dir",
                                          str(tmp_path / "piped"), "--input-format", "conll",
                                          "--scheduler", client.scheduler.address])
    finally:
        pipe.wait(timeout=30)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["tokens"] for line in read_parts(tmp_path / "piped").splitlines()] == SENTENCES


@pytest.mark.slow  # a cluster of 2 worker processes (shared by the module)
def test_resume_knows_an_input_by_another_spelling_of_its_path(package: Path, client: distributed.Client,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_text(tmp_path / "in.txt", documents(5, seed=3))
    out = tmp_path / "out"
    base = ["tag", str(package), "--output-dir", str(out), "--input-format", "text", "--scheduler",
            client.scheduler.address]
    assert CliRunner().invoke(cli, [*base, str(path)]).exit_code == 0
    before = read_parts(out)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, [*base, "in.txt", "--resume"])  # refused as "other inputs" before
    assert result.exit_code == 0, result.output
    assert read_parts(out) == before
    write_text(tmp_path / "other.txt", documents(5, seed=3))  # the same bytes, another file
    result = CliRunner().invoke(cli, [*base, "other.txt", "--resume"])
    assert result.exit_code == 2 and "was started on other inputs" in result.output
    # A folder moved with its inputs (or a shared file system mounted elsewhere) resumes by the paths as typed.
    moved = tmp_path / "moved"
    moved.mkdir()
    monkeypatch.chdir(tmp_path / "moved")
    write_text(moved / "in.txt", documents(5, seed=3))
    relative = ["tag", str(package), "--output-dir", "out", "--input-format", "text", "--scheduler",
                client.scheduler.address]
    result = CliRunner().invoke(cli, [*relative, "in.txt"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((moved / "out" / "manifest.json").read_text())
    assert [p["path"] for p in manifest["partitions"]] == [str(moved / "in.txt")]  # resolved by the client
    manifest["partitions"][0]["done"] = False
    (moved / "out" / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "moved").rename(tmp_path / "moved-again")
    monkeypatch.chdir(tmp_path / "moved-again")
    result = CliRunner().invoke(cli, [*relative, "in.txt", "--resume"])
    assert result.exit_code == 0, result.output
    assert read_parts(tmp_path / "moved-again" / "out") == before


def test_an_unreadable_manifest_is_said_so(package: Path, tmp_path: Path) -> None:
    path = write_text(tmp_path / "in.txt", documents(10, seed=9))
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"format_version": 1, "settings": {"package": {"pa')  # cut off
    (out / "part-00000.jsonl").write_text("{}\n")
    for extra in ([], ["--resume"], ["--force"]):
        result = CliRunner().invoke(cli, ["tag", str(package), str(path), "--output-dir", str(out), "--input-format",
                                          "text", *extra])
        assert result.exit_code == 2 and "the manifest is unreadable" in result.output, result.output
        assert "not an output of this command" not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "part-00000.jsonl"]


@pytest.mark.parametrize("server", ["closed port", "silent", "ner-fast serve"])
def test_a_scheduler_that_is_not_there_is_one_line_in_bounded_time(package: Path, tmp_path: Path, server: str) -> None:
    """A closed port, a server that accepts and never answers, an HTTP server: one line, exit 1, no manifest."""
    import socket
    from contextlib import ExitStack

    from ner_fast.serve.app import create_app
    from ner_fast.tagger import Tagger
    from serve.serving import running

    path = write_text(tmp_path / "in.txt", documents(5, seed=10))
    with ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        address = "tcp://127.0.0.1:%d" % listener.getsockname()[1]
        if server == "silent":
            listener.listen()  # the kernel accepts connections; nobody ever reads or answers
        elif server == "ner-fast serve":
            url = stack.enter_context(running(create_app(Tagger.load(package, device="cpu", threads=1))))
            address = "tcp://" + url.removeprefix("http://")
        else:
            listener.close()  # nothing listens on that port any more
        started = time.monotonic()
        result = CliRunner().invoke(cli, ["tag", str(package), str(path), "--output-dir", str(tmp_path / "out"),
                                          "--input-format", "text", "--scheduler", address, "--scheduler-timeout", "2"])
        took = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: --scheduler {address}") and len(result.output.splitlines()) == 1
    assert took < 10
    assert not (tmp_path / "out").exists()  # the next run is not refused, and no empty folder is left behind


def test_the_scheduler_check_works_inside_an_event_loop() -> None:
    """A notebook runs `tag_files` inside an event loop: the check must not need to start its own there."""
    import asyncio
    import socket

    from ner_fast.dask import SchedulerUnreachable, check_scheduler

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = "tcp://127.0.0.1:%d" % listener.getsockname()[1]

        async def inside() -> None:
            check_scheduler(address, timeout=0.5)

        with pytest.raises(SchedulerUnreachable, match="no answer from a Dask scheduler within 0.5 s"):
            asyncio.run(inside())


def test_a_label_map_is_resolved_on_the_client_and_applied_by_the_workers(package: Path, client: distributed.Client,
                                                                           tmp_path: Path) -> None:
    import dask.bag as db

    from ner_fast.dask import tag_bag, tag_files

    mapping = tmp_path / "labels.json"
    mapping.write_text(json.dumps({"geo": "PLACE", "tim": None}), encoding="utf-8")
    docs = documents(40, seed=8)
    path = write_text(tmp_path / "in.txt", docs)
    result = CliRunner().invoke(cli, ["tag", str(package), str(path), "--input-format", "text", "--labels", str(mapping),
                                      "--output", str(tmp_path / "reference.jsonl")])
    assert result.exit_code == 0, result.output
    want = [json.loads(line) for line in (tmp_path / "reference.jsonl").read_text(encoding="utf-8").splitlines()]
    labels = {e["label"] for d in want for e in d["entities"]}
    assert "PLACE" in labels and not labels & {"geo", "tim"}
    bag = tag_bag(db.from_sequence(docs, npartitions=3), package, labels=str(mapping))
    mapping.unlink()  # read once, on the client: the workers get the map itself
    assert bag.compute() == want
    mapping.write_text(json.dumps({"geo": "PLACE", "tim": None}), encoding="utf-8")
    tag_files([path], tmp_path / "out", package, client=client, input_format="text", partition_size=7,
              labels=str(mapping), progress=False)
    assert [json.loads(line) for line in read_parts(tmp_path / "out").splitlines()] == want
