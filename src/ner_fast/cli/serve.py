"""`ner-fast serve`: the HTTP API and the entity page (see `ner_fast.serve`)."""
from __future__ import annotations

from pathlib import Path

import click

from ner_fast.devices import DEFAULT_DEVICE, DEVICES
from ner_fast.serve.settings import Limits, Settings, Timeouts, check_seconds, check_setting
from ner_fast.labels import LABEL_SETS, PACKAGE

DEFAULTS = Settings()


def _in_range(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A setting's value checked against its range (`settings.RANGES`, the one home of those checks):
    a usage error naming the option otherwise."""
    if value is not None:
        try:
            check_setting(param.name or "", value)
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
    return value


def _seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """A timeout's range (`settings.check_seconds`, the one check), as a usage error naming the option."""
    try:
        return check_seconds(value, "the timeout")
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@click.command()
@click.argument("package", type=click.Path(exists=True, file_okay=False, path_type=Path), required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless you say otherwise).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port (0: a free one, printed at start).")
@click.option("--threads", type=int, default=DEFAULTS.threads, show_default=True, callback=_in_range,
              help="Worker threads; each tags one batch at a time.")
@click.option("--onnx-threads", type=int, default=None, callback=_in_range,
              help="onnxruntime threads of each worker [default: with batching, the cores shared among the"
                   " workers; without, 1].")
@click.option("--max-batch-tokens", type=int, default=DEFAULTS.max_batch_tokens, show_default=True, callback=_in_range,
              help="Tokens of concurrent requests coalesced into one tagger batch (0: no batching, each request alone).")
@click.option("--max-wait-ms", type=float, default=DEFAULTS.max_wait_ms, show_default=True,
              callback=_in_range, help="How long a batch waits for more requests when a worker is free.")
@click.option("--max-body-bytes", type=int, default=DEFAULTS.limits.max_body_bytes, show_default=True, callback=_in_range,
              help="Largest request body (bigger: 413).")
@click.option("--max-texts", type=int, default=DEFAULTS.limits.max_texts, show_default=True, callback=_in_range,
              help="Most texts or sentences in one request (more: 413).")
@click.option("--max-text-chars", type=int, default=DEFAULTS.limits.max_text_chars, show_default=True, callback=_in_range,
              help="Longest text in characters (longer: 413).")
@click.option("--piece-tokens", type=int, default=DEFAULTS.piece_tokens, show_default=True, callback=_in_range,
              help="A request of more (estimated) tokens goes to the batcher in pieces of about this many, "
                   "cut between texts or sentences, so that smaller requests run between them.")
@click.option("--max-connections", type=int, default=DEFAULTS.max_connections, show_default=True, callback=_in_range,
              help="Connections served at once; a request on one more is answered 503.")
@click.option("--headers-timeout", type=float, default=DEFAULTS.timeouts.headers, show_default=True, callback=_seconds,
              help="Seconds from a connection's start (or its previous answer) to the end of the next request's "
                   "headers; then the connection is closed.")
@click.option("--keep-alive-timeout", type=float, default=DEFAULTS.timeouts.keep_alive, show_default=True,
              callback=_seconds, help="Seconds an idle keep-alive connection is kept open.")
@click.option("--body-timeout", type=float, default=DEFAULTS.timeouts.body, show_default=True, callback=_seconds,
              help="Seconds a request body may take to arrive (then 408).")
@click.option("--graceful-timeout", type=float, default=DEFAULTS.timeouts.graceful, show_default=True,
              callback=_seconds, help="On SIGTERM, seconds requests in flight may take to finish before they are "
                                      "cancelled (bodies still arriving are answered 503 at once).")
@click.option("--device", type=click.Choice(DEVICES), default=DEFAULT_DEVICE, show_default=True)
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
    piece_tokens: int,
    max_connections: int,
    headers_timeout: float,
    keep_alive_timeout: float,
    body_timeout: float,
    graceful_timeout: float,
    device: str,
    labels: str,
    log_level: str,
) -> None:
    """Serve the model package PACKAGE (default: the bundled model) over HTTP: POST /v1/entities,
    GET /v1/model, /healthz, /metrics, and a page at / to try it. SIGTERM stops it gracefully."""
    from ner_fast.cli.errors import user_errors
    from ner_fast.cli.loading import load_tagger

    try:
        from ner_fast.serve.server import serve
    except ImportError as err:
        raise click.ClickException(f"ner-fast serve needs the serve extra ({err}): pip install 'ner-fast[serve]'") from err

    limits = Limits(max_body_bytes=max_body_bytes, max_texts=max_texts, max_text_chars=max_text_chars)
    timeouts = Timeouts(headers=headers_timeout, keep_alive=keep_alive_timeout, body=body_timeout,
                        graceful=graceful_timeout)
    settings = Settings(threads=threads, max_batch_tokens=max_batch_tokens, max_wait_ms=max_wait_ms,
                        onnx_threads=onnx_threads, limits=limits, timeouts=timeouts, max_connections=max_connections,
                        piece_tokens=piece_tokens)
    with user_errors(runtime=""):  # RuntimeError: the server did not start
        # `--device cuda` without CUDA: one warning line, as `ner-fast tag`.
        tagger = load_tagger(package, device=device, threads=settings.onnx_threads_per_worker(), labels=labels)
        serve(tagger, host, port, settings, log_level=log_level)
