"""Loading the tagger for a command (`ner-fast tag`, `ner-fast serve`, `ner-fast info`): one rule for what a
load warns about, one for what a PACKAGE argument accepts (`refuse_no_package` the refusal of a value that
is no package at all, shared with `ner-fast tag`'s positional PACKAGE), and one for a training run's MODEL
argument."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import click


def refuse_no_package(value: str | Path, *, param: click.Parameter | None = None, ctx: click.Context | None = None,
                      param_hint: str | None = None) -> None:
    """Refuse a PACKAGE value that is no package at all (a blank name), by `package.package_path`'s rule and
    message, as click's one-line usage error (`click.BadParameter`, naming `param` or `param_hint`)."""
    from ner_fast.errors import PackageError
    from ner_fast.package import package_path

    try:
        package_path(value)
    except PackageError as err:
        raise click.BadParameter(str(err), ctx=ctx, param=param, param_hint=param_hint) from None


class PackageArgument(click.ParamType):
    """A command's PACKAGE argument: a bundled package's name (`package.BUNDLED_NAMES`, kept as the string
    `package.package_path` resolves, even where a folder of that name exists: `./NAME` is the folder), or
    an existing folder (a `Path`, checked as `click.Path(exists=True, file_okay=False)` does)."""

    name = "package"
    _folder = click.Path(exists=True, file_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | Path:
        from ner_fast.package import names_bundled, unknown_name_hint

        if names_bundled(value):
            return value
        refuse_no_package(value, param=param, ctx=ctx)
        hint = unknown_name_hint(value) if isinstance(value, str) and not Path(value).exists() else ""
        if hint:  # a name mistyped (`robst`), not a folder the user meant: say which names there are
            self.fail(f"{value}: no such package folder{hint}", param, ctx)
        return self._folder.convert(value, param, ctx)


class RunArgument(click.ParamType):
    """A command's MODEL argument (`evaluate`, `export`): an existing training run folder, checked as
    `click.Path(exists=True, file_okay=False)` does; a bundled package's name with no folder of that name
    here is said to be a package, which these commands do not take, unless `packages` (`evaluate`): then
    a bundled name is the bundled package (kept as the name, a str), as everywhere a package is named,
    unless a training run folder of that name is here (a run named `default`: `evaluate` took runs
    first); a package folder is a `Path` as a run's is."""

    name = "run"
    _folder = click.Path(exists=True, file_okay=False, path_type=Path)

    def __init__(self, packages: bool = False) -> None:
        self.packages = packages

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        from ner_fast.package import folder_kind, names_bundled

        if self.packages and names_bundled(value) and folder_kind(value) != "run":
            return str(value)
        if names_bundled(value) and not Path(value).exists():
            self.fail(f"{value}: no such training run folder ({value} is a bundled model package; this command"
                      " takes a training run folder, what `ner-fast train --out` writes)", param, ctx)
        return self._folder.convert(value, param, ctx)

    @staticmethod
    def is_package(model: Path | str) -> bool:
        """Whether a converted MODEL is a model package (a bundled name, or a folder holding a manifest)."""
        from ner_fast.package import folder_kind

        return isinstance(model, str) or folder_kind(model) == "package"


def load_tagger(package: str | Path | None, **options: Any) -> Any:
    """`Tagger.load(package, **options)` (None: the bundled package; a bundled name: that package); each
    RuntimeWarning of the load (e.g. `--device cuda` where onnxruntime has no CUDA, which then runs on the
    CPU) is echoed to stderr as one `Warning: ...` line, not Python's two lines with our source."""
    from ner_fast.tagger import Tagger

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        tagger = Tagger.load(package, **options)
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    return tagger
