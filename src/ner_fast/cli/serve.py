"""`ner-fast serve`: the HTTP API and the entity page (see `ner_fast.serve`)."""
from __future__ import annotations

from pathlib import Path

import click

from ner_fast.cli.loading import PackageArgument
from ner_fast.errors import missing_extra
from ner_fast.option_table import command_options
from ner_fast.serve.settings import Limits, Settings, Timeouts


@click.command()
@click.argument("package", type=PackageArgument(), required=False)
@command_options("serve")
def serve_command(
    package: str | Path | None,
    host: str,
    port: int,
    threads: int,
    onnx_threads: int | None,
    max_batch_tokens: int,
    max_wait_ms: float,
    max_body_bytes: int,
    max_texts: int,
    max_text_chars: int,
    piece_tokens: int,
    max_connections: int,
    headers_timeout: float,
    keep_alive_timeout: float,
    body_timeout: float,
    graceful_timeout: float,
    device: str,
    char_cache: int,
    labels: str,
    log_level: str,
) -> None:
    """Serve the model package PACKAGE (a folder, or a bundled package's name: default, ensemble; default:
    the default bundled model) over HTTP: POST /v1/entities,
    GET /v1/model, /healthz, /metrics, and a page at / to try it. SIGTERM stops it gracefully."""
    from ner_fast.cli.errors import user_errors
    from ner_fast.cli.loading import load_tagger

    try:
        from ner_fast.serve.server import serve
    except ImportError as err:
        message = missing_extra(err)
        if message is None:
            raise
        raise click.ClickException(message) from None

    limits = Limits(max_body_bytes=max_body_bytes, max_texts=max_texts, max_text_chars=max_text_chars)
    timeouts = Timeouts(headers=headers_timeout, keep_alive=keep_alive_timeout, body=body_timeout,
                        graceful=graceful_timeout)
    settings = Settings(threads=threads, max_batch_tokens=max_batch_tokens, max_wait_ms=max_wait_ms,
                        onnx_threads=onnx_threads, limits=limits, timeouts=timeouts, max_connections=max_connections,
                        piece_tokens=piece_tokens)
    with user_errors(runtime=""):  # RuntimeError: the server did not start
        # `--device cuda` without CUDA: one warning line, as `ner-fast tag`.
        tagger = load_tagger(package, device=device, threads=settings.onnx_threads_per_worker(), labels=labels,
                             char_cache=char_cache)
        serve(tagger, host, port, settings, log_level=log_level)
