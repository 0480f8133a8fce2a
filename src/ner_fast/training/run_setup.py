"""The set-up of a training run, before its first epoch: `set_up` starts MXNet, claims (or reads
back) the run folder, reads the data and writes config.json and vocab.json; `make_trainer` builds
the iterators, the module (initialised, from `--vectors` or `--init`, or resumed), the optimizer and
the parameter average. What they build is a `Run`, which `train.py`'s epochs, save and driver share.
"""
from __future__ import annotations

import math
import platform
import random
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ner_fast import __version__
from ner_fast.atomic import atomic_write_json, finish_group, read_json
from ner_fast.buckets import MAX_BATCH_TOKENS
from ner_fast.checkpoint import (
    AVERAGE_FILE, CONFIG_VERSION, METRICS_FILE, STATES_FILE, check_params, init_params, load_params, pack_params, param_shapes,
    params_file, training_bytes,
)
from ner_fast.config import (
    N_CASING, ModelConfig, OptionError, TrainConfig, check_vectors_fit, default_of, parse_context, is_prepared,
    resumed_setting_error,
)
from ner_fast.cores import usable_memory
from ner_fast.metrics import TagScheme
from ner_fast.option_table import is_distributed
from ner_fast.package import RUN_CONFIG_FILE, RUN_VOCAB_FILE
from ner_fast.signals import interrupts_held
from ner_fast.train_options import prepared_differences, prepared_option_error
from ner_fast.training.cpu import flush_denormals, set_mxnet_threads
from ner_fast.training.epoch import ParamAverage, make_module
from ner_fast.training.run_dir import claim_run_dir, clear_previous, load_optimizer_states, read_metrics, read_state, run_lock
from ner_fast.training.run_vectors import check_resumed_vectors, frozen_entries, pretrained_vectors, start_from_vectors
from ner_fast.vocab import Vocabularies


@dataclass
class Run:
    """A training run once set up (`set_up`, `make_trainer`): what `train.py`'s epochs, `_save` and driver share.

    `state` is state.json (epoch, best F1 and epoch, bad epochs, interrupted, average steps); `history`
    the lines of metrics.jsonl; `written_best` the best epoch whose parameters best.params.npz holds
    (a stop that lands while an improved epoch is being saved saves them in its own save)."""

    cfg: TrainConfig
    out: Path
    rank: int
    num_workers: int
    state: dict[str, Any]
    history: list[dict[str, Any]]
    config: ModelConfig
    scheme: TagScheme
    module: Any = None
    train_iter: Any = None
    valid_iter: Any = None
    average: ParamAverage | None = None
    written_best: int | None = None
    #: `--init`: the source read (`init_source.InitSource`) and config.json's record of it; None without.
    init_source: Any = None
    init_record: dict[str, Any] | None = None
    #: `--teacher`: the teachers' distributions per training bucket row (`distill.teacher_arrays`); None without.
    teacher: list[np.ndarray] | None = None
    #: `--vectors`: the pretrained vectors a new run's word rows start from (None without, or resumed
    #: without --freeze-vectors).
    vectors: Any = None
    #: `--freeze-vectors`: the word-embedding entries kept at the vectors' values (`frozen.FrozenEntries`), None without.
    frozen: Any = None
    #: Updates between two learning-rate decays (`decay_step`).
    decay_step: int = 1

    @property
    def writes(self) -> bool:
        """Whether this worker writes the checkpoint (worker 0 only)."""
        return self.rank == 0


def _read_back_or_claim(
    cfg: TrainConfig, out: Path, resume: bool, force: bool, writes: bool
) -> tuple[dict[str, Any], list[str]]:
    """The run folder before the data is read: (the state to start from, an earlier run's files that a new
    run removes once set up (--force)). A resumed run's state is read back, a checkpoint save cut short
    while being renamed into place finished first (worker 0); a new run claims the folder (worker 0)."""
    state: dict[str, Any] = {"epoch": 0, "best_f1": -1.0, "best_epoch": None, "bad_epochs": 0}
    if not resume:
        return state, claim_run_dir(out, force=force) if writes else []
    if writes:
        finish_group(out)
    state.update(read_state(out))
    if state["epoch"] >= cfg.epochs:
        # Said before the data is read and the network built: there is no epoch to train.
        raise ValueError(f"{out}: already trained {state['epoch']} epochs and --epochs is {cfg.epochs}: nothing to"
                         f" resume (give --epochs more than {state['epoch']} to train on)")
    if state.get("patience_stopped") and cfg.patience and state["bad_epochs"] >= cfg.patience:
        # Stopped by its own rule (a Ctrl-C after that is saved too): resuming "in case it was interrupted"
        # trained on and replaced its best model.
        raise ValueError(f"{out}: stopped by --patience {cfg.patience} after epoch {state['epoch']} (no better"
                         f" validation entity F1 since epoch {state['best_epoch']}): nothing to resume (give a --patience"
                         f" above {state['bad_epochs']}, or 0, to train on)")
    return state, []


def _check_resumed_settings(cfg: TrainConfig, recorded: Mapping[str, Any]) -> None:
    """OptionError naming the first option, but the resumable ones, whose value is not the run's own:
    `config.resume_config` builds such a config, a caller's own `TrainConfig` may not (`train(cfg, resume=True)`
    went on with another learning rate, seed or dropout and recorded them as the whole run's). Both sides are
    read through `TrainConfig` (paths resolved alike); model options against the network the run built."""
    from ner_fast.option_table import OPTIONS

    then = TrainConfig.from_dict({**recorded["train"], "out": str(cfg.out)}).to_dict()
    now = cfg.to_dict()
    for row in OPTIONS:
        # A prepared folder's data options are its own: `load_data` checks those given against it.
        if row.resumable or row.feeds is None or (row.feeds == "data" and is_prepared(cfg.data)):
            continue
        if row.feeds == "model":
            differs = row.name in cfg.arch and cfg.arch[row.name] != recorded["model"].get(row.name, cfg.arch[row.name])
        else:
            differs = row.name in then and now.get(row.name) != then[row.name]
        if differs:
            raise resumed_setting_error(row.cli_flag, " (config.resume_config(DIR, ...) gives its settings)")


def _start_mxnet(cfg: TrainConfig) -> Any:
    """MXNet, imported after flush-to-zero and its thread count are set (both must come first) and with
    Ctrl-C held (a Ctrl-C inside its import was dropped there, and the run went on), then seeded."""
    flush_denormals()
    set_mxnet_threads(cpu_contexts=sum(kind == "cpu" for kind, _ in parse_context(cfg.context)))
    with interrupts_held():
        import mxnet as mx

    _seed_everything(cfg.seed)
    return mx


def set_up(
    cfg: TrainConfig, resume: bool, force: bool, say: Callable[[str], None], hold: ExitStack | None = None
) -> tuple[Run, Any, dict[str, np.ndarray] | None, Any, list[Any]]:
    """Start MXNet, claim (or read back) the run folder, read the data and write config.json and
    vocab.json: (the run, the data, the parameters to resume from or None, the kvstore, the contexts).
    With `hold`, the folder is locked (`run_dir.run_lock`) until `hold` closes; worker 0 only."""
    mx = _start_mxnet(cfg)
    contexts = mx_contexts(cfg.context)
    kv: Any = cfg.kvstore
    rank, num_workers = 0, 1
    if is_distributed(cfg.kvstore):
        kv = mx.kv.create(cfg.kvstore)
        rank, num_workers = kv.rank, kv.num_workers
    writes = rank == 0
    out = Path(cfg.out)

    # The folder is checked before the data is read: a mistake there costs nothing.
    # Locked before anything there is read or removed (a new folder: once made, below).
    locked = writes and hold is not None and hold.enter_context(run_lock(out))
    state, previous = _read_back_or_claim(cfg, out, resume, force, writes)

    recorded = read_json(out / RUN_CONFIG_FILE, "ner-fast training config") if resume else None  # what the run started with
    if recorded is not None:
        _check_resumed_settings(cfg, recorded)
    source, init_record = _init_source(cfg, recorded)  # --init: read before the data, whose vocabulary takes its words
    teachers, teacher_records = _teachers(cfg, out, recorded)  # --teacher: found (and checked) before the data is read
    data = load_data(cfg, words=_init_words(source, init_record, out), new_run=not resume, recorded=recorded)
    vocabs = data.vocabs
    max_token_chars = int(data.settings["max_token_chars"])
    config = model_config_for(cfg, vocabs, max_token_chars)
    check_fits_memory(config, cfg, usable_memory(), resumed=resume)  # before the parameters are made (298 GiB was a traceback)
    described = data.settings.get("vectors_source")
    if described:  # a prepared folder's vectors against the network's words (the Python API can give both)
        check_vectors_fit(described["name"], described["dim"], config.word_dim)
        check_resumed_vectors(cfg, out, recorded, described)  # before the teachers tag: that takes minutes
    teacher = _teacher_arrays(cfg, teachers, data, say)
    if source is not None:
        from ner_fast.training.init_source import check_architecture

        check_architecture(source, config)
    run = Run(cfg, out, rank, num_workers, state, [], config, TagScheme(vocabs.tags.itos), written_best=state["best_epoch"],
               init_source=source, init_record=init_record, teacher=teacher,
               # Read (and checked) before anything is written; a resumed run has its rows already, and
               # reads them again only for the values --freeze-vectors keeps.
               vectors=pretrained_vectors(cfg, described) if described and (not resume or cfg.freeze_vectors) else None)
    run.frozen = frozen_entries(cfg, run.vectors, vocabs, config, say)

    params: dict[str, np.ndarray] | None = None
    if resume:
        if Vocabularies.load(out / RUN_VOCAB_FILE) != vocabs:
            raise ValueError(f"{out}: the data no longer gives the vocabularies this run was trained with")
        params = load_params(out / params_file("last"))
        try:
            check_params(config, params)
        except ValueError as err:
            raise ValueError(f"{out / params_file('last')}: {err}") from None
        if run.frozen is not None:
            run.frozen.check(params[run.frozen.name], str(out / params_file("last")))
        run.history = read_metrics(out / METRICS_FILE)[: state["epoch"]]
        say(f"resuming {out} after epoch {state['epoch']}")
    elif writes:
        clear_previous(out, previous)
        out.mkdir(parents=True, exist_ok=True)
        if hold is not None and not locked:
            hold.enter_context(run_lock(out))
    if writes:
        atomic_write_json(
            out / RUN_CONFIG_FILE,
            {
                "format_version": CONFIG_VERSION,
                "model": config.to_dict(),
                "train": cfg.to_dict(),
                "data": {**data.settings, "summary": data.summary},
                "versions": _versions(),
                "init": init_record,
                "teacher": teacher_records,
            },
        )
        vocabs.save(out / RUN_VOCAB_FILE)
    return run, data, params, kv, contexts


def make_trainer(run: Run, data: Any, params: dict[str, np.ndarray] | None, kv: Any, contexts: list[Any],
                  resume: bool, say: Callable[[str], None]) -> None:
    """The run's iterators, module (from `params`, or initialised), optimizer and parameter average
    (restored from the run folder when resuming)."""
    from ner_fast.training.iterators import BucketIter
    from ner_fast.training.model import Distill, check_bucket_params

    cfg, config, out, state = run.cfg, run.config, run.out, run.state
    train_iter = BucketIter(
        data.splits["train"],
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        num_parts=run.num_workers,
        part_index=run.rank,
        word_dropout=cfg.word_dropout,
        teacher=run.teacher,
    )
    # A distilling module binds the teacher's label: validation feeds zeros there (the loss is not read).
    valid_iter = BucketIter(data.splits["valid"], cfg.batch_size, soft_tags=len(data.vocabs.tags) if run.teacher else 0)
    distill = Distill(cfg.distill_weight, cfg.distill_temperature, cfg.distill_target == "crf") if run.teacher else None
    if params is None:
        params = init_params(config, cfg.seed)
        if run.vectors is not None:
            taken = set(run.init_source.vocabs.words.itos) if run.init_source is not None else set()
            params["word_embed_weight"] = start_from_vectors(run.vectors, data.vocabs, params["word_embed_weight"], say, taken)
        if run.init_source is not None:
            from ner_fast.training.init_source import initial_params

            params, report = initial_params(run.init_source, config, data.vocabs, params)
            say(f"--init {cfg.init}: {len(report['whole'])} parameters whole, rows by name "
                + ", ".join(f"{n} {k}/{len(params[n])}" for n, k in report["rows"].items()) + f"; fresh: {', '.join(report['fresh']) or 'none'}"
                + (f" ({report['note']})" if "note" in report else ""))
    longest = max(train_iter.default_bucket_key, valid_iter.default_bucket_key)
    check_bucket_params(config, [b.length for split in data.splits.values() for b in split], distill)
    module = make_module(config, params, contexts, cfg.batch_size, longest, distill)
    run.decay_step = decay_step(train_iter.num_batches, sum(len(b) for b in data.splits["train"]), cfg.lr_decay_sentences)
    _init_optimizer(run, module, len(contexts), kv, run.decay_step)
    if resume and not load_optimizer_states(out / STATES_FILE, module, config):
        say("optimizer state not restored (none saved, or held by parameter servers): Adam restarts")

    if cfg.average:
        start, steps = None, 0
        # A run that saved an average (state.json counts its steps) resumes it or stops: load_params
        # names a missing file, where restarting it from the live parameters changed silently what
        # every later epoch validates and keeps.
        if resume and ("average_steps" in state or (out / AVERAGE_FILE).exists()):
            saved = load_params(out / AVERAGE_FILE)
            steps = int(state.get("average_steps", 0))
            try:
                check_params(config, saved)
            except ValueError as err:
                raise ValueError(f"{out / AVERAGE_FILE}: {err}") from None
            start = pack_params(config, saved) if config.fused else saved
        run.average = ParamAverage.of_module(module, cfg.average, steps, start, run.frozen)
    run.module, run.train_iter, run.valid_iter = module, train_iter, valid_iter

    say(
        f"training on {train_iter.num_tokens:,} tokens in {train_iter.num_batches}"
        f" batch{'' if train_iter.num_batches == 1 else 'es'} per epoch"
        f" (worker {run.rank} of {run.num_workers}), validating on {valid_iter.num_tokens:,} tokens; {config.to_dict()}"
    )
    _say_data_notes(data, say)


def decay_step(batches: int, sentences: int, every: int) -> int:
    """Updates between two `--lr-decay` steps: an epoch's `batches` (this worker's), or where an epoch's
    `sentences` (all workers' training sentences) are fewer than `every` (`--lr-decay-sentences`), the
    updates of `every` sentences. 500 sentences at batch size 16 make 32 updates an epoch: decayed by 0.9
    each, the rate was a twenty-fifth of itself after 30 epochs, 960 updates, under one GMB epoch's 767."""
    return batches if sentences >= every else max(batches, round(batches * every / max(sentences, 1)))


def _init_optimizer(run: Run, module: Any, devices: int, kv: Any, batches: int) -> None:
    """The module's Adam, per the run's options, its learning rate decayed every `batches` updates
    (`decay_step`); with `--freeze-vectors` the Adam that keeps the frozen entries."""
    import mxnet as mx

    cfg = run.cfg
    optimizer_params: dict[str, Any] = {
        "learning_rate": cfg.learning_rate,
        "beta1": cfg.beta1,
        "beta2": cfg.beta2,
        "epsilon": cfg.epsilon,
        # Each device's gradient is already a mean over its real tokens (see model.make_sym_gen);
        # devices and synchronous workers are summed by the kvstore, so average them here.
        "rescale_grad": 1.0 / (devices * (run.num_workers if "sync" in cfg.kvstore else 1)),
    }
    if cfg.clip_gradient:
        optimizer_params["clip_gradient"] = cfg.clip_gradient
    if cfg.lr_decay < 1:
        # Step decay once per epoch or less often (`decay_step`), counted in updates so it also runs on
        # parameter servers.
        optimizer_params["lr_scheduler"] = mx.lr_scheduler.FactorScheduler(
            step=batches, factor=cfg.lr_decay, base_lr=cfg.learning_rate
        )
    name = "adam"
    if run.frozen is not None:  # Adam that keeps the frozen word entries (`frozen.FrozenAdam`)
        from ner_fast.training.frozen import FrozenAdam

        name, optimizer_params["frozen"] = FrozenAdam.__name__.lower(), run.frozen
    module.init_optimizer(kvstore=kv, optimizer=name, optimizer_params=optimizer_params)


def _say_data_notes(data: Any, say: Callable[[str], None]) -> None:
    """What `ner-fast prepare` says of the data too, which a run would otherwise go on with unsaid: the
    training sentences cut to the largest bucket (it trains on fewer tokens), and the validation split's
    entity types (--dev, or the end of DATA) the training split lacks, and few training words known to --vectors
    (`prepare.data_warnings`)."""
    from ner_fast.prepare import data_warnings

    cut = int(data.summary.get("cut", 0))
    if cut:
        # Why, in the words of the rule that cut them (`buckets.training_buckets`).
        why = (f"a training batch holds at most {MAX_BATCH_TOKENS:,} tokens; a smaller --batch-size keeps more"
               if data.settings.get("keep_long") else "--no-keep-long; --keep-long keeps them whole")
        say(f"{cut:,} training sentences longer than the largest bucket ({max(data.summary['buckets'])} tokens) were cut"
            f" to it ({why})")
    for warning in data_warnings(data):
        say(warning)


def mx_contexts(spec: str) -> list[Any]:
    """`--context` (`config.parse_context`) -> MXNet contexts; OptionError for a GPU this MXNet cannot use."""
    import mxnet as mx

    contexts = []
    for kind, index in parse_context(spec):
        if kind == "gpu":
            if not mx.runtime.Features().is_enabled("CUDA"):
                raise OptionError(
                    "--context", f"gpu:{index}: this MXNet ({mx.__version__}) is a CPU-only build; install the `gpu` extra"
                )
            visible = mx.context.num_gpus()
            if index >= visible:
                raise OptionError("--context", f"gpu:{index}: {visible} GPU(s) visible to MXNet")
        contexts.append(getattr(mx, kind)(index))
    return contexts


def _seed_everything(seed: int) -> None:
    import mxnet as mx

    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def load_data(
    cfg: TrainConfig, check: bool = True, words: Sequence[str] = (), new_run: bool = True,
    recorded: Mapping[str, Any] | None = None,
) -> Any:
    """The `PreparedData` a run trains on: loaded from a prepare folder, or built from the corpus.

    A prepared folder fixes the data options: `cfg` takes its values (so config.json records what
    was used), and (with `check`) a value of `cfg` that differs from the table default and from the
    folder's is an OptionError (`train_options.fixed_by_prepared`). Rebuilding a recorded run's data
    (`evaluate`) does not check: runs recorded before this rule hold the recipe's values there.
    `words` are added to a corpus's word vocabulary after its own (`prepare(extra_words=...)`: `--init`).
    A new run (`new_run`, checked) is refused a batch size past its training sentences (`_check_batch_size`).
    A resumed run (`recorded`: its config.json) is refused data that is not what it trained on
    (`run_data_differences`: a prepared folder prepared again since, an edited corpus).
    """
    from ner_fast.prepare import PreparedData, prepare

    if is_prepared(cfg.data):
        data = PreparedData.load(cfg.data)
        asked = {k: v for k, v in cfg.data_options().items() if check and v != default_of(k)}
        used, differing = prepared_differences(data.settings, asked)
        if differing and not new_run:  # what the run recorded: the folder was prepared again since
            raise ValueError(changed_data(cfg, {}, [("train", f"{flag} {now}, the run's {then}")
                                                    for flag, now, then in differing]))
        if differing:  # a new run: the option given differs from the folder's
            raise prepared_option_error(*differing[0][:2])
        for name, value in used.items():
            setattr(cfg, name, value)
    else:
        data = prepare(cfg.data, batch_size=cfg.batch_size, extra_words=words, **cfg.data_options())
    if check and new_run:  # a resumed run keeps the size it was started with
        _check_batch_size(cfg.batch_size, sum(len(b) for b in data.splits["train"]))
    differing = run_data_differences(data, recorded, Vocabularies.load(Path(cfg.out) / RUN_VOCAB_FILE)) if recorded else []
    if differing:
        raise ValueError(changed_data(cfg, recorded or {}, differing))
    return data


#: Where a difference of `run_data_differences` lies: the training split, the validation split, or either
#: (the tag set is built from both).
Difference = tuple[str, str]


def changed_data(cfg: TrainConfig, doc: Mapping[str, Any], what: Sequence[Difference], advice: str = "") -> str:
    """The message for DATA that no longer gives what a run (`doc`: its config.json) trained on (`what`:
    (where, how) it differs, `run_data_differences`): a prepared folder prepared again since, or a changed
    corpus; the file named is the one that holds the change (an edited --dev was blamed on DATA)."""
    advice = advice or "put it back as it was, or start a new run"
    how = "; ".join(text for _, text in what)
    if is_prepared(cfg.data):
        return f"the prepared folder {cfg.data} was prepared again since the run trained on it ({how}): {advice}"
    source = (doc.get("data") or {}).get("source") or cfg.data or "the bundled corpus"
    places = {where for where, _ in what}
    training, validation = f"the training data ({source})", f"the validation data (--dev {cfg.dev})"
    if cfg.dev is None or places == {"train"}:
        named = training
    elif places == {"valid"}:
        named = validation
    elif "train" in places and "valid" in places:
        named = f"{training} and {validation}"
    else:  # a tag set that either file may have changed
        named = f"{training} or {validation}"
    return f"{named} changed since the run trained on it ({how}): {advice}"


def run_data_differences(data: Any, doc: Mapping[str, Any], vocabs: Any) -> list[Difference]:
    """How `data`, built again for a recorded run (`train --resume`, `evaluate`), differs from what the run
    trained on (`doc`: its config.json, `vocabs`: its vocab.json), and where: the characters kept per token
    (the input's width), the vocabularies (words and characters: the training split's; the tag set: both
    splits'), and each split's sentences and tags (`buckets.digest`, recorded since 2026-12-07: a split or
    --recase prepared again, an edited --dev); empty when it does not."""
    what: list[Difference] = []
    chars = (doc.get("model") or {}).get("max_token_chars")
    if chars is not None and int(data.settings["max_token_chars"]) != int(chars):
        what.append(("train", f"--max-token-chars {data.settings['max_token_chars']}, the run's {chars}"))
    now_vocabs = data.vocabs
    if any(getattr(now_vocabs, v) != getattr(vocabs, v) for v in ("words", "chars", "pos", "lowercase")):
        what.append(("train", "other vocabularies"))
    if now_vocabs.tags != vocabs.tags:
        new, gone = (sorted(set(a.itos) - set(b.itos)) for a, b in ((now_vocabs.tags, vocabs.tags), (vocabs.tags, now_vocabs.tags)))
        parts = ([f"new: {', '.join(new)}"] if new else []) + ([f"gone: {', '.join(gone)}"] if gone else [])
        what.append(("either", f"another tag set ({'; '.join(parts)})"))
    # A split's digest is over word and tag ids: with other vocabularies every split's differs, changed or not
    # (an edited training file was also said to change the validation sentences). Then only counts can tell.
    vocabs_differ = now_vocabs != vocabs
    then = ((doc.get("data") or {}).get("summary") or {}).get("digest") or {}
    now = data.summary.get("digest") or {}
    for split, name in (("train", "training"), ("valid", "validation")):
        was = (((doc.get("data") or {}).get("summary") or {}).get("splits") or {}).get(split, {}).get("sentences")
        count = data.summary["splits"][split]["sentences"]
        if vocabs_differ and was is not None and count != was:
            what.append((split, f"other {name} sentences: {count:,}, the run's {was:,}"))
        elif not vocabs_differ and then.get(split) and now.get(split) and then[split] != now[split]:
            what.append((split, f"other {name} sentences or tags: {count:,}, the run's {was:,}"))
    return what


def _check_batch_size(batch_size: int, sentences: int) -> None:
    """OptionError when `batch_size` is past both the training split's `sentences` and the default: every
    batch is padded to `batch_size` rows (`iterators.BucketIter`), so such a size only buys memory, without
    bound (100,000 on 80 sentences: 16 GB, then the kernel's kill). Up to the default is always allowed."""
    largest = max(sentences, default_of("batch_size"))
    if batch_size > largest:
        raise OptionError("--batch-size", f"{batch_size} is more than the {sentences:,} training sentences: every batch"
                          f" is padded to that many rows; give at most {largest}")


def check_fits_memory(config: ModelConfig, cfg: TrainConfig, available: int | None, resumed: bool = False) -> None:
    """OptionError when the network's parameters alone, as training holds them (`checkpoint.training_bytes`,
    with the moving average's copy where `cfg.average`), need more than `available` bytes
    (`cores.usable_memory`; None: unknown, not checked). A new run is told which sizes to make smaller, the
    one that weighs most first (the word embedding: --word-dim and, with --vectors, --vector-words; or the
    LSTM's --hidden); a resumed run keeps its sizes, so it is told to move."""
    need = training_bytes(config, cfg.average > 0)
    if available is None or need <= available:
        return
    shapes = param_shapes(config)
    words = 2 * math.prod(shapes["word_embed_weight"]) > sum(math.prod(s) for s in shapes.values())
    flag = "--word-dim" if words else "--hidden"
    why = (f"this network's parameters, with their gradients and Adam's moments, need {need / 2**30:.1f} GiB,"
           f" more than this machine's {available / 2**30:.1f} GiB of memory")
    if resumed:
        raise OptionError("--resume", f"{why}: resume it on a machine with more memory")
    sizes = ["--word-dim", "--vector-words"] if words and cfg.vectors else [flag]
    others = [f for f in ("--hidden", "--layers", "--word-dim", "--filters") if f not in sizes]
    raise OptionError(flag, f"{why}: give smaller {' and '.join(sizes)} (or {', '.join(others)})")


def model_config_for(cfg: TrainConfig, vocabs: Any, max_token_chars: int) -> ModelConfig:
    """The `ModelConfig` for these vocabularies with the run's architecture overrides."""
    return ModelConfig(
        n_words=len(vocabs.words),
        n_chars=len(vocabs.chars),
        n_tags=len(vocabs.tags),
        max_token_chars=max_token_chars,
        n_pos=len(vocabs.pos) if vocabs.pos is not None else 0,
        n_casing=N_CASING,
        **cfg.arch,
    )


def _versions() -> dict[str, str]:
    import mxnet as mx

    return {
        "ner_fast": __version__,
        "mxnet": mx.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _init_source(cfg: TrainConfig, recorded: Mapping[str, Any] | None) -> tuple[Any, dict[str, Any] | None]:
    """--init: (the `Source`, its record for config.json); a resumed run (`recorded`: its config.json) keeps
    the record it has and reads no source (its parameters are its own by then)."""
    if recorded is not None:
        return None, recorded.get("init")
    if not cfg.init:
        return None, None
    from ner_fast.training.init_source import load_source

    source = load_source(cfg.init)
    return source, source.record()


def _init_words(source: Any, record: dict[str, Any] | None, out: Path) -> list[str]:
    """The words a run started with --init adds to its corpus's vocabulary: SOURCE's (a resumed run: its
    own saved vocabulary's, which are the same), so words SOURCE knew keep their rows when tagging."""
    if source is not None:
        return source.vocabs.words.itos
    if record is not None:
        return Vocabularies.load(out / RUN_VOCAB_FILE).words.itos
    return []


def _teachers(cfg: TrainConfig, out: Path, recorded: Mapping[str, Any] | None) -> tuple[list[Any], list[dict[str, Any]] | None]:
    """--teacher: (the `distill.Teacher`s, their records for config.json), ([], None) without it, resolved
    before any data is read. For a resumed run (`recorded`: the config.json of `out`), each must still have
    the checksum recorded there (ValueError otherwise): tagging again with a changed teacher would distil
    from another model than the epochs before did."""
    if not cfg.teacher:
        return [], None
    from ner_fast.training.distill import resolve_teachers

    teachers = resolve_teachers(cfg.teacher)
    records = [t.record() for t in teachers]  # each checksum read once: checked here, written to config.json
    for teacher, now, before in zip(teachers, records, (recorded or {}).get("teacher") or []):
        if now["sha256"] != before.get("sha256"):
            raise ValueError(f"{out} was started with --teacher {teacher.spec}, whose files have changed since the"
                             f" run started (sha256 {before.get('sha256')}, now {now['sha256']}): put the original back,"
                             " or start a new run")
    return teachers, records


def _teacher_arrays(cfg: TrainConfig, teachers: Sequence[Any], data: Any, say: Callable[[str], None]) -> list[np.ndarray] | None:
    """The teachers' distributions per training bucket row (`distill.teacher_arrays`), None without teachers.
    They tag the training split's own sentences, which a prepared folder does not keep."""
    if not teachers:
        return None
    from ner_fast.training.distill import teacher_arrays, teacher_distributions

    corpus = data.corpora.get("train")
    if corpus is None:
        raise OptionError("--teacher", "DATA is a prepared folder, which keeps no tokens for the teacher to tag:"
                          " give the corpus file itself (or no DATA: the bundled corpus)")
    sentences = [corpus.words[a:b] for a, b in zip(corpus.offsets[:-1].tolist(), corpus.offsets[1:].tolist())]
    started = time.perf_counter()
    distributions = teacher_distributions(teachers, sentences, data.vocabs.tags.itos, say, cfg.distill_target)
    arrays = teacher_arrays(data.splits["train"], distributions, cfg.recase, cfg.distill_temperature)
    say(f"--teacher: distributions of {len(sentences):,} sentences in {time.perf_counter() - started:.0f} s")
    return arrays
