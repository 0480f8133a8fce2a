"""Tagging on Dask: a LocalCluster of 2 worker processes on 127.0.0.1 (one per module) tags input files into
parts equal to single-process tagging, survives a killed worker without losing or repeating a document,
keeps the other parts when a line is malformed and finishes with --resume; bags and dataframes."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_fast import Tagger
from ner_fast.cli import cli
from ner_fast.onnx_export import export_model
from ner_fast.package import PackageError
from ner_fast.partition import parse_lines, plan_partitions, read_partition, worker_tagger
from helpers import SENTENCES, make_checkpoint

distributed = pytest.importorskip("distributed")

WORDS = sorted({w for s in SENTENCES for w in s}) + ["Zyxwv", "straße", "Ω"]


def documents(n: int, seed: int) -> list[str]:
    """n different documents (each starts with its number) of 1 to 30 words."""
    rng = np.random.default_rng(seed)
    return [" ".join([f"d{i}", *(WORDS[k] for k in rng.integers(0, len(WORDS), rng.integers(0, 30)))]) for i in range(n)]


def write_text(path: Path, docs: list[str], blank_every: int = 0) -> Path:
    lines = []
    for i, d in enumerate(docs):
        lines.append(d)
        if blank_every and i % blank_every == 0:
            lines.append("   ")  # blank lines hold no document
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_parts(out: Path) -> list[dict]:
    parts = sorted(out.glob("part-*.jsonl"))
    assert parts
    return [json.loads(line) for p in parts for line in p.read_text(encoding="utf-8").splitlines()]


def expected(package: Path, docs: list[str]) -> list[dict]:
    """Single-process tagging of the same documents, straight from the Tagger."""
    tagger = Tagger.load(package, device="cpu")
    sentences = [d.split() for d in docs]
    return [{"text": d, "tokens": s, "tags": t} for d, s, t in zip(docs, sentences, tagger.tag_batch(sentences))]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dask")
    make_checkpoint(folder / "model", with_pos=False)
    return export_model(folder / "model", folder / "pkg")


@pytest.fixture(scope="module")
def client() -> distributed.Client:
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def test_plan_puts_every_document_in_one_bounded_partition(tmp_path: Path) -> None:
    docs = documents(103, seed=1)
    path = write_text(tmp_path / "in.txt", docs, blank_every=7)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # a byte-order mark is not part of the first document
    plan = plan_partitions([path, path], "text", size=10)
    assert [p.index for p in plan] == list(range(len(plan)))
    assert all(1 <= p.documents <= 10 for p in plan)
    assert [d for p in plan for d in read_partition(p)] == docs + docs
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    first = plan[3]
    assert lines[first.first_line - 1] == docs[30]  # line numbers are the file's (1-based)


def test_a_malformed_json_line_names_its_file_and_line() -> None:
    from ner_fast.corpus import CorpusError

    raw = b'{"text": "a b"}\n\n{"text": 3}\n'
    with pytest.raises(CorpusError, match=r"^in\.jsonl:12: .*string field 'text'"):
        list(parse_lines(raw, "in.jsonl", 10, "jsonl"))
    assert list(parse_lines(b'{"body": "x y"}\n', "in.jsonl", 1, "jsonl", "body")) == ["x y"]
    with pytest.raises(CorpusError, match=r"^in\.txt:2: .*UTF-8"):
        list(parse_lines(b"ok\nstra\xdfe\n", "in.txt", 1, "text"))


def test_a_worker_refuses_a_package_that_is_not_the_clients(package: Path) -> None:
    with pytest.raises(PackageError, match="not the package the run was started with"):
        worker_tagger(package, checksum="0" * 64)


def test_parts_equal_single_process_tagging(package: Path, client: distributed.Client, tmp_path: Path) -> None:
    docs = documents(300, seed=2)
    text = write_text(tmp_path / "in.txt", docs[:200], blank_every=9)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "body": d}) + "\n" for i, d in enumerate(docs[200:])), encoding="utf-8")
    from ner_fast.dask import tag_files

    summary = tag_files([text], tmp_path / "out", package, client=client, input_format="text", partition_size=37,
                        progress=False)
    assert summary["partitions"] == 6 and summary["documents"] == 200
    assert read_parts(tmp_path / "out") == expected(package, docs[:200])
    summary = tag_files([jsonl], tmp_path / "out2", package, client=client, input_format="jsonl", text_field="body",
                        partition_size=37, progress=False)
    assert read_parts(tmp_path / "out2") == expected(package, docs[200:])
    manifest = json.loads((tmp_path / "out2" / "manifest.json").read_text())
    assert manifest["complete"] and all(p["done"] for p in manifest["partitions"])


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
    assert [d["text"] for d in read_parts(tmp_path / "out")] == docs  # each document once, in order


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
    assert read_parts(out) == expected(package, docs)
    assert json.loads((out / "manifest.json").read_text())["complete"]


def test_the_output_folder_is_never_clobbered(package: Path, client: distributed.Client, tmp_path: Path) -> None:
    path = write_text(tmp_path / "in.txt", documents(30, seed=5))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    base = ["tag", str(package), str(path), "--output-dir", str(out), "--input-format", "text", "--scheduler",
            client.scheduler.address]
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 2 and "not empty" in result.output
    result = CliRunner().invoke(cli, [*base, "--resume"])
    assert result.exit_code == 2 and "no readable run to resume" in result.output
    result = CliRunner().invoke(cli, [*base, "--force", "--partition-size", "10"])
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine"
    result = CliRunner().invoke(cli, [*base, "--resume", "--partition-size", "7"])
    assert result.exit_code == 2 and "other settings (partition_size)" in result.output
    result = CliRunner().invoke(cli, [*base, "--force", "--partition-size", "20"])  # fewer parts: the old ones go
    assert result.exit_code == 0 and sorted(p.name for p in out.glob("part-*")) == ["part-00000.jsonl", "part-00001.jsonl"]


def test_tag_bag_and_tag_dataframe(package: Path, client: distributed.Client) -> None:
    import dask.bag as db
    import dask.dataframe as dd
    import pandas as pd

    from ner_fast.dask import tag_bag, tag_dataframe

    docs = documents(50, seed=6)
    want = expected(package, docs)
    assert tag_bag(db.from_sequence(docs, npartitions=3), package).compute() == want
    frame = pd.DataFrame({"id": range(100, 150), "body": docs})
    got = tag_dataframe(dd.from_pandas(frame, npartitions=2), column="body", package=package).compute()
    assert got["id"].tolist() == list(range(100, 150))
    assert got["doc"].tolist() == want
