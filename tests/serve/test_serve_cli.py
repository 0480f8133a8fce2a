"""`ner-fast serve` as a process: it announces its address, answers, and on SIGTERM stops accepting,
answers every request it had accepted, and exits 0. Usage mistakes get one line and an exit code."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from ner_fast.cli import cli
from ner_fast.tagger import Tagger

START = "from ner_fast.cli import main; main()"


def start_server(package: Path, *options: str) -> tuple[subprocess.Popen[str], str]:
    """`ner-fast serve PACKAGE --port 0 OPTIONS` in a child process; returns it and its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", START, "serve", str(package), "--port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    for line in process.stderr:  # the announcement is the first line (the log level hides uvicorn's)
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", line)
        if found:
            return process, found.group(1)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise AssertionError(f"the server did not announce its address: {process.communicate()}")


def in_progress(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return float(re.search(r"^ner_fast_requests_in_progress ([0-9.]+)$", text, re.M).group(1))  # type: ignore[union-attr]


def post_in_flight(pool: ThreadPoolExecutor, url: str, texts: list[str]) -> list[Future[httpx.Response]]:
    """POST each text on its own connection from `pool`; return once the server is running all of them."""
    answers = [pool.submit(httpx.post, f"{url}/v1/entities", json={"text": t}, timeout=60) for t in texts]
    deadline = time.monotonic() + 20
    while in_progress(url) < len(texts) + 1:  # the requests and this /metrics call
        assert time.monotonic() < deadline, "the requests did not all arrive"
        time.sleep(0.02)
    return answers


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_sent_as_soon_as_the_address_is_announced_stops_the_server(package: Path, stop: int) -> None:
    """What a supervisor or a script does: start, wait for the address, stop. The signal came in the moment
    before uvicorn installed its handlers and was lost in 6 of 10 tries (the server served on)."""
    for _ in range(3):
        process, _url = start_server(package)
        try:
            process.send_signal(stop)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_answers_every_accepted_request_then_exits_0(package: Path, tagger: Tagger, stop: int) -> None:
    # Requests wait up to 10 s (the most allowed) for company in the batcher, so SIGTERM arrives while all of them are in flight
    # (`post_in_flight` sees them running); the stop then gathers no more and runs them at once: the process
    # ends long before the wait would have (it sat the wait out). A hang-up (the terminal closed) is the same
    # stop: it raised inside uvicorn's event loop.
    process, url = start_server(package, "--max-wait-ms", "10000", "--max-batch-tokens", "100000")
    texts = [f"Talks in Paris number {i} ended on Monday." for i in range(8)]
    try:
        with ThreadPoolExecutor(len(texts)) as pool:
            answers = post_in_flight(pool, url, texts)
            process.send_signal(stop)
            signalled = time.monotonic()
            responses = [a.result() for a in answers]
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - signalled < 8
        with pytest.raises(httpx.TransportError):  # and it accepts nothing more
            httpx.get(f"{url}/healthz", timeout=1)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert [r.status_code for r in responses] == [200] * len(texts)
    assert [r.json() for r in responses] == [json.loads(json.dumps(tagger(t).to_dict())) for t in texts]


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["graceful timeout", "second SIGINT"])
def test_requests_cut_off_by_a_stop_get_a_json_503_and_no_traceback(package: Path, stop: str) -> None:
    # uvicorn cancels what still runs after --graceful-timeout, or at once at a second Ctrl-C: it answered
    # text/plain 500 and logged a traceback per request (and one for the app's lifespan). Each request is
    # nearly 1 MB of text (some 170,000 tokens, seconds of tagging on one thread), past the 0.3 s allowed.
    options = ("--graceful-timeout", "0.3") if stop == "graceful timeout" else ()
    process, url = start_server(package, "--threads", "1", *options)
    big = ["Talks in Paris ended on Monday after Angela Merkel spoke. " * 1500] * 10
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = [pool.submit(httpx.post, f"{url}/v1/entities", json={"texts": big}, timeout=120) for _ in range(2)]
            deadline = time.monotonic() + 20
            while in_progress(url) < 3:  # both requests and this /metrics call
                assert time.monotonic() < deadline, "the requests did not all arrive"
                time.sleep(0.02)
            if stop == "graceful timeout":
                process.send_signal(signal.SIGTERM)
            else:
                process.send_signal(signal.SIGINT)
                time.sleep(0.2)
                process.send_signal(signal.SIGINT)
            responses = [a.result() for a in answers]
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate()
    assert [r.status_code for r in responses] == [503, 503]
    for response in responses:
        assert response.headers["content-type"] == "application/json"
        assert "shutting down" in response.json()["error"] and "--graceful-timeout" in response.json()["error"]
    assert "Traceback" not in stderr and "Exception in" not in stderr, stderr


def test_usage_mistakes_get_one_line(tmp_path: Path, package: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["serve", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    not_a_package = runner.invoke(cli, ["serve", str(tmp_path)])
    assert not_a_package.exit_code == 1
    assert not_a_package.output.startswith("Error: ") and "not a model package" in not_a_package.output
    assert "Traceback" not in not_a_package.output
    bad_port = runner.invoke(cli, ["serve", str(package), "--port", "70000"])
    assert bad_port.exit_code == 2 and "70000" in bad_port.output
    bad_labels = runner.invoke(cli, ["serve", str(package), "--port", "0", "--labels", "klingon"])
    assert bad_labels.exit_code == 2 and bad_labels.output.strip().splitlines() == [  # a usage error, as any option's
        "Error: --labels: 'klingon': neither one of package, conll, ontonotes nor a JSON file (see 'cli serve --help')"]


def test_an_empty_host_is_refused_not_every_interface() -> None:
    # `ner-fast serve --host "$HOST"` with HOST unset listened on 0.0.0.0 (an empty address is every
    # interface), though the default is loopback. The row's check is tested directly: a CLI run that wrongly
    # passed would serve forever.
    from ner_fast.errors import OptionError
    from ner_fast.option_table import row

    for value in ("", "  "):
        with pytest.raises(OptionError, match="^--host: must not be empty"):
            row("serve", "host").check(value)
    assert row("serve", "host").check("0.0.0.0") == "0.0.0.0"


def test_a_port_in_use_is_one_line(package: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", str(package), "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "in use" in result.output.lower()
    assert f"127.0.0.1:{port}" in result.output  # says which address
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_an_ipv6_host_in_brackets_is_the_address() -> None:
    """`--host '[::1]'`, as URLs write it, said "cannot listen on [[::1]]:0: Name or service not known"."""
    import socket

    from ner_fast.serve.server import bind

    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        plain = bind("::1", 0)
    except OSError as err:
        pytest.skip(f"no IPv6 loopback here ({err})")
    plain.close()
    sock = bind("[::1]", 0)
    try:
        assert sock.family == socket.AF_INET6 and sock.getsockname()[0] == "::1"
    finally:
        sock.close()


def test_cuda_without_cuda_is_one_warning_line_as_in_tag(package: Path) -> None:
    import socket

    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: nothing to warn about")
    # The port is taken, so the command stops right after loading the model: its warning, then the error.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", str(package), "--port", str(port), "--device", "cuda"])
        tag = CliRunner().invoke(cli, ["tag", str(package), "--text", "Paris", "--device", "cuda"])
    assert result.exit_code == 1 and tag.exit_code == 0
    warning_lines = [line for line in result.output.splitlines() if "CUDA" in line]
    assert warning_lines == [line for line in tag.output.splitlines() if "CUDA" in line]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("Warning: ") and "CPU" in warning_lines[0]
    assert result.output.splitlines()[-1].startswith("Error: cannot listen on 127.0.0.1:")
    assert "Traceback" not in result.output and "Tagger.load(" not in result.output


def test_without_a_package_it_loads_the_bundled_one(move_bundled, tmp_path: Path) -> None:
    move_bundled("default", tmp_path / "no-model")  # as in an install without it
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and str(tmp_path / "no-model") in result.output
    assert "bundled" in result.output and "Traceback" not in result.output


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--threads", "--max-batch-tokens", "--max-wait-ms", "--labels"):
        assert option in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "-1"])
def test_a_wait_that_never_ends_is_a_usage_error(value: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "--port", "0", "--max-wait-ms", value])
    assert result.exit_code == 2, result.output
    assert "--max-wait-ms" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("option", ["--headers-timeout", "--keep-alive-timeout", "--body-timeout", "--graceful-timeout"])
@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "1e9"])
def test_a_timeout_out_of_range_is_a_usage_error(option: str, value: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "--port", "0", option, value])
    assert result.exit_code == 2, result.output
    assert option in result.output and "more than 0 and at most 3600 seconds" in result.output


def test_a_model_that_reads_pos_is_refused_in_one_line(tmp_path: Path) -> None:
    from helpers import make_checkpoint
    from ner_fast.training.export import export_model

    make_checkpoint(tmp_path / "m", with_pos=True)
    result = CliRunner().invoke(cli, ["serve", str(export_model(tmp_path / "m", tmp_path / "pkg", quantize=None)), "--port", "0"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "POS" in result.output and "Traceback" not in result.output


def test_onnx_threads_default_to_the_cores_with_batching_and_one_without() -> None:
    from ner_fast.serve.settings import Settings

    assert Settings().onnx_threads_per_worker(cores=2) == 2  # batching: a batch uses every core
    assert Settings(threads=2).onnx_threads_per_worker(cores=2) == 1  # shared among the workers
    assert Settings(threads=3).onnx_threads_per_worker(cores=2) == 1  # never 0
    assert Settings(threads=2).onnx_threads_per_worker(cores=8) == 4
    assert Settings(max_batch_tokens=0).onnx_threads_per_worker(cores=8) == 1  # a lone sentence gains nothing
    assert Settings(max_batch_tokens=0, onnx_threads=3).onnx_threads_per_worker(cores=2) == 3  # the user's choice wins


def test_onnx_threads_count_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `taskset -c 0` (or a container's cpuset) on an 8-core machine, one core is usable: 8
    onnxruntime threads would fight over it."""
    from ner_fast.serve.settings import Settings

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert Settings().onnx_threads_per_worker() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert Settings().onnx_threads_per_worker() == 4
    assert Settings(threads=2).onnx_threads_per_worker() == 2


def test_the_tagger_gets_the_onnx_threads(monkeypatch: pytest.MonkeyPatch, package: Path) -> None:
    import ner_fast.cli.loading as loading
    import ner_fast.serve.server as server

    loaded: list[int | None] = []
    served: list[object] = []
    real = loading.load_tagger
    monkeypatch.setattr(loading, "load_tagger", lambda *a, **k: loaded.append(k.get("threads")) or real(*a, **k))
    monkeypatch.setattr(server, "serve", lambda tagger, *a, **k: served.append(a[2]))
    cores = len(os.sched_getaffinity(0))
    for args, expected in (([], cores), (["--max-batch-tokens", "0"], 1), (["--onnx-threads", "3"], 3)):
        result = CliRunner().invoke(cli, ["serve", str(package), "--port", "0", *args])
        assert result.exit_code == 0, result.output
        assert loaded[-1] == expected
    assert len(served) == 3
