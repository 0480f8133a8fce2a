"""The pretrained packages bundled with ner-fast (`package.BUNDLED`): how they are built and how they are scored.

`./dev.sh build-model` trains the default model on the bundled GMB corpus, one network distilled from the
bundled ensemble (GloVe rows, re-cased copies), and then runs `python -m ner_fast.training.bundle RUN_DIR
--min-word-count 1 --out src/ner_fast/models/default`, i.e. `build_default_package`: export the best checkpoint as an int8 package (every
word kept: its GloVe words never occur in training), tag the run's validation split with that package
through `Tagger` (what a user gets, int8 and all), and write the package, with its provenance in
`model.json` (`provenance`: source commit, command, training settings, the validation entity F1 overall
and per type), to `package.DEFAULT_PACKAGE` (`src/ner_fast/models/default/`, package data).
`./dev.sh build-model ensemble` trains the two members of the ensemble (the default recipe, and the same
with a wider character CNN) and runs it with `--ensemble RUN_DIR2 --min-word-count 2 --out
src/ner_fast/models/ensemble` (`package.ENSEMBLE_PACKAGE`): one int8 ensemble package, the embeddings of
words seen once in training dropped, as they measured no loss.

`score_tagger` (`tag_corpus`, then `score_tags`) / `validation_corpus` are MXNet-free (the test of the bundled package runs them
without MXNet); the export step needs onnx.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from ner_fast.atomic import atomic_dir
from ner_fast.config import default_of, portable_train
from ner_fast.corpus import Corpus
from ner_fast.metrics import PosCounts, Scores, TagScheme, score
from ner_fast.option_table import command_options, row
from ner_fast.package import (
    DEFAULT_QUANTIZE, MANIFEST_FILE, MODEL_FILE, RUN_VOCAB_FILE, claim_folder, load_package, package_files, portable_path,
    write_manifest,
)
from ner_fast.prepare import run_splits
from ner_fast.vocab import RESERVED, Vocabularies

# The most a bundled package may weigh (it ships inside the wheel): issue 24's budget, 20 MB (decimal,
# so within it however MB is read), room for an ensemble whose members carry pretrained vectors.
MAX_BYTES = 20_000_000
# An absolute path within the recorded command (a word, quoted or not, or an option's value after `=`).
_ABSOLUTE = re.compile(r"""(?<=')/[^']*(?=')|(?<=")/[^"]*(?=")|(?:(?<=[\s=])|^)/[^\s'"]+""")


def validation_corpus(train: dict[str, Any]) -> Corpus:
    """The validation sentences of a training run (`prepare.run_splits`)."""
    return run_splits(train)[1]


def frequent_words(training: Corpus, vocabs: Vocabularies, min_count: int) -> int:
    """How many entries of `vocabs.words` (<pad> and <unk> included) are words seen at least `min_count`
    times in `training`: the same count `Vocabularies.build` keeps with `min_word_freq`. The vocabulary
    lists words most frequent first, so they are its first entries (`export.truncate_words` keeps
    them). Raises ValueError when `vocabs` was not built from `training`, or no word is seen `min_count` times."""
    kept = Vocabularies.build(training, lowercase=vocabs.lowercase, min_word_freq=min_count).words.itos
    if vocabs.words.itos[: len(kept)] != kept:
        raise ValueError("the run's word vocabulary was not built from its training sentences")
    if len(kept) <= vocabs.words.first_id:
        raise ValueError(f"no word is seen {min_count:,} times in the run's {training.n_tokens:,} training tokens:"
                         " a lower --min-word-count keeps some")
    return len(kept)


#: Sentences a `tag_batch` call when scoring a package: `ner-fast evaluate`'s default (`--batch-size`), so the F1 a
#: package records is the one `evaluate PACKAGE` gives, even for a graph whose answers depend on the batch.
SCORE_BATCH_SIZE: int = row("evaluate", "batch_size").default


def score_tagger(tagger: Any, corpus: Corpus, batch_size: int = SCORE_BATCH_SIZE) -> Scores:
    """Entity P/R/F1 (conlleval, overall and per type) of `tagger`'s tags for `corpus`'s sentences
    (`tag_corpus`, then `score_tags`). An untagged corpus is refused before anything is tagged. A package
    with a POS head tagging a corpus with POS tags: `pos_accuracy`, the share of tokens whose POS tag the
    head gives (as training's validation scores it)."""
    _check_tagged(corpus)
    if not (tagger.pos_tags and corpus.pos):
        return score_tags(tag_corpus(tagger, corpus, batch_size), corpus, tagger.tags)
    tags, pos = tag_corpus(tagger, corpus, batch_size, return_pos=True)
    scores = score_tags(tags, corpus, tagger.tags)
    counts = PosCounts()
    gold = np.array(corpus.pos)
    known = np.isin(gold, tagger.pos_tags[len(RESERVED):])  # not <pad>/<unk>, as a run's POS ids over UNK
    counts.add(np.array([p for sentence in pos for p in sentence]), gold, np.ones(len(gold), bool), known)
    scores.pos_accuracy = counts.accuracy
    return scores


def _check_tagged(corpus: Corpus) -> None:
    if corpus.tags is None:
        raise ValueError(f"{corpus.source}: scoring needs a tagged corpus")


def tag_corpus(tagger: Any, corpus: Corpus, batch_size: int = SCORE_BATCH_SIZE, return_pos: bool = False) -> Any:
    """`tagger`'s tags for `corpus`'s sentences: from `tagger.tag_batch` with the package's own decoding,
    exactly what an application gets (with `return_pos`, `(tags, POS tags of the package's POS head)`).
    POS tags are passed only to a model that reads them."""
    offsets = corpus.offsets.tolist()
    sentences = [corpus.words[a:b] for a, b in zip(offsets, offsets[1:])]
    pos = [corpus.pos[a:b] for a, b in zip(offsets, offsets[1:])] if (tagger.uses_pos and corpus.pos) else None
    return tagger.tag_batch(sentences, pos, batch_size=batch_size, return_pos=return_pos)


def score_tags(predicted: list[list[str]], corpus: Corpus, tags: list[str]) -> Scores:
    """Entity P/R/F1 (conlleval, overall and per type) of the tags `predicted` for `corpus`'s sentences,
    from a model whose tag set is `tags`."""
    _check_tagged(corpus)
    index = {t: i for i, t in enumerate(tags)}
    unknown = sorted(set(corpus.tags) - set(index))
    if unknown:
        raise ValueError(f"{corpus.source}: tags the model does not know: {unknown}")
    gold = np.fromiter((index[t] for t in corpus.tags), dtype=np.int64, count=len(corpus.tags))
    pred = np.fromiter((index[t] for s in predicted for t in s), dtype=np.int64, count=len(corpus.tags))
    return score(gold, pred, corpus.lengths, TagScheme(tags))


def _git(*args: str) -> str | None:
    """Output of a git command in this source tree, or None outside a git checkout."""
    try:
        done = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def _validation_record(scores: Scores, corpus: Corpus, train: dict[str, Any], tagger: Any) -> dict[str, Any]:
    return {
        "corpus": portable_path(corpus.source),
        "split": None if train.get("dev") else list(train.get("split", default_of("split"))),
        "sentences": len(corpus),
        "tokens": corpus.n_tokens,
        "entities": int(sum(t["support"] for t in scores.per_type.values())),
        "f1": scores.f1,
        "precision": scores.precision,
        "recall": scores.recall,
        "per_type": {
            name: {k: t[k] for k in ("f1", "precision", "recall", "support")} for name, t in sorted(scores.per_type.items())
        },
        "measured_with": f"ner_fast.Tagger on this package (onnxruntime, decode {tagger.decode!r}, "
        + ("gold POS input)" if tagger.uses_pos else "no POS input)"),
    }


#: Sentences of the validation split timed one `tag()` call at a time for the recorded p50.
SPEED_SENTENCES = 300


def speed_record(tagger: Any, corpus: Corpus) -> dict[str, Any]:
    """What a bundled package records of its speed (`ner-fast info` shows it): `tag_batch` over the whole
    validation split (tokens/s, onnxruntime's default threads, the tagger's default workers) and the p50 of one `tag()` call
    on the validation sentences of 15 to 25 tokens (the first `SPEED_SENTENCES`), with the CPU
    (`machine.cpu_info`) and the load average, since the figures hold for that machine at that load only."""
    import time

    from ner_fast.machine import cpu_info

    offsets = corpus.offsets.tolist()
    sentences = [corpus.words[a:b] for a, b in zip(offsets, offsets[1:])]
    # A model that reads POS tags gets the corpus's, as `score_tagger` gives them.
    pos = [corpus.pos[a:b] for a, b in zip(offsets, offsets[1:])] if (tagger.uses_pos and corpus.pos) else None
    tagger.tag_batch(sentences[:64], pos[:64] if pos else None)  # sessions warmed up
    start = time.perf_counter()
    tagger.tag_batch(sentences, pos)
    batch_seconds = time.perf_counter() - start
    short = [i for i, s in enumerate(sentences) if 15 <= len(s) <= 25][:SPEED_SENTENCES]
    calls = []
    for i in short:
        start = time.perf_counter()
        tagger.tag(sentences[i], pos[i] if pos else None)
        calls.append(time.perf_counter() - start)
    return {
        "tag_batch_tokens_per_s": round(corpus.n_tokens / batch_seconds),
        "tag_p50_ms": round(float(np.median(calls)) * 1e3, 3) if calls else None,
        "p50_sentences": len(calls),
        "workers": tagger.workers,
        "cpu": cpu_info(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _run_record(run_dir: Path, which: str) -> dict[str, Any]:
    """What provenance records of one training run: its best and last epoch, the epoch of the exported
    parameters (checkpoint `which`; None: an interrupted run's partly trained last epoch), the validation F1
    logged in training for those parameters (`run_dir.logged_validation`; None where none was logged), its
    training settings."""
    from ner_fast.checkpoint import read_config
    from ner_fast.training.run_dir import logged_validation

    best = logged_validation(run_dir, "best")
    exported = best if which == "best" else logged_validation(run_dir, which)
    return {
        "best_epoch": best["epoch"],
        "epochs_trained": best["epochs_trained"],
        "checkpoint_epoch": exported["epoch"],
        "training_valid_f1": exported["f1"],  # MXNet float32, as logged during training, for the exported parameters
        # `validation_corpus` reads `data` back where the path still means something: the bundled corpus
        # (null), or a corpus file relative to the folder the package was built in.
        "training": portable_train(read_config(run_dir)["train"]),
    }


def portable_command(command: str) -> str:
    """`command` with each absolute path in it (a word, quoted or not, or an option's value after `=`) as
    `package.portable_path` records it."""
    return _ABSOLUTE.sub(lambda m: portable_path(m.group()), command)


def build_default_package(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    command: str,
    which: str = "best",
    quantize: str | None = DEFAULT_QUANTIZE,
    ensemble: Sequence[str | os.PathLike[str]] = (),
    min_word_count: int = 1,
) -> tuple[Path, dict[str, Any]]:
    """Export `run_dir`'s checkpoint (with the runs of `ensemble` as one ensemble graph, trained on the
    same data), score it through the tagger on the run's validation split, and write it with its
    provenance to `out` (replaced only once complete). Returns (out, provenance).

    `min_word_count`: keep the embeddings of the words seen at least that often in training only
    (`frequent_words`); the others read as unknown. `command` is recorded as the command that built
    the package. Every path in the provenance (the runs' recorded files (`config.portable_train`), the validation corpus, the
    command's absolute paths) is recorded by the one rule of `package.portable_path`: no path of the
    building machine is shipped. Raises ValueError when the package would weigh more than `MAX_BYTES`.
    """
    from ner_fast.checkpoint import read_config
    from ner_fast.training.export import export_model
    from ner_fast.tagger import Tagger

    run_dir, out = Path(run_dir), Path(out)
    members = [run_dir, *map(Path, ensemble)]
    doc = read_config(run_dir)
    training, corpus = run_splits(doc["train"])
    max_words = None
    if min_word_count > 1:
        max_words = frequent_words(training, Vocabularies.load(run_dir / RUN_VOCAB_FILE), min_word_count)
    # Claimed before any work: a new or empty folder, or an earlier package (replaced only at the end).
    claim = claim_folder(out, "package", package_files, force=None)  # bundle has no --force
    with tempfile.TemporaryDirectory(prefix="ner-fast-build-") as tmp:
        staged = export_model(run_dir, Path(tmp) / "pkg", quantize=quantize, which=which, ensemble=members[1:], max_words=max_words)
        tagger = Tagger.load(staged, device="cpu")
        validation = _validation_record(score_tagger(tagger, corpus), corpus, doc["train"], tagger)
        speed = speed_record(tagger, corpus)
        del tagger  # close its sessions before the files move
        runs = [_run_record(d, which) for d in members]
        provenance = {
            "source_commit": _git("rev-parse", "HEAD"),
            "source_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "command": portable_command(command),
            "checkpoint": which,
            **runs[0],
            # The other members of an ensemble, each as the first run is recorded above.
            "ensemble": runs[1:],
            "min_word_count": min_word_count,
            "words_kept": max_words,
            "validation": validation,
            "speed": speed,
        }
        _publish(staged, provenance, claim)
    return out, provenance


def _publish(staged: Path, provenance: dict[str, Any], claim: Any) -> None:
    """Put `provenance` into the staged package's model.json, re-checksum it, check its size against
    `MAX_BYTES`, and copy it into the claimed output folder (replaced only once complete)."""
    model_path = staged / MODEL_FILE
    info = json.loads(model_path.read_text(encoding="utf-8"))
    info["provenance"] = provenance
    model_path.write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    manifest = json.loads((staged / MANIFEST_FILE).read_text(encoding="utf-8"))
    write_manifest(staged, manifest["files"], manifest["versions"], manifest["format_version"])
    size = sum(load_package(staged).file_sizes.values())  # the rewritten manifest verifies
    if size > MAX_BYTES:
        raise ValueError(f"the package weighs {size:,} bytes, more than the {MAX_BYTES:,} a bundled one may")
    with atomic_dir(claim) as final:
        for path in staged.iterdir():
            shutil.copy2(path, final / path.name)


def requantize_package(
    source: str | os.PathLike[str], out: str | os.PathLike[str], *, command: str,
) -> tuple[Path, dict[str, Any]]:
    """Convert a bundled package written with the per-batch int8 scheme (`int8-dynamic`, what packages
    recorded as "int8" before it had that name), or with the `int8` scheme as it was before its
    `MatMulInteger` weights became unsigned (2026-12-06: "signed-weights"), to today's `int8`, without
    retraining: its int8 weights are symmetric per tensor, which is what `quantize.make_invariant`
    reads, so the converted graph holds exactly the same weights (an ensemble's members are combined
    from their logits: `quantize.ensemble_from_logits`). The validation entity F1 is measured again
    through the tagger on the converted package (the figure before is kept in the conversion record);
    the provenance records the command and the sha256 of the source package's manifest, and keeps an
    earlier conversion's record under `before`. `out` may be `source` (replaced only once complete).
    Returns (out, provenance). Raises ValueError when the source holds nothing to convert or the result
    weighs more than `MAX_BYTES`."""
    import onnx

    from ner_fast.package import graph_file, package_checksum
    from ner_fast.tagger import Tagger
    from ner_fast.training.export import OPSET, _versions
    from ner_fast.training.package_writer import write_package
    from ner_fast.training.quantize import (
        ensemble_from_logits, is_batch_invariant, make_invariant, matmul_weights, old_int8_scheme,
    )

    source, out = Path(source), Path(out)
    pkg = load_package(source)
    graph = onnx.load(str(pkg.graph_path(None)))  # its weights from the package's weights file
    scheme = old_int8_scheme(graph)
    if scheme is None and pkg.model.get("quantization") == "int8":
        raise ValueError(f"{source}: nothing to convert: already today's int8 scheme (batch-invariant, unsigned"
                         f" MatMulInteger weights)")
    if scheme is None:
        raise ValueError(f"{source}: nothing to convert (neither the per-batch int8 scheme nor signed MatMulInteger"
                         f" weights in {graph_file(None)}); export it again with --quantize int8 instead")
    before = pkg.model.get("provenance") or {}
    checksum = package_checksum(source)
    graph = make_invariant(ensemble_from_logits(graph))
    # A format-2 package's character graph (its tables in the same weights file) goes along, converted
    # alike, or the graphs would take character features that no graph of the package computes.
    char_path = pkg.char_graph_path
    chars = make_invariant(onnx.load(str(char_path))) if char_path is not None else None
    for model in (graph, chars):
        if model is None:
            continue
        if not is_batch_invariant(model):
            raise ValueError(f"{source}: the converted graph still depends on its batch")
        for prop in model.metadata_props:
            if prop.key == "ner_fast.quantization":
                prop.value = "int8"
    info = {k: v for k, v in pkg.model.items() if k not in ("format_version", "buckets", "versions", "provenance")}
    info["quantization"] = "int8"
    info["int8_matmul_weights"] = matmul_weights(graph)
    versions = _versions(OPSET)
    versions["trained_with_mxnet"] = str(pkg.model.get("versions", {}).get("trained_with_mxnet", "unknown"))
    claim = claim_folder(out, "package", package_files, force=None)  # bundle has no --force
    with tempfile.TemporaryDirectory(prefix="ner-fast-requantize-") as tmp:
        staged = write_package(Path(tmp) / "pkg", graph, pkg.buckets, info, versions, char_model=chars)
        if "validation" in before:
            tagger = Tagger.load(staged, device="cpu")
            corpus = validation_corpus(before["training"])
            validation = _validation_record(score_tagger(tagger, corpus), corpus, before["training"], tagger)
            speed = speed_record(tagger, corpus)
            del tagger  # close its sessions before the files move
        else:
            validation = speed = None
        conversion = {
            "command": portable_command(command),
            "source_commit": _git("rev-parse", "HEAD"),
            "source_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
            "from": scheme,
            "to": "int8",
            "source_manifest_sha256": checksum,
            "validation_f1_before": (before.get("validation") or {}).get("f1"),
            "before": before.get("requantized"),
        }
        provenance = {**before, "validation": validation, "speed": speed, "requantized": conversion}
        _publish(staged, provenance, claim)
    return out, provenance


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=False)
@command_options("bundle")
def build_command(
    run_dir: Path | None, requantize: Path | None, out: Path, command: str, checkpoint: str, ensemble: tuple[Path, ...],
    min_word_count: int,
) -> None:
    """Export RUN_DIR (a `ner-fast train` folder; with --ensemble, several) as the bundled int8 package,
    with its validation entity F1 measured through the tagger and its provenance in model.json. With
    --requantize PACKAGE instead of RUN_DIR: convert a package of the per-batch int8 scheme, or one with
    signed MatMulInteger weights, to today's `int8` (`requantize_package`), e.g.
    `python -m ner_fast.training.bundle --requantize src/ner_fast/models/ensemble --out src/ner_fast/models/ensemble
    --command "..."`."""
    from ner_fast.cli.errors import user_errors

    if (run_dir is None) == (requantize is None):
        raise click.UsageError("give either RUN_DIR or --requantize PACKAGE")
    with user_errors():
        if requantize is not None:
            path, provenance = requantize_package(requantize, out, command=command)
        else:
            path, provenance = build_default_package(
                run_dir, out, command=command, which=checkpoint, ensemble=ensemble, min_word_count=min_word_count
            )
    v = provenance["validation"]
    if v is None:
        click.echo(f"wrote {path} (its source recorded no validation F1 to measure again)")
        return
    size = sum(load_package(path, verify=False).file_sizes.values())
    per_type = ", ".join(f"{k} {t['f1']:.4f}" for k, t in v["per_type"].items())
    click.echo(
        f"wrote {path} ({size / 1e6:.1f} MB): validation entity F1 {v['f1']:.4f} (P {v['precision']:.4f},"
        f" R {v['recall']:.4f}) on {v['sentences']:,} sentences through the tagger; {per_type}"
    )


if __name__ == "__main__":
    build_command()
