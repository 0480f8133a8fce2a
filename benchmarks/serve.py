"""Serving benchmark: `ner-fast serve` under 32 concurrent clients, with dynamic batching and without.

    python benchmarks/serve.py [--package PKG] [--clients 32] [--requests 2000] [--rounds 5] [--threads 1 2] [--json FILE]

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
texts at a time, both with one onnxruntime thread as each server worker has. Also the latency of one
client alone (no queueing) on each server.

The load generator is a minimal HTTP/1.1 client on asyncio streams (uvloop when installed): it sends
pre-built request bytes and reads each answer by its Content-Length, so on a 2-core machine it takes
as little as possible of the CPU the server needs (httpx costs several times more per request). Every
answer's status is checked and the first answer of each client is parsed.

The model: `--package`, else the bundled default package, else a package with the default
architecture and random weights over the bundled corpus's vocabulary (speed does not depend on the
weights' values; the `O` bias is set so that entities are as frequent as in the corpus, since the
answers' length does depend on them), exported int8 like the bundled one. The machine may be shared: `uptime`'s load
average is recorded before and after. Loopback only; every loop is bounded by its request count.
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

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"batching": [], "batching_off": ["--max-batch-tokens", "0"]}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


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
    from ner_fast.checkpoint import CONFIG_VERSION, ModelConfig, init_params, save_params
    from ner_fast.corpus import Corpus
    from ner_fast.features import CASING_CLASSES
    from ner_fast.onnx_export import export_model
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
        save_params(folder / "best.params.npz", params)
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


def in_process(package: Path, texts: list[str], rounds: int = 3) -> dict[str, float]:
    """Tokens/s of `tag_batch` (pre-tokenized, batch 64) and of `tag_texts` (raw text, 32 texts a call)
    on the sentences, with one onnxruntime thread; the best of `rounds` passes after a warm-up pass."""
    from ner_fast.tagger import Tagger
    from ner_fast.text import tag_texts, tokenize

    tagger = Tagger.load(package, device="cpu", threads=1)
    sentences = [tokenize(t)[0] for t in texts]
    tokens = sum(map(len, sentences))

    def best(run: Any) -> float:
        run()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return tokens / min(times)

    return {
        "tag_batch_tokens_per_s": round(best(lambda: tagger.tag_batch(sentences, batch_size=64))),
        "tag_texts_tokens_per_s": round(best(lambda: [tag_texts(tagger, texts[i : i + 32]) for i in range(0, len(texts), 32)])),
    }


# ----------------------------------------------------------------------------- the load generator

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.I)


def request_bytes(text: str) -> bytes:
    body = json.dumps({"text": text}).encode()
    head = f"POST /v1/entities HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


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
            head = await reader.readuntil(b"\r\n\r\n")
            length = CONTENT_LENGTH.search(head)
            if not head.startswith(b"HTTP/1.1 200") or length is None:
                raise RuntimeError(f"bad answer: {head[:200]!r}")
            body = await reader.readexactly(int(length.group(1)))
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


def run_load(port: int, requests: list[bytes], clients: int, warmup: int, n: int) -> tuple[float, list[float]]:
    try:
        import uvloop

        return uvloop.run(load(port, requests, clients, warmup, n))
    except ImportError:
        return asyncio.run(load(port, requests, clients, warmup, n))


# ----------------------------------------------------------------------------- servers


def start_server(package: Path, options: list[str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", "from ner_fast.cli import main; main()", "serve", str(package), "--port", "0", *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not found:
        process.kill()
        raise RuntimeError(f"the server did not start: {line}{process.stderr.read()}")
    return process, int(found.group(1))


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


def summary(seconds: float, latencies: list[float], tokens_per_request: float) -> dict[str, float]:
    ms = np.asarray(latencies) * 1e3
    n = len(latencies)
    return {
        "requests": n, "seconds": round(seconds, 3), "requests_per_s": round(n / seconds, 1),
        "tokens_per_s": round(n * tokens_per_request / seconds), "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from ner_fast.text import tokenize

    load_before = load_average()
    texts, corpus = twenty_token_sentences()
    package, described = choose_package(args.package, corpus, texts, work)
    del corpus
    tokens_per_request = float(np.mean([len(tokenize(t)[0]) for t in texts]))
    requests = [request_bytes(t) for t in texts]
    print(f"model: {described}; {len(texts)} sentences of {tokens_per_request:g} tokens; "
          f"{args.clients} clients x {args.requests} requests (+{args.warmup} warm-up)")
    reference = in_process(package, texts)
    print(f"in process, one thread: tag_batch {reference['tag_batch_tokens_per_s']:,} tokens/s, "
          f"tag_texts {reference['tag_texts_tokens_per_s']:,} tokens/s")
    # All servers run at once, idle but for the one under load; the load goes to them in turn, in
    # `--rounds` rounds, so a change in what else the machine runs touches every server alike.
    configs = {f"{mode}_threads{threads}": [*options, "--threads", str(threads), *args.server_option]
               for threads in args.threads for mode, options in SETTINGS.items()}
    servers = {name: start_server(package, options) for name, options in configs.items()}
    per_round = -(-args.requests // args.rounds)  # the last round takes what is left
    seconds = dict.fromkeys(servers, 0.0)
    latencies: dict[str, list[float]] = {name: [] for name in servers}
    rounds: dict[str, list[float]] = {name: [] for name in servers}
    results: dict[str, Any] = {}
    try:
        cpu_before = {name: cpu_seconds(process.pid) for name, (process, _) in servers.items()}
        for r in range(args.rounds):
            n = min(per_round, args.requests - r * per_round)
            for name, (_, port) in servers.items():
                took, timed = run_load(port, requests, args.clients, args.warmup if r == 0 else 0, n)
                seconds[name] += took
                latencies[name] += timed
                rounds[name].append(round(len(timed) / took, 1))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{name} {rounds[name][-1]:,.0f}" for name in servers) + " req/s", flush=True)
        for name, (process, port) in servers.items():
            cpu_after = cpu_seconds(process.pid)
            row = summary(seconds[name], latencies[name], tokens_per_request)
            row["rounds_requests_per_s"] = rounds[name]
            # CPU the server spent per request (warm-up included): unlike wall time, barely moved by a shared machine.
            if cpu_before[name] is not None and cpu_after is not None:
                row["server_cpu_ms_per_request"] = round((cpu_after - cpu_before[name]) * 1e3 / (args.clients * (args.requests + args.warmup)), 3)
            row.update(batch_means(port))
            alone_seconds, alone = run_load(port, requests, 1, args.warmup, args.alone_requests)
            row["one_client"] = {k: v for k, v in summary(alone_seconds, alone, tokens_per_request).items()
                                 if k in ("requests", "requests_per_s", "p50_ms", "p99_ms")}
            row["fraction_of_tag_batch"] = round(row["tokens_per_s"] / reference["tag_batch_tokens_per_s"], 3)
            row["fraction_of_tag_texts"] = round(row["tokens_per_s"] / reference["tag_texts_tokens_per_s"], 3)
            results[name] = row
    finally:
        for name, (process, _) in servers.items():
            code = stop_server(process)
            if name in results:
                results[name]["exit_code"] = code
    for name, row in results.items():
        print(f"{name:22s} {row['requests_per_s']:8,.0f} req/s {row['tokens_per_s']:9,} tokens/s  "
              f"p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms  {row['requests_per_batch']:5.1f} requests/batch  "
              f"{row['fraction_of_tag_batch']:.0%} of in-process tag_batch; one client: p50 {row['one_client']['p50_ms']:.2f} ms; "
              f"server CPU {row.get('server_cpu_ms_per_request', float('nan')):.3f} ms/request")
    speedups: dict[str, dict[str, float]] = {}
    for threads in args.threads:
        on, off = results[f"batching_threads{threads}"], results[f"batching_off_threads{threads}"]
        speedups[f"threads{threads}"] = {
            "throughput": round(on["requests_per_s"] / off["requests_per_s"], 2),
            "server_cpu_per_request": round(off["server_cpu_ms_per_request"] / on["server_cpu_ms_per_request"], 2),
        }
        print(f"{threads} thread(s): dynamic batching {speedups[f'threads{threads}']['throughput']:.2f}x the throughput "
              f"of batching off, {speedups[f'threads{threads}']['server_cpu_per_request']:.2f}x less server CPU a request")
    return {
        "model": described, "clients": args.clients, "requests_per_client": args.requests, "warmup_per_client": args.warmup,
        "rounds": args.rounds, "sentences": len(texts), "tokens_per_request": tokens_per_request,
        "server_options": args.server_option, "in_process_one_thread": reference, "servers": results,
        "speedup_batching_vs_off": speedups, "cpus": os.cpu_count(), "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", help="model package folder (default: the bundled one, else a synthetic one)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per client (default 2000)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per client first (default 20)")
    parser.add_argument("--alone-requests", type=int, default=500, help="requests of the one-client latency run")
    parser.add_argument("--rounds", type=int, default=5, help="the requests of each client are sent in this many rounds, "
                        "the servers taking turns (default 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="worker threads of the servers: each count is run with batching and without (default 1 2)")
    parser.add_argument("--server-option", action="append", default=[],
                        help="extra option for every server, e.g. --server-option=--max-wait-ms=1 (repeatable)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ner_fast_bench_serve_") as work:
        result = bench(args, Path(work))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
