"""Serving benchmark: `ner-fast serve` under 32 concurrent clients, with dynamic batching and without.

    python benchmarks/serve.py [--package PKG] [--device cpu|cuda] [--clients 32] [--requests 2000] [--rounds 5]
                               [--threads 1 2] [--rates 0.5 0.9 1.2] [--open-requests 6000] [--json FILE]

For each server setting (the defaults, i.e. dynamic batching; and `--max-batch-tokens 0`, batching off),
each with `--threads 1` (the default) and 2 worker threads, a `ner-fast serve` process is started on
127.0.0.1 at a free port, and `--clients` concurrent clients each send `--requests` requests (after
`--warmup` untimed ones), one 20-token sentence of raw text each (`{"text": ...}`; 500 different GMB
sentences in turn), each client on one keep-alive connection, the next request as soon as the answer
is in (a closed loop). The requests go in `--rounds` rounds in which the servers take turns, so that
whatever else runs on a shared machine weighs on all of them alike. Reported: requests/s, tokens/s
(the server's tokenizer's count), p50/p99 latency, the mean requests per tagger batch (from the
server's /metrics), the server's CPU time per request (from /proc: what a shared machine disturbs
least), the ratios to batching off, and the fraction of the in-process throughput on the same
sentences: `Tagger.tag_batch` on their tokens (batch 64) and `tag_texts` (tokenizer included) on 32
texts at a time, both with one onnxruntime thread (as a server worker has without batching; with batching
it has the cores: `--onnx-threads`). Also the latency of one
client alone (no queueing) on each server.

The ceiling of batching is measured in the same run (`batching_ceiling`, in process): what a request
costs a server's worker thread (tokenize, tag, write the JSON answer) alone with one onnxruntime thread
and in a batch of 16 with one thread and with all cores (what a batching worker has by default), and
the network's part of each. A server whose worker thread is its bottleneck (one worker, the default)
cannot gain more from batching than the ratio of the worker costs, and not more than the network's own
ratio even if everything else were free.

A closed loop measures saturation, not latency: with `--clients` requests always in flight, Little's
law fixes the mean latency at clients / throughput, whatever the server does (reported beside the
measured mean and p50). Latency at a given load is measured in an open loop, as Triton's perf_analyzer
(request-rate mode) and wrk2 do: for each of `--rates`, a fraction of batching off's closed-loop
requests/s measured in the same run, `--open-requests` requests are offered at that fixed rate
(Poisson arrivals, dealt to the `--clients` connections in turn) to the two servers with the first
`--threads` count (batching on and off). A request is sent at its scheduled time, or, when its
connection is still waiting for the previous answer, as soon as that answer is in; its latency counts
from the scheduled time, so queueing is not hidden (no coordinated omission). Reported: the achieved
rate, p50, p99 and mean, the p50 counted from the actual send, how late the client sent (`send_lag`,
its timer's granularity and its CPU), and the client's and the server's CPU per request.

The load generator is a minimal HTTP/1.1 client on asyncio streams (uvloop when installed): it sends
pre-built request bytes and reads each answer by its Content-Length, so on a 2-core machine it takes
as little as possible of the CPU the server needs (httpx costs several times more per request); its
CPU per request (the benchmark process's, during each load) is reported. Every answer's status is
checked and the first answer of each client is parsed.

The model: `--package`, else the bundled default package, else a package with the default
architecture and random weights over the bundled corpus's vocabulary (speed does not depend on the
weights' values; the `O` bias is set so that entities are as frequent as in the corpus, since the
answers' length does depend on them), exported int8 like the bundled one. `--device` (default cpu)
places the servers' and the in-process taggers' sessions (`--device cuda`: onnxruntime's CUDA provider,
as `benchmarks/gpu_check.sh` runs it); the providers the servers report (`/v1/model`) are recorded. The
machine may be shared: `uptime`'s load average is recorded before and after. Loopback only; every loop
is bounded by its request count.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from itertools import cycle
from pathlib import Path
from typing import Any

import numpy as np
from _machine import load_average, write_json  # the CPU (model, flags, cores) in every result

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"batching": [], "batching_off": ["--max-batch-tokens", "0"]}


# ----------------------------------------------------------------------------- model and sentences


def twenty_token_sentences(limit: int = 500) -> tuple[list[str], Any]:
    """Up to `limit` bundled-corpus sentences of 20 tokens that the tokenizer reads back as the same 20
    tokens, as raw text (tokens joined by spaces); and the corpus (for a synthetic model's vocabulary)."""
    from ner_fast.corpus import read_corpus
    from ner_fast.text import tokenize

    corpus = read_corpus()
    texts = []
    for i in range(len(corpus)):
        words = corpus.sentence(i).words
        if len(words) == 20:
            text = " ".join(words)
            if tokenize(text)[0] == list(words):
                texts.append(text)
                if len(texts) == limit:
                    break
    return texts, corpus


def synthetic_package(corpus: Any, texts: list[str], work: Path) -> Path:
    """A package with the default architecture, no POS input, random weights, int8, over the corpus's
    vocabulary. Random weights tag most tokens as entities, which would make every answer longer than a
    trained model's: the `O` tag's bias is raised until argmax leaves as many tokens outside entities
    on the benchmark sentences as the corpus has (about 85%)."""
    from ner_fast.atomic import atomic_write_json
    from ner_fast.checkpoint import CONFIG_VERSION, ModelConfig, init_params, params_file, save_params
    from ner_fast.corpus import Corpus
    from ner_fast.features import CASING_CLASSES
    from ner_fast.training.export import export_model
    from ner_fast.tagger import Tagger
    from ner_fast.text import tokenize
    from ner_fast.vocab import Vocabularies

    sentences = [corpus.sentence(i) for i in range(len(corpus))]
    words_only = Corpus.from_sentences([s.words for s in sentences], None, [s.tags for s in sentences])
    outside = float(np.mean([t == "O" for s in sentences for t in s.tags]))
    vocabs = Vocabularies.build(words_only, lowercase=True)
    config = ModelConfig(
        n_words=len(vocabs.words), n_chars=len(vocabs.chars), n_tags=len(vocabs.tags), max_token_chars=20,
        n_casing=len(CASING_CLASSES) + 1, use_casing=True, use_pos=False,
    )
    params = init_params(config, seed=0)
    o = vocabs.tags.itos.index("O")

    def write(folder: Path, buckets: list[int], quantize: str | None) -> Path:
        folder.mkdir(parents=True)
        atomic_write_json(folder / "config.json", {
            "format_version": CONFIG_VERSION, "model": config.to_dict(),
            "data": {"buckets": buckets, "max_token_chars": config.max_token_chars},
            "train": {"decode": "bio"}, "versions": {},
        })
        vocabs.save(folder / "vocab.json")
        save_params(folder / params_file("best"), params)
        return export_model(folder, work / f"{folder.name}-pkg", quantize=quantize)

    # Shifting O's logit by d multiplies its probability by e^d before renormalising: find d on the
    # probabilities of one export, then export the final package with the shifted bias.
    probe = Tagger.load(write(work / "probe", [20], None), device="cpu", threads=1)
    _, probs = probe.tag_batch([tokenize(t)[0] for t in texts], batch_size=64, proba=True)
    log_p = np.log(np.concatenate(probs) + 1e-12)
    others = np.delete(log_p, o, axis=1).max(1)
    shift = float(np.quantile(others - log_p[:, o], outside))
    params["fc_bias"][o] += shift
    return write(work / "model", list(range(5, 45)), "int8")


def choose_package(given: str | None, corpus: Any, texts: list[str], work: Path) -> tuple[Path, str]:
    from ner_fast.package import PackageError, default_package_path

    if given:
        return Path(given), given
    try:
        return default_package_path(), "bundled default package"
    except PackageError:
        print("no bundled default package: using the default architecture with random weights, int8")
        return synthetic_package(corpus, texts, work), "default architecture, random weights, int8 (no bundled package yet)"


# ----------------------------------------------------------------------------- in-process reference


def best_seconds(run: Any, rounds: int) -> float:
    """The shortest of `rounds` timed calls of `run`, after an untimed warm-up call."""
    run()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def in_process(package: Path, texts: list[str], device: str = "cpu", rounds: int = 3) -> dict[str, float]:
    """Tokens/s of `tag_batch` (pre-tokenized, batch 64) and of `tag_texts` (raw text, 32 texts a call)
    on the sentences, with one onnxruntime thread, on `device`; the best of `rounds` passes after a warm-up pass."""
    from ner_fast.tagger import Tagger
    from ner_fast.engine import tag_texts
    from ner_fast.text import tokenize

    tagger = Tagger.load(package, device=device, threads=1)
    sentences = [tokenize(t)[0] for t in texts]
    tokens = sum(map(len, sentences))

    def best(run: Any) -> float:
        return tokens / best_seconds(run, rounds)

    return {
        "tag_batch_tokens_per_s": round(best(lambda: tagger.tag_batch(sentences, batch_size=64))),
        "tag_texts_tokens_per_s": round(best(lambda: [tag_texts(tagger, texts[i : i + 32]) for i in range(0, len(texts), 32)])),
    }


def batching_ceiling(package: Path, texts: list[str], device: str = "cpu", batch: int = 16, rounds: int = 3) -> dict[str, float]:
    """The most that batching can gain, measured in process: what one request costs a server's worker
    thread (`annotate`: tokenize, tag, write the JSON answer), in batches of one request (one
    onnxruntime thread, as a worker without batching has) and of `batch` (with one thread, and with the
    threads a batching server's worker has by default, `Settings.onnx_threads_per_worker`), and the
    network's part of each (onnxruntime's `run` on the same batches).

    A server whose worker thread is its bottleneck (one worker, the default) cannot gain more from
    batching than the ratio of the worker costs, and not more than the network's own ratio even if
    everything else were free. Best of `rounds` passes."""
    from ner_fast.serve.annotate import Job, annotate
    from ner_fast.serve.settings import Settings
    from ner_fast.tagger import Tagger
    from ner_fast.text import tokenize

    wide_threads = Settings().onnx_threads_per_worker()
    taggers = {1: Tagger.load(package, device=device, threads=1), wide_threads: Tagger.load(package, device=device, threads=wide_threads)}
    jobs = [Job([t], None, True, len(t.split())) for t in texts]
    sentences = [tokenize(t)[0] for t in texts]

    def best(run: Any) -> float:
        return best_seconds(run, rounds) / len(texts) * 1000  # ms a request

    def worker(tagger: Tagger, size: int) -> float:
        return best(lambda: [annotate(tagger, jobs[i : i + size]) for i in range(0, len(jobs), size)])

    def network(tagger: Tagger, size: int) -> float:
        sessions = tagger.sessions
        inputs = [tagger.feeds(f) for f in tagger.features(sentences, batch_size=size)]  # every input a graph takes
        runs = [(sessions.get(f[tagger.input_name].shape[2], sessions.get(None)), f) for f in inputs]
        return best(lambda: [session.run(None, feed) for session, feed in runs])

    alone, batched, wide = worker(taggers[1], 1), worker(taggers[1], batch), worker(taggers[wide_threads], batch)
    net_alone, net_batched, net_wide = network(taggers[1], 1), network(taggers[1], batch), network(taggers[wide_threads], batch)
    return {
        "batch": batch, "batching_onnx_threads": wide_threads,
        "worker_ms_per_request_alone": round(alone, 4), "worker_ms_per_request_batched": round(batched, 4),
        "worker_ms_per_request_batched_all_threads": round(wide, 4),
        "network_ms_per_request_alone": round(net_alone, 4), "network_ms_per_request_batched": round(net_batched, 4),
        "network_ms_per_request_batched_all_threads": round(net_wide, 4),
        "worker_gain": round(alone / batched, 2), "network_gain": round(net_alone / net_batched, 2),
        "worker_gain_all_threads": round(alone / wide, 2), "network_gain_all_threads": round(net_alone / net_wide, 2),
    }


# ----------------------------------------------------------------------------- the load generator

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.I)


def request_bytes(text: str) -> bytes:
    body = json.dumps({"text": text}).encode()
    head = f"POST /v1/entities HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    """The body of the next HTTP answer on `reader`; RuntimeError unless it is a 200."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = CONTENT_LENGTH.search(head)
    if not head.startswith(b"HTTP/1.1 200") or length is None:
        raise RuntimeError(f"bad answer: {head[:200]!r}")
    return await reader.readexactly(int(length.group(1)))


async def one_client(port: int, requests: list[bytes], start: int, warmup: int, n: int, latencies: list[float],
                     ready: asyncio.Barrier) -> None:
    """`warmup` + `n` requests on one keep-alive connection, cycling through `requests` from `start`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    order = cycle(requests[start:] + requests[:start])
    try:
        for i in range(warmup + n):
            if i == warmup:
                await ready.wait()  # every client warmed up: the timed phase starts together
            t0 = time.perf_counter()
            writer.write(next(order))
            body = await read_answer(reader)
            if i >= warmup:
                latencies.append(time.perf_counter() - t0)
            elif i == 0 and "entities" not in json.loads(body):
                raise RuntimeError(f"answer without entities: {body[:200]!r}")
    finally:
        writer.close()


async def load(port: int, requests: list[bytes], clients: int, warmup: int, n: int) -> tuple[float, list[float]]:
    """Seconds of the timed phase and every timed latency."""
    latencies: list[float] = []
    ready = asyncio.Barrier(clients + 1)
    tasks = [asyncio.create_task(one_client(port, requests, (c * 37) % len(requests), warmup, n, latencies, ready))
             for c in range(clients)]
    await ready.wait()
    start = time.perf_counter()
    await asyncio.gather(*tasks)
    return time.perf_counter() - start, latencies


def run_async(coroutine: Any) -> Any:
    """Run a load coroutine on uvloop when installed (cheaper per request), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def run_load(port: int, requests: list[bytes], clients: int, warmup: int, n: int) -> tuple[float, list[float]]:
    return run_async(load(port, requests, clients, warmup, n))  # type: ignore[no-any-return]


async def open_client(port: int, requests: list[bytes], start: int, arrivals: np.ndarray, origin: float,
                      latencies: list[float], lags: list[float]) -> None:
    """One keep-alive connection sending a request at each of its scheduled `arrivals` (seconds after
    `origin`), or, when the previous answer is late, as soon as it is in (one request in flight on a
    connection). Latency counts from the scheduled time, so a request held up behind a slow answer is
    charged for its wait (no coordinated omission); `lags` records how late each was actually sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    order = cycle(requests[start:] + requests[:start])
    try:
        for offset in arrivals:
            due = origin + offset
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            sent = time.perf_counter()
            writer.write(next(order))
            await read_answer(reader)
            latencies.append(time.perf_counter() - due)
            lags.append(sent - due)
    finally:
        writer.close()


async def open_load(port: int, requests: list[bytes], clients: int, rate: float, n: int,
                    seed: int) -> tuple[float, list[float], list[float]]:
    """`n` requests offered at `rate` requests/s: Poisson arrivals (exponential gaps of mean 1 / `rate`),
    dealt to the `clients` connections in turn. Seconds from the schedule's start to the last answer,
    the latencies, and the send lags."""
    schedule = np.cumsum(np.random.default_rng(seed).exponential(1 / rate, size=n))
    latencies: list[float] = []
    lags: list[float] = []
    # perf_counter, not loop.time(): uvloop's clock counts whole milliseconds.
    origin = time.perf_counter() + 0.05  # every connection opens before the first arrival
    tasks = [asyncio.create_task(open_client(port, requests, (c * 37) % len(requests), schedule[c::clients], origin, latencies, lags))
             for c in range(clients)]
    await asyncio.gather(*tasks)
    return time.perf_counter() - origin, latencies, lags


# ----------------------------------------------------------------------------- servers


def start_server(package: Path, options: list[str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", "from ner_fast.cli import main; main()", "serve", str(package), "--port", "0", *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    said = []
    for line in process.stderr:  # warnings (e.g. --device cuda without CUDA) may come before the address
        said.append(line)
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return process, int(found.group(1))
    process.kill()
    raise RuntimeError(f"the server did not start: {''.join(said)}")


def stop_server(process: subprocess.Popen[str]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_means(port: int) -> dict[str, float]:
    """Mean requests and tokens per tagger batch so far, from the server's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()

    def value(name: str) -> float:
        return float(re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M).group(1))  # type: ignore[union-attr]

    batches = value("ner_fast_batch_requests_count")
    return {"batches": int(batches), "requests_per_batch": round(value("ner_fast_batch_requests_sum") / batches, 2),
            "tokens_per_batch": round(value("ner_fast_batch_tokens_sum") / batches, 1)}


def server_providers(port: int) -> list[str]:
    """The onnxruntime execution providers the server's tagger runs on (its `/v1/model`)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/model", timeout=30) as answer:
        return list(json.loads(answer.read())["providers"])


def summary(seconds: float, latencies: list[float], tokens_per_request: float) -> dict[str, float]:
    ms = np.asarray(latencies) * 1e3
    n = len(latencies)
    return {
        "requests": n, "seconds": round(seconds, 3), "requests_per_s": round(n / seconds, 1),
        "tokens_per_s": round(n * tokens_per_request / seconds), "mean_ms": round(float(ms.mean()), 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def closed_loop(args: argparse.Namespace, servers: dict[str, tuple[subprocess.Popen[str], int]], requests: list[bytes],
                tokens_per_request: float, reference: dict[str, float]) -> dict[str, Any]:
    """The saturation measurement: `--clients` closed-loop clients on each server in turn, `--rounds` rounds."""
    per_round = -(-args.requests // args.rounds)  # the last round takes what is left
    seconds = dict.fromkeys(servers, 0.0)
    client_cpu = dict.fromkeys(servers, 0.0)
    latencies: dict[str, list[float]] = {name: [] for name in servers}
    rounds: dict[str, list[float]] = {name: [] for name in servers}
    results: dict[str, Any] = {}
    cpu_before = {name: cpu_seconds(process.pid) for name, (process, _) in servers.items()}
    for r in range(args.rounds):
        n = min(per_round, args.requests - r * per_round)
        for name, (_, port) in servers.items():
            cpu = time.process_time()
            took, timed = run_load(port, requests, args.clients, args.warmup if r == 0 else 0, n)
            client_cpu[name] += time.process_time() - cpu
            seconds[name] += took
            latencies[name] += timed
            rounds[name].append(round(len(timed) / took, 1))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{name} {rounds[name][-1]:,.0f}" for name in servers) + " req/s", flush=True)
    sent = args.clients * (args.requests + args.warmup)
    for name, (process, port) in servers.items():
        cpu_after = cpu_seconds(process.pid)
        row = summary(seconds[name], latencies[name], tokens_per_request)
        row["rounds_requests_per_s"] = rounds[name]
        # Little's law: with `clients` requests always in flight, mean latency = clients / throughput,
        # whatever the server does; p50 sits near it.
        row["littles_law_mean_ms"] = round(args.clients / row["requests_per_s"] * 1e3, 3)
        # CPU the server spent per request (warm-up included): unlike wall time, barely moved by a shared machine.
        if cpu_before[name] is not None and cpu_after is not None:
            row["server_cpu_ms_per_request"] = round((cpu_after - cpu_before[name]) * 1e3 / sent, 3)
        row["client_cpu_ms_per_request"] = round(client_cpu[name] * 1e3 / sent, 3)
        row.update(batch_means(port))
        alone_seconds, alone = run_load(port, requests, 1, args.warmup, args.alone_requests)
        row["one_client"] = {k: v for k, v in summary(alone_seconds, alone, tokens_per_request).items()
                             if k in ("requests", "requests_per_s", "p50_ms", "p99_ms")}
        row["fraction_of_tag_batch"] = round(row["tokens_per_s"] / reference["tag_batch_tokens_per_s"], 3)
        row["fraction_of_tag_texts"] = round(row["tokens_per_s"] / reference["tag_texts_tokens_per_s"], 3)
        results[name] = row
    return results


def open_loop(args: argparse.Namespace, servers: dict[str, tuple[subprocess.Popen[str], int]], requests: list[bytes],
              saturation: float) -> list[dict[str, Any]]:
    """At each `--rates` fraction of `saturation` (batching off's closed-loop requests/s), `--open-requests`
    requests offered at that fixed rate (Poisson arrivals) to each server in turn."""
    rows = []
    for k, fraction in enumerate(args.rates):
        rate = fraction * saturation
        row: dict[str, Any] = {"fraction_of_batching_off_saturation": fraction, "offered_requests_per_s": round(rate, 1)}
        for name, (process, port) in servers.items():
            cpu, server_cpu = time.process_time(), cpu_seconds(process.pid)
            # asyncio's own loop, not uvloop: its timers never fire early (uvloop's, in whole milliseconds, fire
            # up to 1.4 ms early, which would send before the schedule and hide that much latency);
            # they fire up to ~1 ms late instead, which the latencies include and `send_lag` shows.
            took, latencies, lags = asyncio.run(open_load(port, requests, args.clients, rate, args.open_requests, seed=k))
            client_cpu = time.process_time() - cpu
            server_after = cpu_seconds(process.pid)
            ms, lag_ms = np.asarray(latencies) * 1e3, np.asarray(lags) * 1e3
            result = {
                "requests": len(latencies), "achieved_requests_per_s": round(len(latencies) / took, 1),
                "p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
                "mean_ms": round(float(ms.mean()), 3),
                # From the actual send instead: what the server and the network took, without the time a
                # request waited for its schedule's turn on a busy connection (coordinated omission).
                "p50_from_send_ms": round(float(np.percentile(ms - lag_ms, 50)), 3),
                # How late the client sent (its timer and CPU), included in the latencies above.
                "send_lag_p50_ms": round(float(np.percentile(lag_ms, 50)), 3),
                "send_lag_p99_ms": round(float(np.percentile(lag_ms, 99)), 3),
                "client_cpu_ms_per_request": round(client_cpu * 1e3 / len(latencies), 3),
            }
            if server_cpu is not None and server_after is not None:
                result["server_cpu_ms_per_request"] = round((server_after - server_cpu) * 1e3 / len(latencies), 3)
            row[name] = result
            print(f"open loop {fraction:g}x ({rate:,.0f} req/s offered) {name:22s} achieved {result['achieved_requests_per_s']:8,.0f} req/s  "
                  f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:8.2f} ms  (send lag p50 {result['send_lag_p50_ms']:.2f} ms; "
                  f"client CPU {result['client_cpu_ms_per_request']:.3f} ms/request)", flush=True)
        rows.append(row)
    return rows


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from ner_fast.text import tokenize

    load_before = load_average()
    texts, corpus = twenty_token_sentences(args.sentences)
    package, described = choose_package(args.package, corpus, texts, work)
    del corpus
    tokens_per_request = float(np.mean([len(tokenize(t)[0]) for t in texts]))
    requests = [request_bytes(t) for t in texts]
    print(f"model: {described}; {len(texts)} sentences of {tokens_per_request:g} tokens; "
          f"{args.clients} clients x {args.requests} requests (+{args.warmup} warm-up)")
    reference = in_process(package, texts, args.device)
    print(f"in process, one thread: tag_batch {reference['tag_batch_tokens_per_s']:,} tokens/s, "
          f"tag_texts {reference['tag_texts_tokens_per_s']:,} tokens/s")
    ceiling = batching_ceiling(package, texts, args.device)
    print(f"in process, a request alone (1 thread) vs in a batch of {ceiling['batch']} (1 thread; "
          f"{ceiling['batching_onnx_threads']} threads): the worker's cost {ceiling['worker_ms_per_request_alone']:.3f} vs "
          f"{ceiling['worker_ms_per_request_batched']:.3f} ms ({ceiling['worker_gain']:.2f}x); "
          f"{ceiling['worker_ms_per_request_batched_all_threads']:.3f} ms ({ceiling['worker_gain_all_threads']:.2f}x); "
          f"the network's part {ceiling['network_ms_per_request_alone']:.3f} vs {ceiling['network_ms_per_request_batched']:.3f} "
          f"({ceiling['network_gain']:.2f}x); {ceiling['network_ms_per_request_batched_all_threads']:.3f} ms "
          f"({ceiling['network_gain_all_threads']:.2f}x)")
    # All servers run at once, idle but for the one under load; the load goes to them in turn, in
    # `--rounds` rounds, so a change in what else the machine runs touches every server alike.
    configs = {f"{mode}_threads{threads}": [*options, "--threads", str(threads), "--device", args.device, *args.server_option]
               for threads in args.threads for mode, options in SETTINGS.items()}
    servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
    results: dict[str, Any] = {}
    providers: dict[str, list[str]] = {}
    rates: list[dict[str, Any]] = []
    try:
        for name, options in configs.items():
            servers[name] = start_server(package, options)
        providers = {name: server_providers(port) for name, (_, port) in servers.items()}
        wanted = "CUDAExecutionProvider" if args.device == "cuda" else "CPUExecutionProvider"
        elsewhere = sorted({found[0] for found in providers.values()} - {wanted})
        if elsewhere:  # e.g. --device cuda where onnxruntime has no CUDA: the figures are the CPU's
            print(f"NOTE: the servers run on {', '.join(elsewhere)}, not {wanted} (--device {args.device}): "
                  "these figures are not the device's (the JSON records each server's providers)")
        results = closed_loop(args, servers, requests, tokens_per_request, reference)
        if args.rates:
            threads = args.threads[0]
            pair = {mode: servers[f"{mode}_threads{threads}"] for mode in SETTINGS}
            rates = open_loop(args, pair, requests, results[f"batching_off_threads{threads}"]["requests_per_s"])
    finally:
        for name, (process, _) in servers.items():
            code = stop_server(process)
            if name in results:
                results[name]["exit_code"] = code
    print("closed loop (each client sends its next request when its answer is in):")
    for name, row in results.items():
        print(f"{name:22s} {row['requests_per_s']:8,.0f} req/s {row['tokens_per_s']:9,} tokens/s  "
              f"p50 {row['p50_ms']:6.2f} ms (Little's law: mean = {args.clients} / throughput = {row['littles_law_mean_ms']:.2f} ms; "
              f"measured mean {row['mean_ms']:.2f} ms)  p99 {row['p99_ms']:6.2f} ms  {row['requests_per_batch']:5.1f} requests/batch  "
              f"{row['fraction_of_tag_batch']:.0%} of in-process tag_batch; one client: p50 {row['one_client']['p50_ms']:.2f} ms; "
              f"CPU a request: server {row.get('server_cpu_ms_per_request', float('nan')):.3f} ms, client {row['client_cpu_ms_per_request']:.3f} ms")
    speedups: dict[str, dict[str, float]] = {}
    for threads in args.threads:
        on, off = results[f"batching_threads{threads}"], results[f"batching_off_threads{threads}"]
        speedups[f"threads{threads}"] = {
            "throughput": round(on["requests_per_s"] / off["requests_per_s"], 2),
            "server_cpu_per_request": round(off["server_cpu_ms_per_request"] / on["server_cpu_ms_per_request"], 2),
        }
        print(f"{threads} thread(s): dynamic batching {speedups[f'threads{threads}']['throughput']:.2f}x the throughput "
              f"of batching off, {speedups[f'threads{threads}']['server_cpu_per_request']:.2f}x less server CPU a request")
    if rates:
        print(f"open loop ({args.threads[0]} thread(s), {args.clients} connections, Poisson arrivals, latency from the scheduled send):")
        for row in rates:
            print(f"  {row['fraction_of_batching_off_saturation']:g}x = {row['offered_requests_per_s']:,.0f} req/s offered: " + "; ".join(
                f"{mode} achieved {row[mode]['achieved_requests_per_s']:,.0f} req/s, p50 {row[mode]['p50_ms']:.2f} ms, p99 {row[mode]['p99_ms']:.2f} ms"
                for mode in SETTINGS))
    return {
        "model": described, "device": args.device, "providers": providers,
        "clients": args.clients, "requests_per_client": args.requests, "warmup_per_client": args.warmup,
        "rounds": args.rounds, "sentences": len(texts), "tokens_per_request": tokens_per_request,
        "server_options": args.server_option, "in_process_one_thread": reference, "batching_ceiling": ceiling,
        "servers": results,
        "speedup_batching_vs_off": speedups,
        "open_loop": {"threads": args.threads[0], "connections": args.clients, "arrivals": "poisson",
                      "requests_per_rate": args.open_requests, "rates": rates},
        "cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", help="model package folder (default: the bundled one, else a synthetic one)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the servers and the in-process reference run (default cpu)")
    parser.add_argument("--sentences", type=int, default=500, help="different sentences sent in turn (default 500)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per client (default 2000)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per client first (default 20)")
    parser.add_argument("--alone-requests", type=int, default=500, help="requests of the one-client latency run")
    parser.add_argument("--rounds", type=int, default=5, help="the requests of each client are sent in this many rounds, "
                        "the servers taking turns (default 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="worker threads of the servers: each count is run with batching and without (default 1 2)")
    parser.add_argument("--rates", type=float, nargs="*", default=[0.5, 0.9, 1.2],
                        help="open-loop rates, as fractions of batching off's closed-loop requests/s, each offered to the "
                        "servers with the first --threads count (default 0.5 0.9 1.2; none: skip the open loop)")
    parser.add_argument("--open-requests", type=int, default=6000, help="requests of each open-loop rate and server (default 6000)")
    parser.add_argument("--server-option", action="append", default=[],
                        help="extra option for every server, e.g. --server-option=--max-wait-ms=1 (repeatable)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ner_fast_bench_serve_") as work:
        result = bench(args, Path(work))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
