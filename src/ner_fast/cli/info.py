"""`ner-fast info [PACKAGE]`: a model package's card (`model_card`, printed by `format_card` or as JSON).

Everything comes from the package itself: `model.json` (labels and their descriptions, quantization,
network, `provenance` when the package records how it was built and scored: the bundled one does),
`manifest.json` (checksums, versions) and the files' sizes. Batch invariance is read from the package
too: its graphs are searched for the operators that quantize activations with one scale per batch
(then a sentence's scores depend on what it is batched with), and `model.json`'s `quantization` names
the scheme. Nothing here loads a graph into onnxruntime, so the card is instant.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ner_fast.cli.terminal import echo_json
from ner_fast.cli.loading import PackageArgument
from ner_fast.config import BEFORE_OPTION
from ner_fast.option_table import command_options
from ner_fast.package import BATCH_DEPENDENT_OPS, graph_ops



def model_card(package: str | Path | None = None) -> dict[str, Any]:
    """The card of the package `package` (a folder or a bundled name, `package.package_path`; None: the
    default bundled one), JSON-ready:

    `package` (path, checksum, format version, versions), `labels` (label, description and the
    validation scores of each: f1, precision, recall, support, when recorded), `labels_scored` (where those
    scores come from: "tagger", "logged" for a one-network package's run, None: none), `validation` (measured
    through the tagger: what a bundled package records), `logged_validation` (per member run of a package
    `ner-fast export` made: model_dir, checkpoint, epoch and the dev entity F1 logged in training at that
    epoch, MXNet float32; None where no run logged one), `training`
    (data, command, source commit, epochs, recipe: the training options and architecture, `vectors`: the
    pretrained word vectors it started from with their licence, None without; `requantized`: the weight
    conversions of `bundle --requantize`, oldest first, `_conversions`), `network`,
    `network.char_features`: where the character CNN's features are computed (`_char_features`).
    `size` (bytes, files), `quantization` (scheme, batch_invariant, why, same_on_every_cpu), `speed` (as recorded, with
    its CPU; None when the package records none). Raises `PackageError` for a package that cannot be used.
    """
    from ner_fast.package import (
        bundled_name,
        load_package,
        package_checksum,
        package_path,
        quantization_scheme,
        shown_path,
    )
    from ner_fast.schemes import TagScheme

    folder = package_path(package)
    pkg = load_package(folder)
    model = pkg.model
    provenance = model.get("provenance") or {}
    validation = provenance.get("validation") or {}
    source = model.get("source") or {}
    members = source.get("members") if isinstance(source, dict) else None
    labels, labels_scored = _labels(model, TagScheme(pkg.tags).types, validation, source if not members else None)
    sizes = pkg.file_sizes
    graphs = [name for name in sizes if name.endswith(".onnx")]
    per_batch = sorted(set().union(*(graph_ops(folder / name, BATCH_DEPENDENT_OPS) for name in graphs)))
    scheme = quantization_scheme(model)
    return {
        "package": {
            "path": shown_path(folder),
            "name": bundled_name(folder),
            "checksum": package_checksum(folder),
            "format_version": pkg.manifest.get("format_version"),
            "versions": pkg.manifest.get("versions", {}),
        },
        "labels": labels,
        "labels_scored": labels_scored,
        "validation": {k: validation.get(k) for k in ("corpus", "split", "sentences", "tokens", "entities", "f1",
                                                       "precision", "recall", "measured_with")} if validation else None,
        "logged_validation": _logged_validation(source),
        "training": _training(model, provenance, source),
        "network": {
            "members": len(members) if members else 1,
            "architecture": model.get("architecture"),
            "decode": model.get("decode"),
            "crf": model.get("crf") is not None,
            "uses_pos": model.get("use_pos"),
            "pos_head": bool(model.get("pos_tags")),
            "buckets": pkg.buckets,
            "char_features": _char_features(pkg),
        },
        "size": {"bytes": sum(sizes.values()), "files": sizes},
        "quantization": {
            "scheme": scheme,
            "batch_invariant": not per_batch,
            "per_batch_ops": per_batch,
            # Integer sums the same on every CPU: float32 graphs, and int8 ones whose MatMulInteger weights
            # are unsigned (model.json `int8_matmul_weights`, written since 2026-12-06); signed ones (or
            # packages from before, which do not say) may saturate on CPUs without VNNI.
            "same_on_every_cpu": scheme == "none" or model.get("int8_matmul_weights") == "uint8",
        },
        "speed": model.get("speed") or provenance.get("speed"),
    }


def _labels(model: dict[str, Any], types: list[str], validation: dict[str, Any],
            one_run: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The card's `labels` (each entity type's description and validation scores) and where the scores come
    from (`labels_scored`): "tagger", measured through the tagger where the bundle step did (`validation`);
    else "logged", what the run of a one-network package (`one_run`: its `source`; None for an ensemble,
    whose members differ) logged in training at the exported epoch (`run_dir.logged_record`); else None."""
    from ner_fast.labels import package_descriptions

    logged = (one_run.get("validation") or {}).get("per_type") if isinstance(one_run, dict) and not validation else None
    per_type = validation.get("per_type") or logged or {}
    described = package_descriptions(model, types)
    labels = [{"label": label, "description": described.get(label, ""), **_scores(per_type.get(label, {}))}
              for label in sorted(types)]
    return labels, "tagger" if validation.get("per_type") else "logged" if logged else None


def _scores(scores: dict[str, Any]) -> dict[str, Any]:
    """A label's f1, precision, recall and support as the card shows them: recall and F1 are undefined
    (None, not the 0.0 the scorer logs) where the validation data has no entity of the label, and
    precision where nothing was predicted as it too."""
    shown = {k: scores.get(k) for k in ("f1", "precision", "recall", "support")}
    if scores.get("support") == 0:
        shown.update(f1=None, recall=None)
        if scores.get("predicted") == 0:
            shown["precision"] = None
    return shown


def _training(model: dict[str, Any], provenance: dict[str, Any], source: Any) -> dict[str, Any]:
    """The card's `training`: the data, the command and commit, the epochs, the exported parameters' epoch
    and the validation F1 logged for them, the recipe(s), the source and the word vectors."""
    validation = provenance.get("validation") or {}
    training = provenance.get("training") or {}
    members = source.get("members") if isinstance(source, dict) else None
    # A one-network package `ner-fast export` wrote has no provenance: its run's record speaks (`source`).
    run = source if isinstance(source, dict) and not members and not provenance else {}
    logged = run.get("validation") or {}
    best = logged.get("best_epoch", logged.get("epoch") if run.get("checkpoint") == "best" else None)
    # An ensemble's members trained on one corpus, as a rule: then it is the package's.
    corpora = {m.get("data") for m in members or []}
    return {
        "data": validation.get("corpus") or training.get("data") or (source.get("data") if not members else None)
        or (corpora.pop() if len(corpora) == 1 else None),
        "command": provenance.get("command"),
        "source_commit": provenance.get("source_commit"),
        "best_epoch": provenance.get("best_epoch", best),
        "epochs_trained": provenance.get("epochs_trained", logged.get("epochs_trained")),
        # Which parameters were exported, and their epoch (recorded since 2026-12-06; before, the best's).
        "checkpoint": provenance.get("checkpoint", run.get("checkpoint")),
        "checkpoint_epoch": provenance.get("checkpoint_epoch", provenance.get("best_epoch", logged.get("epoch"))),
        "training_valid_f1": provenance.get("training_valid_f1", logged.get("f1")),
        "recipe": _recipe(training or run.get("recipe")),
        "ensemble": [_recipe(m.get("training")) for m in provenance.get("ensemble") or []],
        "source": source,
        "vectors": model.get("vectors"),
        "requantized": _conversions(provenance.get("requantized")),
    }


def _recipe(recorded: dict[str, Any] | None) -> dict[str, Any] | None:
    """A recorded recipe with the options it predates at the values the run trained with
    (`config.BEFORE_OPTION`: long sentences cut, the learning rate decayed every epoch)."""
    return {**BEFORE_OPTION, **recorded} if recorded else None


def _conversions(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The weight conversions a package went through (`bundle --requantize`, each recording the one before
    it under `before`), oldest first: from and to which scheme, the command, its commit, the F1 before."""
    found = []
    while record:
        found.append({k: record.get(k) for k in ("from", "to", "command", "source_commit", "validation_f1_before")})
        record = record.get("before")
    return found[::-1]


def _char_features(pkg: Any) -> dict[str, Any]:
    """Where a package's character features are computed, from `Package.char_graph_path` (model.json
    `char_graph`, which the format version requires, `package.load_package`): in a graph of their own that
    the tagger caches per word form across batches (format 2: `graph` its file, `width` the features a
    token, `cached` true), or inside each graph (format 1: `graph` and `width` None, `cached` false)."""
    path = pkg.char_graph_path
    if path is None:
        return {"graph": None, "width": None, "cached": False}
    return {"graph": path.name, "width": pkg.model["char_graph"].get("width"), "cached": True}


def _logged_validation(source: Any) -> list[dict[str, Any]] | None:
    """What `ner-fast export` records in `source` of each member run: the dev F1 it logged in training at the
    exported checkpoint's epoch (MXNet float32), not a measurement through the tagger as `validation` is;
    None where no run records one."""
    members = source.get("members") if isinstance(source, dict) else None
    runs = members or ([source] if isinstance(source, dict) and source else [])
    logged = [{"model_dir": run.get("model_dir"), "checkpoint": run.get("checkpoint"),
               **{k: (run.get("validation") or {}).get(k) for k in ("epoch", "f1", "measured_with")}} for run in runs]
    return logged if any(run["f1"] is not None for run in logged) else None


def _num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)


def format_card(card: dict[str, Any]) -> str:
    """`model_card`'s card as text for a terminal."""
    pkg, net, quant = card["package"], card["network"], card["quantization"]
    versions = ", ".join(f"{k} {v}" for k, v in pkg["versions"].items())
    named = f"{pkg['name']!r} (bundled), " if pkg["name"] else ""
    lines = [f"Model package {named}{pkg['path']}", f"  checksum (sha256 of manifest.json) {pkg['checksum']}",
             f"  format {pkg['format_version']}; made with {versions}", "", "Labels"]
    width = max([len(row["label"]) for row in card["labels"]] + [5])
    text_width = max([len(row["description"]) for row in card["labels"]] + [11])
    lines.append(f"  {'label':<{width}}  {'description':<{text_width}}  {'F1':>6}  {'P':>6}  {'R':>6}  {'support':>7}")
    for row in card["labels"]:
        lines.append(f"  {row['label']:<{width}}  {row['description']:<{text_width}}  {_num(row['f1']):>6}  "
                     f"{_num(row['precision']):>6}  {_num(row['recall']):>6}  {_num(row['support']):>7}")
    valid = card["validation"]
    if valid:
        lines.append(f"  (validation: entity F1 {_num(valid['f1'])}, P {_num(valid['precision'])}, R {_num(valid['recall'])} on "
                     f"{_num(valid['sentences'])} sentences, {_num(valid['tokens'])} tokens, {_num(valid['entities'])} entities "
                     f"of {valid['corpus']}, split {valid['split']}; measured through the tagger: {valid['measured_with']})")
    elif card["logged_validation"]:
        if card["labels_scored"] is None:
            lines.append("  (no per-label scores recorded in this package)")
        for run in card["logged_validation"]:
            if run["f1"] is None:
                lines.append(f"  (run {run['model_dir']}: no validation F1 logged in training)")
            else:
                lines.append(f"  (validation: entity F1 {_num(run['f1'])} at epoch {run['epoch']}, the {run['checkpoint']} "
                             f"checkpoint of run {run['model_dir']}; {run['measured_with']}, not measured through the tagger)")
    else:
        lines.append("  (no validation scores recorded in this package)")
    train = card["training"]
    lines += ["", "Training"]
    lines.append(f"  data: {train['data'] or 'not recorded'}")
    if train["command"]:
        lines.append(f"  built by: {train['command']} (source commit {train['source_commit']})")
    lines += _epoch_lines(train)
    for step in train["requantized"]:
        lines.append(f"  requantized: {step['from']} -> {step['to']} by {step['command']} (source commit "
                     f"{step['source_commit']}; validation F1 before {_num(step['validation_f1_before'])})")
    recipes = [r for r in [train["recipe"], *train["ensemble"]] if r]
    for i, recipe in enumerate(recipes):
        name = f"member {i + 1}" if len(recipes) > 1 else "recipe"
        arch = recipe.get("arch") or {}
        options = {k: v for k, v in recipe.items() if k != "arch" and v is not None}
        lines.append(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in sorted(arch.items())))
        lines.append("    " + ", ".join(f"{k}={v}" for k, v in sorted(options.items())))
    lines += _source_lines(train["source"])
    # `also`: the vectors --init SOURCE carried, beside the run's own (`run_vectors.package_vectors`).
    for vectors, own in ([(train["vectors"], True)] if train["vectors"] else []) + [
            (v, False) for v in (train["vectors"] or {}).get("also") or []]:
        # `words` is the size of the vectors' file; the vocabulary was offered only its first `vector_words`
        # (recorded with the vectors since 2026-12-06; before, in a bundled package's recipe), at most all of them.
        offered = vectors.get("vector_words") or (own and (train["recipe"] or {}).get("vector_words"))
        if offered and isinstance(vectors.get("words"), int):
            offered = min(offered, vectors["words"])
        joined = f"; its {_num(offered)} most frequent offered to the vocabulary" if offered else ""
        through = f", {vectors['through']}" if vectors.get("through") else ""
        lines.append(f"  word vectors{through}: {vectors.get('name')} (a file of {_num(vectors.get('words'))} words of "
                     f"{vectors.get('dim')} numbers{joined}, sha256 {vectors.get('sha256')}); licence "
                     f"{vectors.get('licence') or 'not recorded'}"
                     + (f"; {vectors['attribution']}" if vectors.get("attribution") else ""))
    lines += ["", "Network",
              f"  {net['members']} {'networks (an ensemble)' if net['members'] > 1 else 'network'}, decode {net['decode']}"
              f"{', CRF' if net['crf'] else ''}, POS input {'yes' if net['uses_pos'] else 'no'}, POS head "
              f"{'yes' if net['pos_head'] else 'no'}, bucket graphs {net['buckets'] or 'none (the dynamic graph)'}"]
    lines.append(_char_line(net["char_features"], pkg["format_version"]))
    size = card["size"]
    lines.append(f"  size {size['bytes'] / 1e6:.1f} MB in {len(size['files'])} files: "
                 + ", ".join(f"{name} {n / 1e6:.2f} MB" for name, n in sorted(size["files"].items(), key=lambda kv: -kv[1])))
    invariant = ("yes: a sentence's scores do not depend on what it is batched with" if quant["batch_invariant"] else
                 f"no: its graph holds operators whose answers depend on the batch ({', '.join(quant['per_batch_ops'])}:"
                 " activations quantized per batch, or Log), so scores depend on the batch")
    lines.append(f"  quantization {quant['scheme']}; batch-invariant {invariant}")
    if not quant["same_on_every_cpu"]:
        lines.append("  its int8 sums may differ on CPUs without AVX-512 VNNI (AVX2 kernels saturate on signed int8 weights):"
                     " `python -m ner_fast.training.bundle --requantize PACKAGE --out DIR --command TEXT` converts it")
    lines += ["", "Speed", *_speed_lines(card["speed"])]
    return "\n".join(lines) + "\n"


def _source_lines(source: Any) -> list[str]:
    """The card's lines on the run(s) a package was exported from (`model.json` `source`): the folder and
    checkpoint, what it started from (`--init`), and a vocabulary cut at export (`--max-words`), whose
    package was not scored: the F1 its run logged was measured with every word."""
    runs = (source.get("members") or [source]) if isinstance(source, dict) and source else []
    lines = []
    for run in runs:
        init = run.get("init") or {}
        start = f"--init {init.get('source')} ({init.get('kind')}, sha256 {init.get('sha256')})" if init else "scratch"
        lines.append(f"  exported from run {run.get('model_dir')} ({run.get('checkpoint')} checkpoint), trained from {start}")
    if runs and runs[0].get("max_words"):  # the members share a vocabulary, cut once
        lines.append(f"  vocabulary cut at export to its {runs[0]['max_words']:,} most frequent words (--max-words): the"
                     " validation F1 above was logged with every word; this package's own was not measured")
    return lines


def _speed_lines(speed: dict[str, Any] | None) -> list[str]:
    """The card's speed section: the recorded figures and the CPU (and its kernels) that measured them."""
    if not speed:
        return ["  not recorded in this package (benchmarks/tagger.py measures it, naming the CPU)"]
    cpu = speed.get("cpu") or {}
    flags = ", ".join(f for f, on in (cpu.get("flags") or {}).items() if on) or "none of avx2/avx512f/avx512_vnni/amx"
    workers = speed.get("workers")
    how = f" ({workers} worker{'s' if workers != 1 else ''}, the tagger's defaults otherwise)" if workers else ""
    if cpu.get("cpuid_view"):  # machine.cpu_info in benchmarks/cpuid_view.py: other kernels than the CPU's own
        real = ", ".join(f for f, on in (cpu.get("real_flags") or {}).items() if on) or "unrecorded"
        flags = f"as an AVX2-only CPU: CPUID showed {flags} of its {real} (benchmarks/cpuid_view.py)"
    return [f"  tag_batch {_num(speed.get('tag_batch_tokens_per_s'))} tokens/s{how}, one sentence of 15-25 tokens "
            f"p50 {_num(speed.get('tag_p50_ms'), 3)} ms",
            f"  measured on {cpu.get('model', 'an unrecorded CPU')} ({flags}; {cpu.get('cores', '?')} cores),"
            f" load average {speed.get('load_average')}: other CPUs differ"]


def _epoch_lines(train: dict[str, Any]) -> list[str]:
    """The card's line on the exported parameters' epoch and the validation F1 logged for them in training."""
    if train["checkpoint"] == "last":
        epoch, trained = train["checkpoint_epoch"], train["epochs_trained"]
        at = f"epoch {epoch} of {trained}" if epoch is not None else f"a partly trained epoch (interrupted) after {trained} finished"
        # A run stopped in its first epoch has no best epoch (None).
        best = f"best epoch {train['best_epoch']}" if train["best_epoch"] is not None else "no best epoch"
        f1 = _num(train["training_valid_f1"]) if train["training_valid_f1"] is not None else "none logged for them"
        return [f"  the last parameters, {at}, {best} (validation F1 in training of the exported parameters: {f1})"]
    if train["best_epoch"] is not None:
        return [f"  best epoch {train['best_epoch']} of {train['epochs_trained']} (validation F1 in training "
                f"{_num(train['training_valid_f1'])})"]
    return []


def _char_line(chars: dict[str, Any], version: Any) -> str:
    """The card's line on where the character features are computed (`_char_features`)."""
    if chars["cached"]:
        return (f"  character features: a graph of their own ({chars['graph']}, {_num(chars['width'])} a token),"
                f" cached per word form across batches (format {version}; tag/serve --char-cache)")
    return f"  character features: computed inside each graph, not cached (format {version}; --char-cache does not apply)"


@click.command()
@click.argument("package", type=PackageArgument(), required=False)
@command_options("info")
def info_command(package: str | Path | None, as_json: bool) -> None:
    """Print the model card of the package PACKAGE (a folder, or a bundled package's name: default, ensemble;
    default: the default bundled model): its labels with
    their descriptions and validation F1, training data and recipe, size, quantization and batch
    invariance, provenance, and speed as recorded (with the CPU)."""
    from ner_fast.cli.errors import user_errors

    with user_errors():  # a PackageError is a ValueError: one line, exit 1, as every command
        card = model_card(package)
    if as_json:
        echo_json(card)
    else:
        click.echo(format_card(card), nl=False)
