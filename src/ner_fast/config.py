"""Every option of `ner-fast prepare` and `ner-fast train`, defined once: the table `OPTIONS`.

One row (`Option`) per option: its name (the field of the dataclass it feeds), kind, default (one
value, or one per recipe), range, help, and which dataclass it feeds:

- `"data"`: how a corpus becomes prepared buckets; `TrainConfig` fields and `prepare()` keywords
  (fixed once a folder is prepared: `train` on a prepared folder takes them from it);
- `"train"`: `TrainConfig` fields (optimizer, stopping rule, devices);
- `"model"`: `ModelConfig` fields (architecture; `TrainConfig.arch` carries them).

From the table come the click options of both commands (`click_options`), the defaults of
`TrainConfig`, `ModelConfig` and `prepare()`, `RECIPES`, and the range checks that the CLI and the
dataclasses both apply. `parse_buckets` is the one bucket-list parser, `parse_split` the one split
parser, `KVSTORES` the one list of kvstores.

To add an option: one row in `OPTIONS` and one field (default `default_of("name")`) in the
dataclass it feeds; `tests/test_config.py` checks that the two agree.

This module never imports mxnet.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ner_fast.atomic import read_json
from ner_fast.corpus import TAGGED_FORMATS
from ner_fast.decode import DECODERS
from ner_fast.errors import OptionError
from ner_fast.features import CASING_CLASSES, ROW_CHARS

KVSTORES = ("local", "device", "dist_sync", "dist_device_sync", "dist_async")
RECIPE_NAMES = ("tuned", "tutorial")
DEFAULT_RECIPE = "tuned"
# Casing ids: 0 is padding, then one per class of `features.CASING_CLASSES`.
N_CASING = len(CASING_CLASSES) + 1
FEEDS = ("data", "train", "model")
CONFIG_VERSION = 1  # of config.json in a checkpoint folder
# The LSTM directions in parameter names (`lstm{k}_fwd_...`, `lstm{k}_bwd_...`), in the order their
# states are concatenated; a forward-only model (`directions` 1) has the first alone.
LSTM_DIRECTIONS = ("fwd", "bwd")


def recipe(tuned: Any, tutorial: Any) -> dict[str, Any]:
    """A default that depends on `--recipe`: the tuned value (the package default) and the tutorial's."""
    return {"tuned": tuned, "tutorial": tutorial}


@dataclass(frozen=True)
class Option:
    """One option: name, kind, default(s), range, help and the dataclass it feeds.

    `kind`: "int", "float", "bool" (a --x/--no-x flag pair), "choice", "path" (an existing file),
    "context" (`parse_context`), "text" (a non-empty string), "ints" (comma-separated integers, order kept), "buckets"
    (`parse_buckets`) or "split" (`parse_split`). `default` is a value or `recipe(tuned, tutorial)`. `low`/`high` bound numbers
    (`*_open`: the bound itself is excluded). `zero` says what 0 means, where 0 is special (shown in
    the help). `optional`: None is allowed (no value). `resumable`: `train --resume` may change it.
    `commands`: the CLI commands that offer it. `needs`: the option without which this one does nothing
    (giving this one alone is refused, `check_needs`).
    """

    name: str
    kind: str
    default: Any
    help: str
    feeds: str
    flag: str | None = None
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    zero: str | None = None
    optional: bool = False
    resumable: bool = False
    commands: tuple[str, ...] = ("train",)
    needs: str | None = None

    @property
    def cli_flag(self) -> str:
        """The long option, e.g. `--lr` or `--max-token-chars`."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def by_recipe(self) -> bool:
        """Whether the default depends on the recipe."""
        return isinstance(self.default, dict)

    def default_for(self, recipe_name: str = DEFAULT_RECIPE) -> Any:
        """The default under recipe `recipe_name` (a fresh copy of a list)."""
        value = self.default[recipe_name] if self.by_recipe else self.default
        return list(value) if isinstance(value, list) else value

    def _range_text(self) -> str:
        lo = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
        hi = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
        return " and ".join(p for p in (lo, hi) if p)

    def check(self, value: Any) -> Any:
        """`value` normalised to the option's type; OptionError (naming the flag) if it is not valid."""
        if value is None:
            if self.optional:
                return None
            raise OptionError(self.cli_flag, "a value is required")
        k = self.kind
        try:
            if k == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"expected true or false, got {value!r}")
            elif k == "int":
                if isinstance(value, bool) or int(value) != value:
                    raise ValueError(f"expected an integer, got {value!r}")
                value = int(value)
            elif k == "float":
                value = float(value)
                if not math.isfinite(value):
                    raise ValueError(f"expected a finite number, got {value!r}")
            elif k == "choice":
                if value not in self.choices:
                    raise ValueError(f"must be one of {', '.join(self.choices)}, got {value!r}")
            elif k == "path":
                value = os.fspath(value)
            elif k == "text":
                value = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
                if not value.strip():
                    raise ValueError("must not be empty")
            elif k == "context":
                parse_context(value)
            elif k == "ints":
                value = parse_int_list(value) if isinstance(value, str) else [int(v) for v in value]
                if not value:
                    raise ValueError("give at least one integer")
            elif k == "buckets":
                value = parse_buckets(value) if isinstance(value, str) else normalise_buckets(value)
            elif k == "split":
                value = parse_split(value) if isinstance(value, str) else _check_split(value)
        except (TypeError, ValueError) as err:
            raise OptionError(self.cli_flag, str(err)) from None
        numbers = [value] if k in ("int", "float") else value if k == "ints" else []
        for v in numbers:
            if (
                (self.low is not None and (v < self.low or (self.low_open and v == self.low)))
                or (self.high is not None and (v > self.high or (self.high_open and v == self.high)))
            ):
                raise OptionError(self.cli_flag, f"must be {self._range_text()}, got {v:g}")
        return value

    def help_text(self) -> str:
        """The help line: the row's help, what 0 means, and the default(s)."""
        text = self.help
        if self.zero:
            text = text.rstrip(".") + f" (0: {self.zero})."
        if self.by_recipe:
            text += "  [" + "; ".join(f"{r}: {_show(self.default[r])}" for r in RECIPE_NAMES) + "]"
        elif self.default is not None:
            text += f"  [default: {_show(self.default)}]"
        return text


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- parsers


def parse_int_list(text: str) -> list[int]:
    """"3,4" -> [3, 4] (order and repeats kept); ValueError naming the text otherwise."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None


def normalise_buckets(lengths: Iterable[int]) -> list[int]:
    """Bucket lengths sorted, without repeats; ValueError unless they are positive integers."""
    values = list(lengths)
    if not values:
        raise ValueError("give at least one bucket length")
    if any(isinstance(v, bool) or int(v) != v or int(v) < 1 for v in values):
        raise ValueError(f"bucket lengths must be positive integers, got {values}")
    return sorted({int(v) for v in values})


def parse_buckets(text: str) -> list[int]:
    """The one bucket-list parser: "40,10, 20" -> [10, 20, 40]; ValueError naming the text otherwise."""
    try:
        return normalise_buckets(parse_int_list(text))
    except ValueError:
        raise ValueError(f"bucket lengths must be comma-separated positive integers, got {text!r}") from None


def _check_split(values: Sequence[float]) -> tuple[float, float]:
    parts = tuple(float(v) for v in values)
    # `not p > 0`, not `p <= 0`: NaN fails every comparison, and "--split nan" went through.
    if len(parts) != 2 or not all(p > 0 for p in parts) or not sum(parts) <= 1 + 1e-9:
        raise ValueError(f"split must be two positive fractions adding up to at most 1, got {parts}")
    return parts  # type: ignore[return-value]


def parse_split(text: str) -> tuple[float, float]:
    """The one split parser: "0.8" -> (0.8, 0.2); "0.7,0.1" -> (0.7, 0.1)."""
    try:
        parts = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"give TRAIN[,VALID] fractions like 0.8 or 0.8,0.2, got {text!r}") from None
    if len(parts) == 1:
        parts.append(round(1.0 - parts[0], 12))
    if len(parts) != 2:
        raise ValueError(f"give TRAIN[,VALID] fractions like 0.8 or 0.8,0.2, got {text!r}")
    return _check_split(parts)


_CONTEXT = re.compile(r"^(cpu|gpu)(:\d+)?$")


def parse_context(spec: str) -> list[tuple[str, int]]:
    """`"cpu"`, `"gpu:0"` or `"gpu:0,gpu:1"` -> [(kind, index), ...] (MXNet builds the contexts)."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not _CONTEXT.match(part):
            raise ValueError(f"bad device {part!r}: use cpu, gpu:N or a comma-separated list")
        kind, _, index = part.partition(":")
        out.append((kind, int(index or 0)))
    return out


# --------------------------------------------------------------------------- the table

OPTIONS: tuple[Option, ...] = (
    # data: corpus -> prepared buckets (prepare and train)
    Option("format", "choice", "auto", "Corpus format.", "data", choices=TAGGED_FORMATS, commands=("prepare", "train")),
    Option("dev", "path", None, "A separate validation corpus (then all of DATA trains).", "data", optional=True,
           commands=("prepare", "train")),
    Option("split", "split", (0.8, 0.2), "Sequential TRAIN[,VALID] fractions of DATA (0.8 means 0.8,0.2).", "data",
           commands=("prepare", "train")),
    Option("max_sentences", "int", None, "Use only the first N sentences of DATA (quick runs).", "data", low=1,
           optional=True, commands=("prepare", "train")),
    Option("max_token_chars", "int", 20, "Characters kept per token (cut or padded).", "data", low=1,
           commands=("prepare", "train")),
    Option("buckets", "buckets", None, "Bucket lengths, comma separated (default: every length with at least"
           " --batch-size training sentences, the tutorial's rule).", "data", optional=True,
           commands=("prepare", "train")),
    Option("lowercase", "bool", recipe(True, False), "Look words up lower-cased.", "data",
           commands=("prepare", "train")),
    Option("vectors", "text", None, "Pretrained word vectors: glove-6b-50d (the `vectors` extra) or a GloVe/word2vec"
           " text file. Known words start from them, the word dimension follows them (docs/TRAINING.md).", "data",
           optional=True, commands=("prepare", "train")),
    Option("vector_words", "int", 100_000, "With --vectors: the words among this many most frequent of the vectors"
           " join the vocabulary after the training words.", "data", low=0, zero="only the training words",
           commands=("prepare", "train"), needs="vectors"),
    # train: optimizer, stopping, devices
    Option("batch_size", "int", 50, "Sentences per batch (prepare: the default buckets need this many sentences).",
           "train", low=1, commands=("prepare", "train")),
    Option("epochs", "int", 30, "Epoch cap.", "train", low=1, resumable=True),
    Option("patience", "int", 5, "Stop after this many epochs without a better validation entity F1.", "train",
           low=0, zero="never", resumable=True),
    Option("learning_rate", "float", recipe(0.002, 0.01), "Adam learning rate.", "train", flag="--lr", low=0,
           low_open=True),
    Option("beta1", "float", 0.9, "Adam beta1.", "train", low=0, high=1, high_open=True),
    Option("beta2", "float", 0.999, "Adam beta2.", "train", low=0, high=1, high_open=True),
    Option("epsilon", "float", 1e-8, "Adam epsilon.", "train", low=0, low_open=True),
    Option("lr_decay", "float", recipe(0.9, 1.0), "Multiply the learning rate by this after every epoch (1: constant).",
           "train", low=0, high=1, low_open=True),
    Option("clip_gradient", "float", recipe(5.0, 0.0), "Clip each gradient element to [-x, x].", "train", low=0,
           zero="never"),
    Option("word_dropout", "float", recipe(0.1, 0.0), "Replace training words by UNK with this probability.",
           "train", low=0, high=1, high_open=True),
    Option("decode", "choice", recipe("bio", "argmax"), "Tag decoding for metrics and model selection: best valid"
           " BIO sequence, or per-token argmax (with --crf: the CRF's best path).", "train", choices=DECODERS),
    Option("average", "float", recipe(0.999, 0.0), "Also validate an exponential moving average of the parameters with this"
           " decay per update (Polyak averaging, e.g. 0.999; warmed up: min(decay, (1+t)/(10+t)) at update t); each"
           " epoch keeps whichever of it and the live parameters scores better, until the average has scored better"
           " two epochs in a row (then only the average is validated).", "train", low=0, high=1,
           high_open=True, zero="off"),
    Option("seed", "int", 0, "Seeds initialisation, shuffling and dropout.", "train"),
    Option("context", "context", "cpu", "cpu, gpu:0 or several: gpu:0,gpu:1.", "train", resumable=True),
    Option("kvstore", "choice", "device", "How gradients are combined across devices / machines (dist_*: see"
           " `ner-fast launch`).", "train", choices=KVSTORES),
    # model: the architecture (ModelConfig)
    Option("char_dim", "int", 25, "Character embedding size.", "model", low=1),
    Option("filter_widths", "ints", [3], "Comma-separated character convolution widths.", "model", low=1),
    Option("filters", "int", 53, "Filters per width.", "model", low=1),
    Option("word_dim", "int", 150, "Word embedding size.", "model", low=1),
    Option("use_casing", "bool", recipe(True, False), "Add a casing-class embedding.", "model", flag="--casing"),
    Option("casing_dim", "int", 10, "Casing embedding size.", "model", low=1),
    Option("use_pos", "bool", recipe(False, True), "Use one-hot POS where the corpus has it.", "model", flag="--pos"),
    Option("hidden", "int", 275, "LSTM units per direction.", "model", low=1),
    Option("num_layers", "int", 1, "LSTM layers.", "model", flag="--layers", low=1),
    Option("directions", "int", 2, "LSTM directions per layer: 2 (a BiLSTM) or 1 (forward only: about half the"
           " LSTM's cost; no --lm-aux-weight).", "model", low=1, high=2),
    Option("dropout", "float", recipe(0.5, 0.1), "Dropout on the LSTM inputs and outputs.", "model", low=0, high=1,
           high_open=True),
    Option("crf", "bool", recipe(True, False), "Linear-chain CRF output layer (--no-crf: per-token softmax).", "model"),
    Option("pos_aux_weight", "float", recipe(1.0, 0.0), "Weight of the auxiliary POS output head's loss (multi-task: predicts the"
           " corpus's POS column from the BiLSTM; needs --no-pos).", "model", low=0, zero="no POS head"),
    Option("lm_aux_weight", "float", 0.0, "Weight of the auxiliary language-model loss (Rei 2017: the forward LSTM"
           " predicts the next word, the backward one the previous word; needs --directions 2).", "model", low=0,
           zero="none"),
    Option("lm_vocab", "int", 7500, "Words the language-model loss predicts (the most frequent; the rest count as"
           " unknown).", "model", low=3),
    Option("lm_dim", "int", 50, "Width of the language-model head's tanh layer.", "model", low=1),
    Option("fused", "bool", True, "Fused RNN operator (--unfused: unrolled LSTM cells).", "model", flag="--fused"),
    # starting from an earlier model (`training/init_source.py`, docs/TRAINING.md "Training from the bundled model")
    Option("init", "text", None, "Start from SOURCE: a training run folder, a model package folder, or `default`"
           " (the bundled model). Every parameter whose role exists in both networks starts from it (words and tags"
           " by name); architecture options left out are SOURCE's.", "train", optional=True),
    Option("freeze_epochs", "int", 1, "With --init: epochs during which the parameters taken whole from SOURCE"
           " (characters, casing, LSTM) stay fixed while the word rows and the output layer learn.", "train", low=0,
           zero="never frozen", needs="init"),
    Option("init_lr_scale", "float", 0.5, "With --init: learning-rate multiplier of the parameters taken whole from"
           " SOURCE once they train.", "train", low=0, high=1, low_open=True, needs="init"),
    # case robustness (`recase.py`) and distillation (`training/distill.py`, docs/TRAINING.md "One distilled network")
    Option("recase", "float", 0.0, "Add re-cased copies of this fraction of the training sentences (half of the"
           " copies lower-cased, a quarter upper, a quarter title; gold tags unchanged).", "data", low=0, high=1,
           zero="no copies", commands=("prepare", "train")),
    Option("teacher", "text", None, "Distil from TEACHER: a model package folder, `default` (the bundled model) or"
           " a training run folder; several, comma-separated, are averaged. Its per-token tag distributions over the"
           " training split (on the original casing) join the gold loss.", "train", optional=True),
    Option("distill_weight", "float", 0.5, "With --teacher: weight ALPHA of the distillation loss; the gold loss"
           " gets 1 - ALPHA.", "train", low=0, high=1, needs="teacher"),
    Option("distill_temperature", "float", 1.0, "With --teacher: temperature T of the distillation loss (the student's"
           " scores and the teacher's distribution both softened by T; the loss is scaled by T squared).", "train",
           low=0, low_open=True, needs="teacher"),
)  # fmt: skip

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
assert len(BY_NAME) == len(OPTIONS), "option names must be unique"
assert all(o.feeds in FEEDS for o in OPTIONS)
assert all(o.needs is None or o.needs in BY_NAME for o in OPTIONS)


def options(feeds: str | None = None, command: str | None = None) -> list[Option]:
    """The rows feeding `feeds` and/or offered by `command`, in table order."""
    return [o for o in OPTIONS if (feeds is None or o.feeds == feeds) and (command is None or command in o.commands)]


def default_of(name: str, recipe_name: str = DEFAULT_RECIPE) -> Any:
    """The default of option `name` (under a recipe)."""
    return BY_NAME[name].default_for(recipe_name)


def _field(name: str) -> Any:
    """A dataclass field whose default is the table's (lists get a factory)."""
    value = default_of(name)
    if isinstance(value, list):
        return field(default_factory=lambda: default_of(name))
    return field(default=value)


def recipe_defaults(recipe_name: str) -> dict[str, Any]:
    """Every option's default under recipe `recipe_name`."""
    if recipe_name not in RECIPE_NAMES:
        raise OptionError("--recipe", f"must be one of {', '.join(RECIPE_NAMES)}, got {recipe_name!r}")
    return {o.name: o.default_for(recipe_name) for o in OPTIONS}


# The settings where a recipe departs from the table's plain defaults (`ner-fast train --recipe`):
# "tuned" (the default) is what measured better on the GMB validation split (docs/TRAINING.md),
# "tutorial" the tutorial's own.
RECIPES: dict[str, dict[str, Any]] = {r: {o.name: o.default_for(r) for o in OPTIONS if o.by_recipe} for r in RECIPE_NAMES}


def check_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every entry of `values` checked and normalised by its row (`Option.check`)."""
    return {k: BY_NAME[k].check(v) for k, v in values.items()}


# --------------------------------------------------------------------------- dataclasses


def check_combinations(arch: Mapping[str, Any]) -> None:
    """OptionError when architecture options (a `ModelConfig`'s values by name) exclude each other:
    a model that would both read POS tags and predict them with its auxiliary head, or the
    language-model loss (which needs the backward direction) on a forward-only LSTM."""
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
    lowercase: bool = _field("lowercase")
    vectors: str | None = _field("vectors")
    vector_words: int = _field("vector_words")
    batch_size: int = _field("batch_size")
    epochs: int = _field("epochs")
    patience: int = _field("patience")
    learning_rate: float = _field("learning_rate")
    beta1: float = _field("beta1")
    beta2: float = _field("beta2")
    epsilon: float = _field("epsilon")
    lr_decay: float = _field("lr_decay")
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
        check_combinations(self.arch)  # before any work
        if self.init and "dist" in self.kvstore and (self.freeze_epochs or self.init_lr_scale != 1):
            # The servers hold the optimizer and its learning-rate multipliers, set once when it starts.
            raise OptionError("--freeze-epochs", "parameter servers (--kvstore dist_*) hold the learning rates, so"
                              " --init trains there only with --freeze-epochs 0 --init-lr-scale 1")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        d = dataclasses.asdict(self)
        d["split"] = list(self.split)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """The inverse of `to_dict`; unknown keys are an error."""
        _refuse_unknown_keys(cls, data, "train")
        if "out" not in data:
            raise ValueError("the train section has no 'out'")
        return cls(**data)

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


def check_needs(given: Iterable[str], values: Mapping[str, Any]) -> None:
    """OptionError when an option among `given` (names) would do nothing: the option it `needs` has no
    value in `values` (e.g. --vector-words without --vectors), so it would be silently ignored."""
    for name in given:
        needs = BY_NAME[name].needs
        if needs is not None and values.get(needs) is None:
            raise OptionError(BY_NAME[name].cli_flag, f"applies only with {BY_NAME[needs].cli_flag}; give that too, or leave"
                              f" {BY_NAME[name].cli_flag} out")


def vectors_word_dim(source: str, asked: int | None = None) -> int:
    """The word dimension of a run with `--vectors source`: the vectors' (one rule: the word embedding
    is the vectors, no projection). OptionError when `asked` (a given --word-dim) differs; the
    vectors' one-line ValueError when `source` cannot be read."""
    from ner_fast.vectors import vectors_dim

    dim = vectors_dim(source)
    if asked is not None and asked != dim:
        raise OptionError(
            "--word-dim", f"{asked} conflicts with --vectors {source}, whose vectors have {dim} numbers a word;"
            " leave --word-dim out (the word dimension follows the vectors)"
        )
    return dim


# --------------------------------------------------------------------------- the CLI side


def click_options(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding `--recipe` and every table option of `command` to a click command.

    Every option's click default is None (not given): `given_options` keeps those the user gave,
    and the recipe's defaults fill the rest, so a default is only ever written in the table.
    """
    import click

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(options(command=command)):
            func = _click_option(opt)(func)
        return click.option(
            "--recipe",
            "recipe_name",
            type=click.Choice(RECIPE_NAMES),
            help="Defaults of the options marked [tuned: ...; tutorial: ...]: the tuned ones, or exactly the"
            f" tutorial's.  [default: {DEFAULT_RECIPE}]",
        )(func)

    return decorate


def _click_option(opt: Option) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    import click

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is None:
            return None
        try:
            return opt.check(value)
        except OptionError as err:
            raise click.BadParameter(err.message, ctx=ctx, param=param) from None

    flag = opt.cli_flag
    kwargs: dict[str, Any] = {"default": None, "help": opt.help_text(), "callback": callback}
    if opt.kind == "bool":
        off = {"--fused": "--unfused"}.get(flag, "--no-" + flag[2:])
        return click.option(f"{flag}/{off}", opt.name, **kwargs)
    types: dict[str, Any] = {
        "int": int, "float": float, "context": str, "text": str, "ints": str, "buckets": str, "split": str,
        "choice": click.Choice(opt.choices),
        "path": click.Path(exists=True, dir_okay=False),
    }  # fmt: skip
    return click.option(flag, opt.name, type=types[opt.kind], **kwargs)


def given_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The table options among click's `values` that were given on the command line (not None)."""
    return {k: v for k, v in values.items() if k in BY_NAME and v is not None}


def fixed_by_prepared(settings: Mapping[str, Any], asked: Mapping[str, Any]) -> dict[str, Any]:
    """The data options of a prepared folder (its `prepared.json` settings); OptionError where `asked`
    (data options given for it) differ, because they were fixed when the folder was prepared."""
    raw = {o.name: settings.get(o.name, o.default_for()) for o in options("data")}
    if raw["split"] is None:  # prepared with --dev: the split was not used
        raw["split"] = default_of("split")
    used = check_values(raw)
    for name, value in asked.items():
        opt = BY_NAME[name]
        if name in used and opt.check(value) != used[name]:
            raise OptionError(
                opt.cli_flag,
                f"DATA is a prepared folder, made with {opt.cli_flag} {_show(used[name])}; data options are fixed"
                " when preparing (leave the option out, or run `ner-fast prepare` again)",
            )
    return used


def command_line_config(
    *,
    data: str | None,
    out: str | None,
    resume: str | None,
    recipe_name: str | None,
    given: Mapping[str, Any],
) -> TrainConfig:
    """The `TrainConfig` of a `ner-fast train` command line (options by name, as `given_options` keeps them).

    With `resume` only the resumable options may be given (`resume_config`); DATA, another --out and
    --recipe are refused. With a prepared folder as DATA the data options it was made with are used,
    and any given option that differs is refused (`fixed_by_prepared`).
    """
    if resume is not None:
        if data is not None:
            raise OptionError("DATA", "a resumed run trains on the data it started with; leave DATA out with --resume")
        if out is not None and Path(out).resolve() != Path(resume).resolve():
            raise OptionError("--out", "a resumed run writes into its own folder; leave --out out with --resume")
        if recipe_name is not None:
            raise OptionError("--recipe", "a resumed run keeps the settings it started with")
        return resume_config(resume, **given)
    if out is None:
        raise OptionError("--out", "required: the checkpoint folder to create (or --resume DIR)")
    values = dict(given)
    if data is not None and Path(data).is_dir():
        doc = read_json(Path(data) / "prepared.json", "prepared-data description")
        settings = doc.get("settings", {}) if isinstance(doc, dict) else {}
        # The folder's data options replace the recipe's defaults, and must agree with those given.
        values.update(fixed_by_prepared(settings, {k: v for k, v in given.items() if BY_NAME[k].feeds == "data"}))
    check_needs(given, {**recipe_defaults(recipe_name or DEFAULT_RECIPE), **values})
    return TrainConfig.from_options(out, data, recipe_name or DEFAULT_RECIPE, **values)


# --------------------------------------------------------------------------- config.json


def read_config(folder: str | os.PathLike[str], *, need_train: bool = False) -> dict[str, Any]:
    """The `config.json` document of a checkpoint folder, checked: ValueError naming the file otherwise.

    Its `model` section must make a `ModelConfig`; with `need_train` its `train` section must make a
    `TrainConfig` (resuming and rebuilding the validation split need it, exporting does not).
    """
    path = Path(folder) / "config.json"
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
        allowed = ", ".join(o.cli_flag for o in OPTIONS if o.resumable)
        raise OptionError(
            fixed[0], f"a resumed run keeps the settings it started with; only {allowed} can change with --resume"
        )
    doc = read_config(out, need_train=True)
    cfg = TrainConfig.from_dict({**doc["train"], "out": str(out)})
    cfg.arch = {o.name: doc["model"][o.name] for o in options("model") if o.name in doc["model"]}
    for name, value in check_values(given).items():
        setattr(cfg, name, value)
    check_inputs_there(cfg, "a resumed run", "resume")
    return cfg


def check_inputs_there(cfg: TrainConfig, who: str, verb: str) -> None:
    """ValueError (exit 1) when a file of a recorded run that `who` reads again (DATA, --dev, --vectors: the data is
    rebuilt; a resumed run, evaluate) is not found: its path is kept as given, so relative to the folder
    the run started in; `verb` is what to do from there."""
    from ner_fast.vectors import is_named

    for flag, value in (("DATA", cfg.data), ("--dev", cfg.dev), ("--vectors", cfg.vectors)):
        if value is None or (flag == "--vectors" and is_named(value)) or Path(value).exists():
            continue
        raise ValueError(f"{cfg.out} was started with {flag} {value}, which {who} reads again; not found from"
                         f" {Path.cwd()}: {verb} from the folder the run was started in, or put it back")
