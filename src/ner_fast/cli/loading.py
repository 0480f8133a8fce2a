"""Loading the tagger for a command (`ner-fast tag`, `ner-fast serve`): one rule for what a load warns about."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import click


def load_tagger(package: Path | None, **options: Any) -> Any:
    """`Tagger.load(package, **options)` (None: the bundled package); each RuntimeWarning of the load
    (e.g. `--device cuda` where onnxruntime has no CUDA, which then runs on the CPU) is echoed to stderr
    as one `Warning: ...` line, not Python's two lines with our source."""
    from ner_fast.tagger import Tagger

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        tagger = Tagger.load(package, **options)
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    return tagger
