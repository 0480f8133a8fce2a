"""The configuration of a training run: `ModelConfig` (the network) and `TrainConfig` (everything a
run depends on, stored in a checkpoint folder's `config.json`), with the rules that join the options.

Their defaults and range checks are the rows of the option table (`ner_fast.option_table`, each row an
`ner_fast.option.Option`): one row per option, `feeds` naming the dataclass it feeds:

- `"data"`: how a corpus becomes prepared buckets; `TrainConfig` fields and `prepare()` keywords
  (fixed once a folder is prepared: `train` on a prepared folder takes them from it);
- `"train"`: `TrainConfig` fields (optimizer, stopping rule, devices);
- `"model"`: `ModelConfig` fields (architecture; `TrainConfig.arch` carries them).

Here: the two dataclasses, the options that exclude each other (`check_combinations`, `check_needs`)
and `config.json` (`read_config`, `resume_config`); the `TrainConfig` of a `ner-fast train` command line
(recipe, prepared folder, `--resume`) is `train_options.command_line_config`. The names of the table and its parsers
(`OPTIONS`, `BY_NAME`, `options`, `default_of`, `parse_buckets`, `parse_split`, `KVSTORES`, ...) can be
imported from here too.

This module never imports mxnet.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ner_fast.atomic import read_json
from ner_fast.errors import OptionError
from ner_fast.features import CASING_CLASSES, ROW_CHARS
from ner_fast.option import (  # noqa: F401 (names of the table's module, imported from here by others)
    DEFAULT_RECIPE, RECIPE_NAMES, parse_buckets, parse_context, parse_split,
)
from ner_fast.option_table import (  # noqa: F401
    BY_NAME, OPTIONS, RECIPES, check_values, default_of, given_options, is_distributed, options, recipe_defaults,
)

# Casing ids: 0 is padding, then one per class of `features.CASING_CLASSES`.
N_CASING = len(CASING_CLASSES) + 1
CONFIG_VERSION = 1  # of config.json in a checkpoint folder
# The LSTM directions in parameter names (`lstm{k}_fwd_...`, `lstm{k}_bwd_...`), in the order their
# states are concatenated; a forward-only model (`directions` 1) has the first alone.
LSTM_DIRECTIONS = ("fwd", "bwd")


#: Options newer than some prepared.json and config.json files: the value a file without one was made with
#: (the rule before the option existed), so a run resumed or a folder reused keeps its buckets and its
#: learning-rate schedule (a decay every epoch, however short), and is exported, evaluated and resumed with the
#: decoding it selected its best epoch by (argmax, before --decode).
BEFORE_OPTION = {"keep_long": False, "lr_decay_sentences": 1, "decode": "argmax"}


def trained_decode(doc: Mapping[str, Any]) -> str:
    """The decoding a training run (its config.json `doc`) selected its model with (`BEFORE_OPTION`'s for a
    config written before the option)."""
    return doc.get("train", {}).get("decode", BEFORE_OPTION["decode"])


def _field(name: str) -> Any:
    """A dataclass field whose default is the table's (lists get a factory)."""
    value = default_of(name)
    if isinstance(value, list):
        return field(default_factory=lambda: default_of(name))
    return field(default=value)


# --------------------------------------------------------------------------- dataclasses


def check_combinations(arch: Mapping[str, Any], distill_target: str | None = None) -> None:
    """OptionError when architecture options (a `ModelConfig`'s values by name) exclude each other:
    a model that would both read POS tags and predict them with its auxiliary head, the
    language-model loss (which needs the backward direction) on a forward-only LSTM, or, with a teacher
    (`distill_target` its --distill-target; None without one), distillation into a CRF the model lacks."""
    if arch["pos_aux_weight"] > 0 and arch["use_pos"]:
        raise OptionError(
            "--pos-aux-weight",
            "a POS head predicts POS tags, so POS cannot be an input too: with --pos add --pos-aux-weight 0"
            " (or --recipe tutorial), or keep the head and add --no-pos",
        )
    if arch["lm_aux_weight"] > 0 and arch["directions"] < 2:
        raise OptionError(
            "--lm-aux-weight",
            "the language-model loss needs both directions (the backward LSTM predicts the previous word): with"
            " --directions 1 add --lm-aux-weight 0, or keep --directions 2",
        )
    if distill_target == "crf" and not arch["crf"]:
        raise OptionError("--distill-target", "crf trains the student's CRF output layer, and this student has none"
                          " (without --crf: the option, or the recipe's default): add --crf, or take --distill-target marginals")


def _refuse_unknown_keys(cls: type, data: Mapping[str, Any], section: str) -> None:
    """ValueError naming the keys of a config.json `section` that `cls` has no field for (a newer or foreign config)."""
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {section} config keys: {sorted(unknown)}")


@dataclass
class ModelConfig:
    """Every architectural hyper-parameter, plus the vocabulary sizes the network is built for.

    Sizes count the padding/unknown ids (`n_words = len(vocabs.words)`); `n_pos = 0` means the
    corpus has no POS column, and then POS is not used whatever `use_pos` says. `crf` replaces the
    per-token softmax loss by a linear-chain CRF over the same scores (Lample et al. 2016).
    `directions` 2 makes each layer a BiLSTM, 1 a forward-only LSTM (`lstm_directions`, `state_dim`).
    The defaults of the architecture are the table's (the tuned recipe); a config.json written before
    an option existed gets its default (e.g. no `directions`: 2, the BiLSTM it was trained as).

    Auxiliary training heads (multi-task; they change what the network learns, not its input):
    `pos_aux_weight` > 0 adds a POS head (`pos_fc`, softmax over the POS vocabulary on the BiLSTM
    output) trained on the corpus's POS column with that loss weight; the exported graph keeps it
    as a second output, so a POS-free model still returns POS tags. `lm_aux_weight` > 0 adds Rei
    (2017)'s language-model loss: the last layer's forward LSTM predicts the next word and the
    backward one the previous word, over the `lm_vocab` most frequent word ids (rarer ones count as
    `<unk>`), through a `lm_dim` tanh layer; training only, never exported.
    """

    n_words: int
    n_chars: int
    n_tags: int
    max_token_chars: int
    n_pos: int = 0
    n_casing: int = N_CASING
    char_dim: int = _field("char_dim")
    filter_widths: list[int] = _field("filter_widths")
    filters: int = _field("filters")
    word_dim: int = _field("word_dim")
    use_casing: bool = _field("use_casing")
    casing_dim: int = _field("casing_dim")
    use_pos: bool = _field("use_pos")
    hidden: int = _field("hidden")
    num_layers: int = _field("num_layers")
    directions: int = _field("directions")
    dropout: float = _field("dropout")
    fused: bool = _field("fused")
    crf: bool = _field("crf")
    pos_aux_weight: float = _field("pos_aux_weight")
    lm_aux_weight: float = _field("lm_aux_weight")
    lm_vocab: int = _field("lm_vocab")
    lm_dim: int = _field("lm_dim")

    def __post_init__(self) -> None:
        for name, value in check_values({o.name: getattr(self, o.name) for o in options("model")}).items():
            setattr(self, name, value)
        self.max_token_chars = BY_NAME["max_token_chars"].check(self.max_token_chars)
        if any(w > self.max_token_chars for w in self.filter_widths):
            raise OptionError(
                "--filter-widths", f"widths {self.filter_widths} must lie in 1..--max-token-chars ({self.max_token_chars})"
            )
        if self.use_casing and self.n_casing < 2:
            raise ValueError("use_casing needs n_casing (the number of casing ids, padding included)")
        check_combinations({o.name: getattr(self, o.name) for o in options("model")})

    @property
    def pos_enabled(self) -> bool:
        """Whether the one-hot POS feature is part of the input (asked for and available)."""
        return self.use_pos and self.n_pos > 0

    @property
    def pos_head(self) -> bool:
        """Whether the network has the auxiliary POS output head (asked for and the corpus has POS)."""
        return self.pos_aux_weight > 0 and self.n_pos > 0

    @property
    def lm_head(self) -> bool:
        """Whether training adds the language-model loss (Rei 2017)."""
        return self.lm_aux_weight > 0

    @property
    def lm_classes(self) -> int:
        """Word ids the language-model head predicts: pad, unk and the most frequent words."""
        return min(self.lm_vocab, self.n_words)

    @property
    def lstm_directions(self) -> tuple[str, ...]:
        """The directions of every LSTM layer, as in parameter names: ("fwd", "bwd") or ("fwd",)."""
        return LSTM_DIRECTIONS[: self.directions]

    @property
    def state_dim(self) -> int:
        """Width of an LSTM layer's output per token: `directions * hidden` (forward states first)."""
        return self.directions * self.hidden

    @property
    def input_dim(self) -> int:
        """Width of the per-token vector that enters the first LSTM layer."""
        dim = self.word_dim + self.filters * len(self.filter_widths)
        if self.use_casing:
            dim += self.casing_dim
        if self.pos_enabled:
            dim += self.n_pos
        return dim

    @property
    def n_features(self) -> int:
        """Rows of the input tensor: word, casing, POS, then one per character."""
        return ROW_CHARS + self.max_token_chars

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the `model` section of config.json)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """The inverse of `to_dict`; unknown keys are an error (a newer or foreign config)."""
        _refuse_unknown_keys(cls, data, "model")
        return cls(**data)


#: The options naming files or folders a run reads, again when it is resumed, by `TrainConfig` field:
#: config.json records them absolute (`recorded_path`). `evaluate` reads the data ones (`DATA_INPUTS`) to
#: rebuild the validation split.
INPUT_FILES = {"data": "DATA", "dev": "--dev", "vectors": "--vectors", "teacher": "--teacher"}
DATA_INPUTS = ("data", "dev", "vectors")


@dataclass
class TrainConfig:
    """Everything a training run depends on; stored in `config.json` (section `train`).

    `data` is a corpus file, a folder written by `ner-fast prepare`, or None for the bundled
    corpus. `arch` holds every `ModelConfig` option (hidden, dropout, crf, ...; missing ones get the
    table's defaults); the vocabulary sizes come from the data. All defaults are the table's (the
    tuned recipe). `patience` 0 never stops early; `clip_gradient` 0 never clips.
    """

    out: str
    data: str | None = None
    format: str = _field("format")
    dev: str | None = _field("dev")
    split: tuple[float, float] = _field("split")
    max_sentences: int | None = _field("max_sentences")
    max_token_chars: int = _field("max_token_chars")
    buckets: list[int] | None = _field("buckets")
    keep_long: bool = _field("keep_long")
    lowercase: bool = _field("lowercase")
    vectors: str | None = _field("vectors")
    vector_words: int = _field("vector_words")
    freeze_vectors: bool = _field("freeze_vectors")
    batch_size: int = _field("batch_size")
    epochs: int = _field("epochs")
    patience: int = _field("patience")
    learning_rate: float = _field("learning_rate")
    beta1: float = _field("beta1")
    beta2: float = _field("beta2")
    epsilon: float = _field("epsilon")
    lr_decay: float = _field("lr_decay")
    lr_decay_sentences: int = _field("lr_decay_sentences")
    clip_gradient: float = _field("clip_gradient")
    word_dropout: float = _field("word_dropout")
    decode: str = _field("decode")
    average: float = _field("average")
    seed: int = _field("seed")
    context: str = _field("context")
    kvstore: str = _field("kvstore")
    init: str | None = _field("init")
    freeze_epochs: int = _field("freeze_epochs")
    init_lr_scale: float = _field("init_lr_scale")
    recase: float = _field("recase")
    teacher: str | None = _field("teacher")
    distill_weight: float = _field("distill_weight")
    distill_temperature: float = _field("distill_temperature")
    distill_target: str = _field("distill_target")
    arch: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Configs written before 0 meant "never" stored None for these two.
        if self.patience is None:
            self.patience = 0
        if self.clip_gradient is None:
            self.clip_gradient = 0.0
        for name, value in check_values({o.name: getattr(self, o.name) for o in OPTIONS if o.feeds != "model"}).items():
            setattr(self, name, value)
        unknown = set(self.arch) - {o.name for o in options("model")}
        if unknown:
            raise ValueError(f"unknown architecture options: {sorted(unknown)}")
        self.arch = {o.name: o.default_for() for o in options("model")} | check_values(self.arch)
        check_combinations(self.arch, self.distill_target if self.teacher else None)  # before any work
        if self.init and is_distributed(self.kvstore) and (self.freeze_epochs or self.init_lr_scale != 1):
            # The servers hold the optimizer and its learning-rate multipliers, set once when it starts.
            raise OptionError("--freeze-epochs", "parameter servers (--kvstore dist_*) hold the learning rates, so"
                              " --init trains there only with --freeze-epochs 0 --init-lr-scale 1")
        if self.freeze_vectors and (self.init or is_distributed(self.kvstore)):
            # The fixed values are the vectors' own rows, rebuilt here from the vectors; with --init SOURCE's rows
            # replace them, and parameter servers run an optimizer this process cannot give the frozen rows to.
            raise OptionError("--freeze-vectors", "not with " + ("--init (SOURCE's rows replace the vectors')" if self.init
                              else f"--kvstore {self.kvstore} (the parameter servers run the optimizer)"))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the `train` section of config.json, the files the run reads recorded
        absolute (`recorded_path`), so that `--resume` and `evaluate` read them again from any folder."""
        d = dataclasses.asdict(self)
        d["split"] = list(self.split)
        for name, flag in INPUT_FILES.items():
            d[name] = recorded_path(flag, d[name])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """The inverse of `to_dict`; unknown keys are an error."""
        _refuse_unknown_keys(cls, data, "train")
        if "out" not in data:
            raise ValueError("the train section has no 'out'")
        return cls(**{**BEFORE_OPTION, **data})

    @classmethod
    def from_options(
        cls, out: str, data: str | None = None, recipe_name: str = DEFAULT_RECIPE, **given: Any
    ) -> "TrainConfig":
        """A config from option values by name (those not given: the recipe's defaults)."""
        unknown = set(given) - set(BY_NAME)
        if unknown:
            raise ValueError(f"unknown options: {sorted(unknown)}")
        values = {**recipe_defaults(recipe_name), **given}
        if values.get("vectors") is not None:
            values["word_dim"] = vectors_word_dim(values["vectors"], given.get("word_dim"))
        arch = {o.name: values.pop(o.name) for o in options("model")}
        return cls(out=out, data=data, arch=arch, **values)

    def data_options(self) -> dict[str, Any]:
        """The values of the "data" options (what `prepare()` takes, besides the corpus)."""
        return {o.name: getattr(self, o.name) for o in options("data")}


def is_prepared(data: str | os.PathLike[str] | None) -> bool:
    """Whether DATA is a folder of `ner-fast prepare` (the one rule): its splits and vocabulary are read from it,
    never from the corpus, --dev or --vectors files it was prepared from (a corpus is a file; None: the bundled one)."""
    return data is not None and Path(data).is_dir()


def check_needs(given: Iterable[str], values: Mapping[str, Any]) -> None:
    """OptionError when an option among `given` (names) would do nothing, so it would be silently ignored:
    the option it `needs` has no value in `values` (e.g. --vector-words without --vectors), or the option
    it is `unused_with` has one (--split with --dev, where all of DATA trains), or the option of its
    `unused_at` has that value (--lr-decay-sentences with --lr-decay 1, given or the tutorial recipe's)."""
    for name in given:
        row = BY_NAME[name]
        if row.needs is not None and values.get(row.needs) is None:
            raise OptionError(row.cli_flag, f"applies only with {BY_NAME[row.needs].cli_flag}; give that too, or leave"
                              f" {row.cli_flag} out")
        if row.unused_with is not None and values.get(row.unused_with[0]) is not None:
            other, why = row.unused_with
            raise OptionError(row.cli_flag, f"does nothing with {BY_NAME[other].cli_flag} ({why}); leave one of them out")
        if row.unused_at is not None and values.get(row.unused_at[0]) == row.unused_at[1]:
            other, value, why = row.unused_at
            flag = BY_NAME[other].cli_flag
            # A switch said as such ("without --casing", not "while --casing is False"), whether given or the recipe's.
            state = (f"{'with' if value else 'without'} {flag}" if isinstance(value, bool) else f"while {flag} is {value}")
            raise OptionError(row.cli_flag, f"does nothing {state} ({why}); leave {row.cli_flag} out")


def vectors_word_dim(source: str, asked: int | None = None, *, init: str | None = None) -> int:
    """The word dimension of a run with `--vectors source`: the vectors' when `asked` (a given --word-dim,
    or with `init` the word dimension of that --init SOURCE) is None, else `asked`, the vectors then filling
    the first columns of each row (`training.rows`; `check_vectors_fit`). The vectors' one-line ValueError
    when `source` cannot be read."""
    from ner_fast.vectors import vectors_dim

    dim = vectors_dim(source)
    if asked is None:
        return dim
    check_vectors_fit(source, dim, asked, init=init)
    return asked


def check_vectors_fit(source: str, dim: int, word_dim: int, *, init: str | None = None) -> None:
    """OptionError when vectors `source` of `dim` numbers a word do not fit in a word embedding of `word_dim`
    (the rule: at least as wide), naming --word-dim, or --vectors when `init` (an --init SOURCE) fixed it."""
    if word_dim >= dim:
        return
    if init is not None:
        raise OptionError("--vectors", f"{source} has {dim} numbers a word, --init {init} has word_dim {word_dim};"
                          f" the vectors must fit in SOURCE's words (vectors of at most {word_dim} numbers, or"
                          " leave --vectors or --init out)")
    raise OptionError(
        "--word-dim", f"{word_dim} conflicts with --vectors {source}, whose vectors have {dim} numbers a word;"
        f" give at least {dim} (the vectors fill the first {dim} numbers of each word) or leave --word-dim out"
        " (the word dimension follows the vectors)"
    )


# --------------------------------------------------------------------------- config.json


def read_config(folder: str | os.PathLike[str], *, need_train: bool = False) -> dict[str, Any]:
    """The `config.json` document of a checkpoint folder, checked: ValueError naming the file otherwise.

    Its `model` section must make a `ModelConfig`; with `need_train` its `train` section must make a
    `TrainConfig` (resuming and rebuilding the validation split need it, exporting does not).
    """
    from ner_fast.package import KIND_NAMES, RUN_CONFIG_FILE, folder_kind

    path = Path(folder) / RUN_CONFIG_FILE
    kind = folder_kind(folder)
    if kind in ("package", "prepared", "tagged"):
        raise ValueError(f"{folder}: {KIND_NAMES[kind]}, not a training run folder (what `ner-fast train --out` writes)")
    doc = read_json(path, "ner-fast training config")
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        raise ValueError(f"{path}: not a ner-fast training config (no 'model' section)")
    version = doc.get("format_version")
    if version != CONFIG_VERSION or isinstance(version, bool):
        raise ValueError(f"{path}: format_version {version!r} is not supported (this ner-fast reads {CONFIG_VERSION})")
    try:
        ModelConfig.from_dict(doc["model"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: section 'model': {err}") from None
    if need_train:
        train = doc.get("train")
        if not isinstance(train, dict):
            raise ValueError(f"{path}: no 'train' section (the training settings)")
        try:
            TrainConfig.from_dict({**train, "out": str(folder)})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: section 'train': {err}") from None
    return doc


def resume_config(out: str | os.PathLike[str], **given: Any) -> TrainConfig:
    """The `TrainConfig` stored in checkpoint folder `out`, with the resumable options in `given` changed.

    Only options marked `resumable` in the table (the epoch cap, patience, devices) may change on
    resume; any other is refused (OptionError naming it) rather than silently ignored. The
    architecture is the one the run was built with (`config.json` section `model`).
    """
    unknown = set(given) - set(BY_NAME)
    if unknown:
        raise ValueError(f"unknown options: {sorted(unknown)}")
    fixed = [BY_NAME[k].cli_flag for k in given if not BY_NAME[k].resumable]
    if fixed:
        raise resumed_setting_error(fixed[0])
    doc = read_config(out, need_train=True)
    cfg = TrainConfig.from_dict({**doc["train"], "out": str(out)})
    cfg.arch = {o.name: doc["model"][o.name] for o in options("model") if o.name in doc["model"]}
    for name, value in check_values(given).items():
        setattr(cfg, name, value)
    check_inputs_there(cfg, "a resumed run", "resume", resumed=True)
    return cfg


def resumed_setting_error(flag: str, hint: str = "") -> OptionError:
    """The refusal of option `flag` changed on a resume (`resume_config`; `run_setup` for a caller's own config)."""
    allowed = ", ".join(o.cli_flag for o in OPTIONS if o.resumable)
    return OptionError(flag, f"a resumed run keeps the settings it started with; only {allowed} can change with --resume{hint}")


def recorded_path(flag: str, value: str | None) -> str | None:
    """How config.json records the files or folders that option `flag` (`INPUT_FILES`) names: each by its
    absolute path, resolved from the folder the run is started in, so that a resumed run and `evaluate`
    read the same files from any folder (a path as given meant another file, or none, from elsewhere).
    A run folder is local to its machine; a package records paths portably (`package.portable_path`).
    A name is not a path and stays one (`_is_path`: `--vectors glove-6b-50d`, `--teacher default`); None stays None."""
    if value is None:
        return None
    return ",".join(str(Path(p).resolve()) if _is_path(flag, p) else p for p in sources_of(flag, value))


def portable_train(train: Mapping[str, Any]) -> dict[str, Any]:
    """A run's config.json `train` section as a package records it: the run's folder (`out`) and every file
    or folder its options name (`INPUT_FILES`, each of --teacher's) by `package.portable_path`, the one rule
    of paths in a package; names (`--vectors glove-6b-50d`, `--teacher ensemble`) and None as they are."""
    from ner_fast.package import portable_path

    flags = {"out": "--out", **INPUT_FILES}

    def portable(name: str, value: Any) -> Any:
        if name not in flags or not isinstance(value, str):
            return value
        return ",".join(portable_path(p) if _is_path(flags[name], p) else p for p in sources_of(flags[name], value))

    return {name: portable(name, value) for name, value in train.items()}


def sources_of(flag: str, value: str | None) -> list[str]:
    """What option `flag`'s `value` names: --teacher's comma-separated sources (the one rule splitting that
    list: `distill.resolve_teachers` reads it too), or the one value (none for None)."""
    if value is None:
        return []
    return [p.strip() for p in value.split(",")] if flag == "--teacher" else [value]


def _is_path(flag: str, source: str) -> bool:
    """Whether `source` (a value of option `flag`, or one of --teacher's) is a path: not empty, not the name of
    installed vectors (`--vectors glove-6b-50d`) nor of the bundled model (`--teacher default`)."""
    from ner_fast.package import names_bundled
    from ner_fast.vectors import is_named

    return bool(source) and not (flag == "--vectors" and is_named(source)) and not (flag == "--teacher" and names_bundled(source))


def check_inputs_there(cfg: TrainConfig, who: str, verb: str, names: Iterable[str] = INPUT_FILES,
                       resumed: bool = False) -> None:
    """ValueError (exit 1) when a file of a recorded run that `who` reads again (`names`, of `INPUT_FILES`: a
    resumed run (`resumed`) all, evaluate the data ones; of a prepared folder's run neither --dev nor, but frozen
    on resume, --vectors) is not found. Runs record them absolute (`recorded_path`); runs recorded before that
    kept them as given, relative to the folder the run started in, where `verb` still finds them."""
    for name in names:
        flag = INPUT_FILES[name]
        # A prepared folder holds the splits and vocabulary its --dev and --vectors gave; only a resumed run
        # with frozen vectors reads them again (to hold them at their values).
        if is_prepared(cfg.data) and (name == "dev" or (name == "vectors" and not (resumed and cfg.freeze_vectors))):
            continue
        for source in sources_of(flag, getattr(cfg, name)):
            if not _is_path(flag, source) or Path(source).exists():
                continue
            where = "" if Path(source).is_absolute() else f" from {Path.cwd()}: {verb} from the folder the run was started in, or"
            raise ValueError(f"{cfg.out} was started with {flag} {source}, which {who} reads again; not found{where or ':'} put it back")
