"""What one command-line option is: `Option`, a row of the table in `ner_fast.option_table`.

A row holds everything about one option: its name, kind, default (one value, or one per recipe), help,
range or choices, the commands that offer it, and, for the options of training, the dataclass it
feeds. `Option.check` is the option's one check (the command line and the dataclasses both call it)
and `Option.click_option` the click option a command gets from it. The parsers of the compound kinds
live here too: `parse_buckets` (the one bucket-list parser), `parse_split`, `parse_context`.

This module imports nothing of ner_fast but `errors`, and click only when a command is built.
"""
from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ner_fast.buckets import checked_bucket_lengths
from ner_fast.cores import threads_fault
from ner_fast.errors import OptionError

RECIPE_NAMES = ("tuned", "tutorial")
DEFAULT_RECIPE = "tuned"
#: What a row of the training options feeds: `prepare()` and `TrainConfig` ("data"), `TrainConfig`
#: ("train") or `ModelConfig` ("model"); None for an option of a command alone.
FEEDS = ("data", "train", "model")
#: The kinds whose value is a path that click checks (and hands over as a `Path`).
PATH_KINDS = ("dir", "folder", "output")


def recipe(tuned: Any, tutorial: Any) -> dict[str, Any]:
    """A default that depends on `--recipe`: the tuned value (the package default) and the tutorial's."""
    return {"tuned": tuned, "tutorial": tutorial}


@dataclass(frozen=True)
class Option:
    """One option: name, kind, default(s), help, range or choices, the commands that offer it and what it feeds.

    `name` is the Python name (the dataclass field, the command's parameter); `flag` the long option
    when it is not `--name` with dashes (e.g. `--lr`, `--json`).

    `kind`: "int", "float", "bool" (a --x/--no-x flag pair), "flag" (a lone --x, off by default),
    "choice", "str" (any text), "text" (a non-empty string), "path" (an existing file), "dir" (an
    existing folder), "folder" (a folder to write), "output" (a file to write, `-` for stdout),
    "context" (`parse_context`), "ints" (comma-separated integers, order kept), "buckets"
    (`parse_buckets`), "split" (`parse_split`) or "graph_buckets" (`check_graph_buckets`).

    `default` is a value or `recipe(tuned, tutorial)`. `low`/`high` bound numbers, each one of a list
    kind (`*_open`: the bound itself is excluded). `cap`: a bound on a value given on the command line only
    (`option_table.given_options`), where a bigger one cannot fit in memory, so that a runaway size is one
    line, not an out-of-memory kill; a recorded config.json may hold more (made before the cap), and stays
    readable. `zero` says what 0 means, where 0 is special (shown in the help). `optional`:
    None is allowed (no value). `resumable`: `train --resume` may change it. `commands`: the CLI
    commands that offer it. `needs`: the option without which this one does nothing (giving this one
    alone is refused, `check_needs`); `unused_with`: the option whose value makes this one do nothing, and why
    (giving both is refused, `check_needs`); `unused_at`: (option, value, why): that option at that value
    (given, or its recipe's default) makes this one do nothing (giving this one then is refused). `threads`:
    a count of threads, bounded by the cores too (`cores.threads_fault`). `feeds`: the dataclass a training
    option feeds (`FEEDS`); None for an option of a command alone, whose click default is its default
    (shown by click).
    `metavar`, `multiple` (repeatable) and `required` pass to click; `path_type` is what a path kind
    hands over (`Path`, or `str`: the text as given); `unit` follows the range in messages (" seconds").
    """

    name: str
    kind: str
    default: Any
    help: str
    feeds: str | None = None
    flag: str | None = None
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    cap: float | None = None
    low_open: bool = False
    high_open: bool = False
    zero: str | None = None
    optional: bool = False
    resumable: bool = False
    commands: tuple[str, ...] = ("train",)
    needs: str | None = None
    unused_with: tuple[str, str] | None = None
    unused_at: tuple[str, Any, str] | None = None
    threads: bool = False
    metavar: str | None = None
    multiple: bool = False
    required: bool = False
    path_type: type = Path
    unit: str = ""

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
        lo = "" if self.low is None else f"{'more than' if self.low_open else 'at least'} {_show(self.low)}"
        hi = "" if self.high is None else f"{'less than' if self.high_open else 'at most'} {_show(self.high)}"
        return " and ".join(p for p in (lo, hi) if p) + self.unit

    def check_cap(self, value: Any) -> None:
        """OptionError (naming the flag) if a number of `value` is over `cap` (a value `check` refuses anyway
        is left to it, which says what is wrong)."""
        if self.cap is None:
            return
        try:
            numbers = self._numbers(self._normalise(value))
        except (TypeError, ValueError, OverflowError):
            return
        for v in numbers:
            if v > self.cap:
                raise OptionError(self.cli_flag, f"must be at most {_show(self.cap)} (a cap on sizes far past any this network has used:"
                                  f" more would exhaust the memory), got {_show(v)}")

    def check(self, value: Any) -> Any:
        """`value` normalised to the option's type; OptionError (naming the flag) if it is not valid."""
        if value is None:
            if self.optional:
                return None
            raise OptionError(self.cli_flag, "a value is required")
        try:
            value = self._normalise(value)
        except (TypeError, ValueError, OverflowError) as err:  # Overflow: float() of an int past 1e308
            raise OptionError(self.cli_flag, str(err)) from None
        for v in self._numbers(value):
            if (
                (self.low is not None and (v < self.low or (self.low_open and v == self.low)))
                or (self.high is not None and (v > self.high or (self.high_open and v == self.high)))
            ):
                raise OptionError(self.cli_flag, f"must be {self._range_text()}, got {_show(v)}")  # an int whole
        fault = threads_fault(value) if self.threads and value is not None else None
        if fault is not None:
            raise OptionError(self.cli_flag, fault)
        return value

    def _numbers(self, value: Any) -> list[Any]:
        """The numbers of a normalised `value` that `low`/`high` bound: the value, or its list's items."""
        if self.kind in ("int", "float"):
            return [value]
        if self.kind in ("ints", "buckets"):
            return list(value or ())
        return graph_buckets(value, ()) if self.kind == "graph_buckets" else []

    def _normalise(self, value: Any) -> Any:
        """`value` as the kind's type; TypeError or ValueError saying what is wrong."""
        k = self.kind
        if k in ("bool", "flag"):
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
        elif k == "int":
            # An int is taken whole (float() of one past 1e308 overflows: a traceback for `--seed 9...9`);
            # `float(value).is_integer()` is false for NaN and infinity, which `int()` would raise on.
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                isinstance(value, numbers.Integral) or float(value).is_integer()
            ):
                raise ValueError(f"must be an integer, got {value!r}")
            value = int(value)
        elif k == "float":
            value = float(value)
            ranged = self.low is not None or self.high is not None
            if value != value:  # NaN passes no comparison: refused here, as click's ranges let it through
                raise ValueError("nan is not a number" + (f" (must be {self._range_text()})" if ranged else ""))
            if not math.isfinite(value):
                raise ValueError(f"must be {self._range_text() if ranged else 'a finite number'}, got {value!r}")
        elif k == "choice":
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)}, got {value!r}")
        elif k == "path":
            value = os.fspath(value)
        elif k == "text":
            if isinstance(value, os.PathLike):
                from ner_fast.package import written_as_path

                # A Path stays a path as text: `Path("./default")` is the folder, not the bundled `default`.
                value = written_as_path(value)
            else:
                value = str(value)
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
        elif k == "graph_buckets":
            check_graph_buckets(value)
        return value  # "str" and the path kinds (click checked the path) as given

    def help_text(self) -> str:
        """The help line of a training option: the row's help, what 0 means, and the default(s)."""
        text = self.help
        if self.zero:
            text = text.rstrip(".") + f" (0: {self.zero})."
        if self.cap is not None:
            text = text.rstrip(".") + f" (at most {_show(self.cap)})."
        if self.by_recipe:
            text += "  [" + "; ".join(f"{r}: {_show(self.default[r])}" for r in RECIPE_NAMES) + "]"
        elif self.default is not None:
            text += f"  [default: {_show(self.default)}]"
        return text

    def click_option(self) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """The click option of this row (a decorator).

        A training option (`feeds`) has click default None (not given): `given_options` keeps those the
        user gave and the recipe's defaults fill the rest, so its default is only ever written in the
        table, and shown by `help_text`. Any other option has its default as click's, shown by click
        with its range. Every value given is checked by `check` (NaN included, which click's ranges let
        through), as a usage error naming the option.
        """
        import click

        def callback(ctx: Any, param: Any, value: Any) -> Any:
            if value is None or self.kind == "flag":
                return value
            try:
                return tuple(self.check(v) for v in value) if self.multiple else self.check(value)
            except OptionError as err:
                raise click.BadParameter(err.message, ctx=ctx, param=param) from None

        training = self.feeds is not None
        kwargs: dict[str, Any] = {
            "default": None if training else self.default, "help": self.help_text() if training else self.help,
            "callback": callback, "show_default": not training, "metavar": self.metavar, "multiple": self.multiple,
            "required": self.required,
        }
        if self.required:
            # click (8.3) enforces `required` only on an option without a default, and an explicit None is one:
            # `prepare` without --out went on with None (a traceback) instead of "Missing option '--out'".
            del kwargs["default"]
        flag = self.cli_flag
        if self.kind == "bool":
            off = {"--fused": "--unfused"}.get(flag, "--no-" + flag[2:])
            return click.option(f"{flag}/{off}", self.name, **kwargs)
        if self.kind == "flag":
            return click.option(flag, self.name, is_flag=True, **kwargs)
        return click.option(flag, self.name, type=self._click_type(), **kwargs)

    def _click_type(self) -> Any:
        import click

        if self.kind in ("int", "float") and self.feeds is None and (self.low is not None or self.high is not None):
            return _shown_range(self.kind, min=self.low, max=self.high, min_open=self.low_open, max_open=self.high_open)
        return {
            "int": int, "float": float, "choice": click.Choice(self.choices),
            "path": click.Path(exists=True, dir_okay=False),
            "dir": click.Path(exists=True, file_okay=False, path_type=self.path_type),
            "folder": _named_path(file_okay=False, path_type=self.path_type),
            "output": _named_path(dir_okay=False, allow_dash=True, path_type=self.path_type),
        }.get(self.kind, str)  # fmt: skip


def _named_path(**kwargs: Any) -> Any:
    """click's Path for a path to write, refusing an empty name: as `Path("")` it is the current folder
    (`tag --output ""` offered to replace "." with --force)."""
    import click

    class Named(click.Path):  # type: ignore[misc]
        def convert(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, str) and not value.strip():
                self.fail("must not be empty", param, ctx)
            return super().convert(value, param, ctx)

    return Named(**kwargs)


def _shown_range(kind: str, **bounds: Any) -> Any:
    """click's IntRange or FloatRange for the help alone (`INTEGER RANGE`, `[default: 1; x>=1]`): the value
    is converted as a plain number and checked by `Option.check` (one rule, one message, NaN refused)."""
    import click

    plain = click.INT if kind == "int" else click.FLOAT

    class Shown(click.IntRange if kind == "int" else click.FloatRange):  # type: ignore[misc]
        def convert(self, value: Any, param: Any, ctx: Any) -> Any:
            return plain.convert(value, param, ctx)

    return Shown(**bounds)


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
    """Bucket lengths sorted, without repeats (`buckets.checked_bucket_lengths`), at least one."""
    values = checked_bucket_lengths(lengths)
    if not values:
        raise ValueError("give at least one bucket length")
    return values


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



def graph_buckets(spec: str, training_buckets: Sequence[int]) -> list[int]:
    """The bucket lengths `export --buckets` asks for: "auto" (the training buckets), "dynamic" (none:
    only the dynamic graph) or lengths like "10,20,40" (`parse_buckets`); ValueError otherwise."""
    spec = spec.strip()
    if spec == "auto":
        return sorted({int(b) for b in training_buckets})
    if spec == "dynamic":
        return []
    try:
        return parse_buckets(spec)
    except ValueError as err:
        raise ValueError(f"buckets must be 'auto', 'dynamic' or comma-separated lengths: {err}") from None


def check_graph_buckets(spec: str) -> str:
    """The check of `export --buckets` (`graph_buckets`'s rule): `spec` itself, or ValueError."""
    graph_buckets(spec, ())
    return spec
