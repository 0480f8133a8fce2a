"""The command line of `ner-fast train` made a `TrainConfig` (`command_line_config`), and the rules of a
prepared folder as DATA: the data options it was made with are the run's, and one given otherwise is
refused (`fixed_by_prepared`, `prepared_differences`: the one comparison, a resumed run's too)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ner_fast.atomic import read_json
from ner_fast.config import BEFORE_OPTION, INPUT_FILES, TrainConfig, check_needs, is_prepared, recorded_path, resume_config
from ner_fast.errors import OptionError
from ner_fast.option import DEFAULT_RECIPE, _show
from ner_fast.package import PREPARED_FILE
from ner_fast.option_table import BY_NAME, check_values, default_of, options, recipe_defaults


def fixed_by_prepared(settings: Mapping[str, Any], asked: Mapping[str, Any]) -> dict[str, Any]:
    """The data options of a prepared folder (its `prepared.json` settings); OptionError where `asked`
    (data options given for it) differ, because they were fixed when the folder was prepared."""
    used, differing = prepared_differences(settings, asked)
    if differing:
        raise prepared_option_error(*differing[0][:2])
    return used


def prepared_option_error(flag: str, made_with: str) -> OptionError:
    """The refusal of a data option given with another value than its prepared folder's."""
    return OptionError(flag, f"DATA is a prepared folder, made with {flag} {made_with}; data options are fixed"
                       " when preparing (leave the option out, or run `ner-fast prepare` again)")


def prepared_differences(
    settings: Mapping[str, Any], asked: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """The data options a prepared folder was made with (its `prepared.json` settings; an option newer
    than the folder as `BEFORE_OPTION` says), and those of `asked` that differ: (flag, the folder's value,
    the asked one), shown as on a command line. The one comparison of `fixed_by_prepared` (a new run) and
    of a resumed run (`run_setup.load_data`: the folder was prepared again since)."""
    raw = {o.name: settings.get(o.name, BEFORE_OPTION.get(o.name, o.default_for())) for o in options("data")}
    if raw["split"] is None:  # prepared with --dev: the split was not used
        raw["split"] = default_of("split")
    used = check_values(raw)
    differing = []
    for name, value in asked.items():
        opt = BY_NAME[name]
        if name == "buckets" and settings.get("buckets_given") == sorted(set(opt.check(value) or ())):
            continue  # the --buckets it was prepared with (`buckets` records those --keep-long added too)
        # A file (--vectors) is the same file however it is written: a resumed run records it absolute.
        if name in used and not _same_value(name, opt.check(value), used[name]):
            made_with = _show(used[name])
            given = settings.get("buckets_given")
            if name == "buckets" and given and given != used[name]:  # as typed then, not with --keep-long's added
                made_with = f"{_show(given)} (buckets {made_with} with --keep-long's)"
            differing.append((opt.cli_flag, made_with, _show(opt.check(value))))
    return used, differing


def _same_value(name: str, given: Any, used: Any) -> bool:
    """Whether data option `name`'s value `given` is what a prepared folder recorded (`used`); for a file
    (`INPUT_FILES`: --vectors) the same name or the same path once resolved here (`recorded_path`)."""
    if given == used or name not in INPUT_FILES:
        return given == used
    return recorded_path(INPUT_FILES[name], given) == recorded_path(INPUT_FILES[name], used)


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
    if recipe_name == "tutorial" and given.get("init"):
        # The tutorial's recipe is its network trained from nothing; --init takes SOURCE's network.
        raise OptionError("--recipe", "the tutorial recipe trains the tutorial's network from nothing, and --init"
                          " takes SOURCE's network: leave --recipe out (give any training option by itself)")
    values = dict(given)
    if is_prepared(data):
        _check_prepared(data)
        doc = read_json(Path(data) / PREPARED_FILE, "prepared-data description")
        settings = doc.get("settings", {}) if isinstance(doc, dict) else {}
        # The folder's data options replace the recipe's defaults, and must agree with those given.
        values.update(fixed_by_prepared(settings, {k: v for k, v in given.items() if BY_NAME[k].feeds == "data"}))
        _check_recipe_data(recipe_name, settings, given)
    check_needs(given, {**recipe_defaults(recipe_name or DEFAULT_RECIPE), **values})
    return TrainConfig.from_options(out, data, recipe_name or DEFAULT_RECIPE, **values)


def _check_prepared(data: str | os.PathLike[str]) -> None:
    """OptionError for a DATA folder that `ner-fast prepare` did not write (a corpus is a file)."""
    from ner_fast.package import KIND_NAMES, folder_kind

    kind = folder_kind(data)
    if kind != "prepared":
        what = KIND_NAMES[kind] if kind else "a folder without prepared.json"
        raise OptionError("DATA", f"{data} is {what}: give a tagged corpus file, or a folder `ner-fast prepare` wrote")


def _check_recipe_data(recipe_name: str | None, settings: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    """OptionError when `--recipe` names a recipe whose data defaults (those not given) a prepared folder
    (`settings`) was not made with: the folder's would replace them, and the run would not be that recipe."""
    if recipe_name is None:
        return
    wanted = {k: v for k, v in recipe_defaults(recipe_name).items()
              if BY_NAME[k].feeds == "data" and BY_NAME[k].by_recipe and k not in given}
    _, differing = prepared_differences(settings, wanted)
    if differing:
        shown = ", ".join(f"{flag} {made_with}" for flag, made_with, _ in differing)
        raise OptionError("--recipe", f"DATA is a prepared folder made with {shown}, not the {recipe_name} recipe's"
                          f" data options: prepare it with --recipe {recipe_name}, or leave --recipe out")
