"""`ner-fast serve`: the HTTP API and the entity page (see `ner_fast.serve`)."""
from __future__ import annotations

from pathlib import Path

import click

from ner_fast.labels import LABEL_SETS, PACKAGE
from ner_fast.serve.settings import MAX_WAIT_MS, Limits, Settings

DEFAULTS = Settings()


def _a_number(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """FloatRange lets NaN through (every comparison with it is false)."""
    if value != value:
        raise click.BadParameter("nan is not a number of milliseconds")
    return value


@click.command()
@click.argument("package", type=click.Path(exists=True, file_okay=False, path_type=Path), required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless you say otherwise).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port (0: a free one, printed at start).")
@click.option("--threads", type=click.IntRange(min=1), default=DEFAULTS.threads, show_default=True,
              help="Worker threads; each tags one batch at a time.")
@click.option("--onnx-threads", type=click.IntRange(min=1), default=None,
              help="onnxruntime threads of each worker [default: with batching, the cores shared among the"
                   " workers; without, 1].")
@click.option("--max-batch-tokens", type=click.IntRange(min=0), default=DEFAULTS.max_batch_tokens, show_default=True,
              help="Tokens of concurrent requests coalesced into one tagger batch (0: no batching, each request alone).")
@click.option("--max-wait-ms", type=click.FloatRange(0, MAX_WAIT_MS), default=DEFAULTS.max_wait_ms, show_default=True,
              callback=_a_number, help="How long a batch waits for more requests when a worker is free.")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=DEFAULTS.limits.max_body_bytes, show_default=True,
              help="Largest request body (bigger: 413).")
@click.option("--max-texts", type=click.IntRange(min=1), default=DEFAULTS.limits.max_texts, show_default=True,
              help="Most texts or sentences in one request (more: 413).")
@click.option("--max-text-chars", type=click.IntRange(min=1), default=DEFAULTS.limits.max_text_chars, show_default=True,
              help="Longest text in characters (longer: 413).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--labels", default=PACKAGE, show_default=True, metavar="|".join(LABEL_SETS) + "|FILE.json",
              help="Entity labels of the answers: the package's, conll, ontonotes or a JSON label map (ner-fast tag --help).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="warning",
              show_default=True, help="uvicorn's log level.")
def serve_command(
    package: Path | None,
    host: str,
    port: int,
    threads: int,
    onnx_threads: int | None,
    max_batch_tokens: int,
    max_wait_ms: float,
    max_body_bytes: int,
    max_texts: int,
    max_text_chars: int,
    device: str,
    labels: str,
    log_level: str,
) -> None:
    """Serve the model package PACKAGE (default: the bundled model) over HTTP: POST /v1/entities,
    GET /v1/model, /healthz, /metrics, and a page at / to try it. SIGTERM stops it gracefully."""
    from ner_fast.cli.loading import load_tagger
    from ner_fast.package import PackageError

    try:
        from ner_fast.serve.server import serve
    except ImportError as err:
        raise click.ClickException(f"ner-fast serve needs the serve extra ({err}): pip install 'ner-fast[serve]'") from err

    limits = Limits(max_body_bytes=max_body_bytes, max_texts=max_texts, max_text_chars=max_text_chars)
    settings = Settings(threads=threads, max_batch_tokens=max_batch_tokens, max_wait_ms=max_wait_ms,
                        onnx_threads=onnx_threads, limits=limits)
    try:
        # `--device cuda` without CUDA: one warning line, as `ner-fast tag`.
        tagger = load_tagger(package, device=device, threads=settings.onnx_threads_per_worker(), labels=labels)
        serve(tagger, host, port, settings, log_level=log_level)
    except (PackageError, ValueError, OSError, RuntimeError) as err:  # RuntimeError: the server did not start
        raise click.ClickException(str(err)) from err
