"""The one mapping from a command's errors to its exit (as spaCy's `show_validation_error`): every
command runs its work inside `user_errors()`.

- `OptionError` (a mistaken option, `ner_fast.errors`) and `labels.UnknownLabels` (`--labels` naming
  nothing): a usage error, one line, exit 2;
- any other `ValueError` (`CorpusError` naming FILE:LINE, `PackageError`, a bad value) and `OSError`
  (a file that cannot be read or written): one line, exit 1;
- the exception types in `also`, and `RuntimeError` where `runtime` names what failed (onnxruntime's
  failures are RuntimeErrors): one line, exit 1.
Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from ner_fast.errors import OptionError
from ner_fast.labels import UnknownLabels


@contextmanager
def user_errors(*also: type[Exception], runtime: str | None = None) -> Iterator[None]:
    """Turn the user's mistakes raised inside the block into one line and an exit code (module docstring).
    `runtime`: the words before a RuntimeError's message (e.g. "inference failed"); None lets it through."""
    caught = (ValueError, OSError, *also)
    try:
        yield
    except BrokenPipeError:  # the reader left (`... | head`): not a mistake; `OneLineErrors.main` ends quietly
        raise
    except OptionError as err:
        raise click.UsageError(str(err)) from None
    except UnknownLabels as err:  # `--labels` naming nothing: a usage error, as any other option's value
        raise click.UsageError(f"--labels: {str(err).removeprefix('labels ')}") from None
    except caught as err:
        raise click.ClickException(str(err)) from None
    except RuntimeError as err:
        if runtime is None:
            raise
        raise click.ClickException(f"{runtime}: {err}" if runtime else str(err)) from None
