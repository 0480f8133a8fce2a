"""Test data shared by several test files: GMB and CoNLL samples with their quirks, `write_conll`,
a three-sentence corpus and `make_checkpoint`, which writes a small checkpoint folder in the format
of `ner_fast.checkpoint` with random parameters (export parity does not need a trained model, and
random weights exercise every gate); `float_tol`, the one rule the suite's numeric tolerances are
derived from."""
from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ner_fast.atomic import atomic_write_json
from ner_fast.checkpoint import CONFIG_VERSION, ModelConfig, init_params, save_params
from ner_fast.corpus import Corpus
from ner_fast.features import CASING_CLASSES, ROW_CASING, ROW_CHARS, ROW_POS, ROW_WORD
from ner_fast.vocab import Vocabularies

#: The benchmarks' folder: scripts, not a package; `benchmark_module` loads one for a test.
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def benchmark_module(name: str, monkeypatch: Any = None) -> ModuleType:
    """`benchmarks/NAME.py` loaded as a module, with the benchmarks' folder on sys.path for this test only
    (`monkeypatch`: a benchmark imports its siblings, such as `_machine`; None for one that imports none,
    loaded when a test module is)."""
    if monkeypatch is not None:
        monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def float_tol(terms: int, scale: float = 1.0, dtype: Any = np.float32) -> float:
    """How far two computations of the same quantity in `dtype` (float32 unless said) may differ:
    `terms` rounded operations on values of magnitude `scale` (a sum or dot product of N terms: N; a
    chain of steps: the terms of every step). An N-term sum in any order, by any kernel (vector width,
    FMA or not, thread split), errs by at most (N - 1) * eps/2 * sum |x_i| (Higham, Accuracy and
    Stability of Numerical Algorithms, 2002, eq. 4.4), so two such results differ by at most
    N * eps * scale (eps: float32 2**-23 ~ 1.19e-7, float64 2**-52 ~ 2.2e-16). Derived from what is
    compared, never fitted to one CPU: `.ci/run` also runs the numeric tests (pytest marker `numeric`)
    with DNNL_MAX_CPU_ISA=AVX2 on 1 and 2 threads (`./dev.sh test-isa`)."""
    return terms * float(np.finfo(dtype).eps) * scale


def network_terms(config: ModelConfig, seq_len: int) -> int:
    """The float32 operations a tag probability of a `config` network passes through over `seq_len`
    steps (the `terms` of `float_tol`): the character convolution, each LSTM layer's gate dot products
    (inputs, state and bias) at every step, the output layer and the softmax. Gates, states and
    probabilities are at most 1 in size and sigmoid and tanh are 1-Lipschitz, so scale 1 goes with it."""
    per_step = config.input_dim + config.hidden + 1 + (config.num_layers - 1) * (config.state_dim + config.hidden + 1)
    return config.char_dim * max(config.filter_widths) + seq_len * per_step + config.state_dim + config.n_tags


# A GMB-style CSV with the shipped file's quirks: CRLF, quoted fields, the sentence number only on
# a sentence's first row, the word "None", a token with a non-breaking space, a cp1252 quote.
GMB_SAMPLE = (
    "Sentence #,Word,POS,Tag\r\n"
    "Sentence: 1,Thousands,NNS,O\r\n"
    ",of,IN,O\r\n"
    ",London,NNP,B-geo\r\n"
    ',"10,000",CD,O\r\n'
    ',"""",``,O\r\n'
    ",None,NN,O\r\n"
    "Sentence: 2,5\xa0storm,NN,O\r\n"
    ",It\u2019s,PRP,O\r\n"
    ",NA,NNP,B-org\r\n"
    ",null,NN,O\r\n"
).encode("cp1252")

CONLL_SAMPLE = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
"""


# An absolute path (POSIX, or a Windows drive): a whole string that is one of at least one component
# ("/run3"), or one of at least two components anywhere in a string ("... --out=/tmp/x/y ...").
_ABSOLUTE_PATH = re.compile(r"^(?:/|[A-Za-z]:[\\/])[^\s/\\]|(?:^|[\s=\[('\"])(?:/|[A-Za-z]:[\\/])[^\s/\\]+[/\\]")


def json_strings(doc: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a JSON document (keys included), with where it is: `source.members[0].model_dir`."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            inner = f"{where}.{key}" if where else str(key)
            yield f"{inner} (key)", str(key)
            yield from json_strings(value, inner)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from json_strings(value, f"{where}[{i}]")
    elif isinstance(doc, str):
        yield where, doc


def absolute_paths(doc: Any) -> list[tuple[str, str]]:
    """(where, string) for each string of a JSON document that holds an absolute path."""
    return [(where, s) for where, s in json_strings(doc) if _ABSOLUTE_PATH.search(s)]


def write_conll(path: Path, sentences: list[list[tuple[str, ...]]]) -> Path:
    """Write sentences of column tuples as a CoNLL file (tab separated, blank line between)."""
    text = "\n\n".join("\n".join("\t".join(cols) for cols in sent) for sent in sentences)
    path.write_text(text + "\n", encoding="utf-8")
    return path


SENTENCES = [
    ["Angela", "Merkel", "visited", "Paris", "on", "Monday", "."],
    ["The", "UN", "met", "in", "New", "York", "."],
    ["Prices", "rose", "3.5", "%", "in", "2009", "."],
]
POS = [
    ["NNP", "NNP", "VBD", "NNP", "IN", "NNP", "."],
    ["DT", "NNP", "VBD", "IN", "NNP", "NNP", "."],
    ["NNS", "VBD", "CD", "NN", "IN", "CD", "."],
]
TAGS = [
    ["B-per", "I-per", "O", "B-geo", "O", "B-tim", "O"],
    ["O", "B-org", "O", "O", "B-geo", "I-geo", "O"],
    ["O", "O", "O", "O", "O", "B-tim", "O"],
]
SMALL = dict(
    max_token_chars=8, use_casing=True, casing_dim=3, char_dim=5, filters=4, word_dim=6, hidden=7,
    num_layers=2, filter_widths=[2, 3], crf=False,
)


def make_checkpoint(
    folder: Path,
    buckets: list[int] = [4, 9],
    with_pos: bool = True,
    seed: int = 0,
    decode: str = "argmax",
    corpus: Corpus | None = None,
    train: dict[str, Any] | None = None,
    **arch: Any,
) -> tuple[ModelConfig, dict[str, np.ndarray], Vocabularies]:
    """A checkpoint folder (config.json, vocab.json, best.params.npz) with random parameters, trained
    (as config.json says) to be decoded by `decode`, with vocabularies of `corpus` (default: the three
    sentences above) and `train` added to config.json's train section.

    The weights are scaled up from `init_params` so the tag probabilities are far from uniform.
    """
    corpus = corpus or Corpus.from_sentences(SENTENCES, POS if with_pos else None, TAGS)
    vocabs = Vocabularies.build(corpus, lowercase=True)
    config = ModelConfig(
        n_words=len(vocabs.words),
        n_chars=len(vocabs.chars),
        n_tags=len(vocabs.tags),
        n_pos=len(vocabs.pos) if with_pos else 0,
        n_casing=len(CASING_CLASSES) + 1,
        # with_pos: a model that reads POS tags (no POS head), unless `arch` says otherwise.
        **{**SMALL, "use_pos": with_pos, "pos_aux_weight": 0.0, **arch},
    )
    rng = np.random.default_rng(seed)
    params = {k: (v * 3 + rng.normal(0, 0.3, v.shape)).astype(np.float32) for k, v in init_params(config, seed).items()}
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "format_version": CONFIG_VERSION,
        "model": config.to_dict(),
        "data": {"buckets": buckets, "max_token_chars": config.max_token_chars},
        "train": {"decode": decode, **(train or {})},
        "versions": {"mxnet": "1.9.1"},
    }
    atomic_write_json(folder / "config.json", doc)
    vocabs.save(folder / "vocab.json")
    save_params(folder / "best.params.npz", params)
    return config, params, vocabs


def random_features(
    rng: np.random.Generator, lengths: list[int], seq_len: int, config: ModelConfig, first_pos: int = 1
) -> np.ndarray:
    """Random int features (B, F, seq_len) in the documented layout, zero beyond each length; POS ids
    from `first_pos` (2 where they serve as the POS head's labels: 0 and 1 are <pad> and <unk>)."""
    x = np.zeros((len(lengths), config.n_features, seq_len), dtype=np.int32)
    for b, n in enumerate(lengths):
        x[b, ROW_WORD, :n] = rng.integers(1, config.n_words, n)
        x[b, ROW_CASING, :n] = rng.integers(1, config.n_casing, n)
        x[b, ROW_POS, :n] = rng.integers(first_pos, config.n_pos, n)
        for t in range(n):
            k = int(rng.integers(1, config.max_token_chars + 1))
            x[b, ROW_CHARS : ROW_CHARS + k, t] = rng.integers(1, config.n_chars, k)
    return x


def sigterm_when(command: list[str], ready: Callable[[], bool], what: str, timeout: float = 120) -> tuple[int, str, str]:
    """Run `command`, send it SIGTERM as soon as `ready()` (polled every 50 ms; `what` names the moment
    for the failure message), and return its exit code, stdout and stderr. It is killed if still alive."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None, f"it ended before {what}: {process.communicate()}"
            assert time.monotonic() < deadline, f"never {what}"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stdout, stderr


class PackageGraph:
    """A package's graph of one bucket length (None: the dynamic graph) used like one onnxruntime session,
    `run(names, {"features": x})`, whichever kind the package is: for a package with a character graph
    (format 2) that graph runs first on every position's character row, uncached, and its output is fed
    as the second input, as the tagger feeds it (from its cache)."""

    def __init__(self, package: Any, seq_len: int | None, options: Any = None) -> None:
        import onnxruntime as ort

        from ner_fast.package import load_package

        pkg = package if hasattr(package, "graph_path") else load_package(package)
        cpu = ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(pkg.graph_path(seq_len)), options, providers=cpu)
        path = pkg.char_graph_path
        self.chars = ort.InferenceSession(str(path), options, providers=cpu) if path is not None else None

    def run(self, names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        feeds = dict(feeds)
        if self.chars is not None:
            x = feeds["features"]
            b, _, seq_len = x.shape
            rows = np.ascontiguousarray(x[:, ROW_CHARS:, :].transpose(0, 2, 1)).reshape(b * seq_len, -1)
            inputs = self.session.get_inputs()
            feeds[inputs[1].name] = self.chars.run(None, {self.chars.get_inputs()[0].name: rows})[0].reshape(b, seq_len, -1)
        return self.session.run(names, feeds)
