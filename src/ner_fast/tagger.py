"""`Tagger`: named-entity tagging of pre-tokenized text with an exported model package on onnxruntime.

    from ner_fast import Tagger
    tagger = Tagger.load("export/gmb")          # device="auto" | "cpu" | "cuda", threads=..., workers=...
    tokens = ["Angela", "Merkel", "visited", "Paris", "."]
    pos = ["NNP", "NNP", "VBD", "NNP", "."]     # only for models trained with POS (tagger.uses_pos)
    tagger.tag(tokens, pos)                     # ['B-per', 'I-per', 'O', 'B-geo', 'O']
    tagger.entities(tokens, pos)
    # [Entity(label='per', start=0, end=13, text='Angela Merkel', score=0.99, token_start=0, token_end=2), ...]
    # (offsets into " ".join(tokens); raw text: `tagger(text)` / `tagger.pipe(texts)`, see ner_fast.text)
    tagger.tag_batch([tokens], return_pos=True)  # a model with a POS head (tagger.pos_tags is not None):
    # ([['B-per', 'I-per', 'O', 'B-geo', 'O']], [['NNP', 'NNP', 'VBD', 'NNP', '.']])

How a call runs: the compiled kernels of `ner_fast.features` turn all tokens into feature ids at once;
`buckets.plan_batches` makes the batches: each sentence in the smallest loaded bucket graph that fits it,
and sentences longer than every bucket (all of them with a package holding the dynamic graph alone, the
export default) sorted by length into batches under `buckets.MAX_BATCH_TOKENS` padded tokens, so the
cost follows the real tokens; a sentence longer than that runs as consecutive pieces of at most that
many tokens (`text.piece_lengths`, cut where no name is split if it can), so that no input makes one run's
memory grow without bound. Batches
run through onnxruntime and the results come back in input order.

This module imports onnxruntime and NumPy only: never mxnet or onnx. One `Tagger` may be shared by
threads: onnxruntime sessions are thread-safe, the sessions and lookup tables are built once in
`__init__`, and a call keeps all its state in local variables, but for the character cache of a format-2
package (`ner_fast.char_cache`), which only grows, under a lock, and never changes a published row.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set as AbstractSet
from types import MappingProxyType
from typing import Any, Literal, overload

import numpy as np
import onnxruntime as ort

from ner_fast import _kernels
from ner_fast.buckets import MAX_BATCH_TOKENS, check_batch_size, checked_bucket_lengths, plan_batches
from ner_fast.char_cache import DEFAULT_CHAR_CACHE, check_capacity
from ner_fast.cores import check_threads
from ner_fast.decode import CRF, DECODERS, Decoder
from ner_fast.devices import DEFAULT_DEVICE, Device
from ner_fast.features import ROW_CHARS, featurize
from ner_fast.labels import LabelMap, label_map, package_descriptions
from ner_fast.package import BUNDLED_NAMES, Package, load_package, package_path
from ner_fast.sessions import (
    CPU,
    CUDA,
    char_features,
    check_graphs,
    check_session_options,
    make_session_options,
    open_session,
    preload_cuda_libraries,
    providers_for,
)
from ner_fast.schemes import TagScheme
from ner_fast.engine import BATCH_SIZE, TAG_BATCH_SIZE, Plan, TagWork, check_reads_no_pos, check_texts, tag_texts
from ner_fast.engine import pipe as pipe_texts
from ner_fast.doc import Doc, Entity, spans
from ner_fast.text import piece_lengths, token_fault
from ner_fast.vocab import Vocabularies

class Tagger:
    """Tags pre-tokenized sentences with a model package (see the module docstring).

    Build one with `Tagger.load`, or pass ready-made onnxruntime sessions: `sessions` maps each bucket
    length to its session, and `None` to the dynamic graph's session (required).

    `decode` turns probabilities into tags (`ner_fast.decode`): "argmax" per token, or "bio", the most
    probable sequence that obeys IOB2 (no `I-X` without an `X` before it); default: the one the model
    was trained and selected with, as recorded in the package.

    `workers` > 1 runs that many batches of one `tag_batch` call at once, in threads (onnxruntime
    releases the GIL). On 2 shared cores, 2 workers of 1 intra-op thread each tagged a corpus 1.2-2x
    faster than 1 worker of 2 threads: an LSTM step is too small to split well across threads.

    A package whose graphs take the character features as an input (format 2, model.json `char_graph`)
    runs `char_session`, the character graph's session (None: the package's own, opened with the dynamic
    session's providers); its features are cached per character row for `char_cache` rows
    (`ner_fast.char_cache.CharCache`). Which kind a package is, the graphs say: the dynamic graph's second
    input. An older package computes them in its graphs (`char_session` stays unused).
    """

    def __init__(
        self,
        package: Package,
        sessions: Mapping[int | None, ort.InferenceSession],
        decode: str | None = None,
        workers: int = 1,
        labels: str | os.PathLike[str] | Mapping[str, str | None] | LabelMap | None = None,
        char_session: ort.InferenceSession | None = None,
        char_cache: int = DEFAULT_CHAR_CACHE,
    ) -> None:
        if None not in sessions:
            raise ValueError("sessions need the dynamic graph's session under the key None")
        workers = check_threads("workers", workers)
        char_cache = check_capacity(char_cache)  # whatever the package's format: a bad value is never silently ignored
        self.workers = workers
        self.decode = decode or package.model["decode"]
        if self.decode not in DECODERS:
            raise ValueError(f"decode must be one of {', '.join(DECODERS)}, got {self.decode!r}")
        model = package.model
        self.package = package
        self.vocabs = Vocabularies.from_json(model["vocab"])
        self.tags: list[str] = list(self.vocabs.tags.itos)
        self.max_token_chars = int(model["max_token_chars"])
        self.uses_pos = bool(model["use_pos"])
        #: POS tag list (id -> tag) of the package's auxiliary POS head; None without one.
        self.pos_tags: list[str] | None = list(model["pos_tags"]) if model.get("pos_tags") else None
        self._sessions = dict(sessions)
        check_graphs(package, self._sessions, len(self.tags), self.pos_tags)
        self.buckets: list[int] = sorted(k for k in self._sessions if k is not None)
        self._input = self._sessions[None].get_inputs()[0].name
        self._chars, self._char_input = char_features(package, self._sessions[None], char_session, char_cache)
        # Only the tag probabilities unless POS tags are asked for (a POS head is a second output).
        self._outputs = [self._sessions[None].get_outputs()[0].name]
        self.crf = CRF.from_json(model["crf"]) if model.get("crf") else None
        self._decoder = Decoder(self.tags, self.decode, self.crf)
        self._tag_index = {t: i for i, t in enumerate(self.tags)}
        self.scheme = TagScheme(self.tags)
        #: How entity labels are reported (`ner_fast.labels`; `labels` of `load`): the package's own by default.
        self.label_map = label_map(labels, self.scheme.types, package_descriptions(model, self.scheme.types))
        #: The label each of `scheme.types` is reported as (None: its entities are dropped).
        self.entity_types: list[str | None] = [self.label_map(t) for t in self.scheme.types]
        #: The entity labels this tagger reports, each once, in the package's order.
        self.entity_labels: list[str] = self.label_map.reported(self.scheme.types)
        # Build the vocabularies' lookup tables now, not lazily inside the first (maybe concurrent) call.
        featurize(["warm", "up"], ["x", "x"] if self.uses_pos else None, self.vocabs, self.max_token_chars)

    @classmethod
    def load(
        cls,
        package: str | os.PathLike[str] | Package | None = None,
        device: Device = DEFAULT_DEVICE,
        threads: int | None = None,
        providers: Sequence[Any] | None = None,
        session_options: ort.SessionOptions | None = None,
        buckets: Sequence[int] | None = None,
        decode: str | None = None,
        workers: int = 1,
        verify: bool = True,
        labels: str | os.PathLike[str] | Mapping[str, str | None] | LabelMap | None = None,
        char_cache: int = DEFAULT_CHAR_CACHE,
    ) -> Tagger:
        """Open a package folder (checksums verified unless `verify=False`) and start its sessions.

        With no `package`, the default pretrained package bundled with ner-fast; a bundled package's name
        (`"default"`, `"ensemble"`: `package.BUNDLED`) opens that one, even where a folder of that name exists
        (`"./ensemble"` is the folder; `package.package_path` is the rule).

        `device` picks the execution providers, unless `providers` (any onnxruntime providers list)
        is given; `threads` sets intra-op threads, unless `session_options` is given (whose graph
        optimisation must be ORT_ENABLE_BASIC or more: `sessions.check_session_options`). A RuntimeWarning
        says when CUDA (or the first of `providers`) was wanted, or found by "auto", but the sessions run on
        another provider, the CPU's.

        `buckets` loads only some of the package's bucket graphs (default: all). Each session holds its
        own pre-packed LSTM weights (about 5 MB at the default dimensions), so fewer buckets use less
        memory and load faster; sentences then pad to the smallest loaded bucket that fits. `decode` and
        `workers` as in the class docstring.

        `labels` renames the entities' labels (`ner_fast.labels`): "package" or None (the package's own),
        "conll", "ontonotes", or a JSON file (or a dict) mapping labels to new ones or null (dropped);
        checked before any session starts (`labels.LabelError`).

        `char_cache`: how many word forms' character features a package with a character graph keeps
        (`ner_fast.char_cache`; 0 keeps none); other packages ignore it.
        """
        if isinstance(providers, str):  # onnxruntime would take each character for a provider's name
            raise TypeError(f"providers must be a list of onnxruntime providers, e.g. [{providers!r}]; got a string")
        check_capacity(char_cache)  # before any session starts
        if package is not None and not isinstance(package, (str, os.PathLike, Package)):
            raise TypeError(f"package must be a folder (a str or path), a bundled name ({', '.join(BUNDLED_NAMES)})"
                            f" or a Package, got {type(package).__name__} {package!r}")
        pkg = package if isinstance(package, Package) else load_package(package_path(package), verify=verify)
        types = TagScheme(pkg.tags).types
        labels = label_map(labels, types, package_descriptions(pkg.model, types))
        wanted = list(providers) if providers is not None else providers_for(device)
        names = [p[0] if isinstance(p, tuple) else p for p in wanted]  # a provider may come as (name, its options)
        unknown = [p for p, name in zip(wanted, names) if name not in ort.get_all_providers()]
        if unknown:  # a typo: onnxruntime prints a banner and runs on the CPU
            raise ValueError(f"providers: {unknown[0]!r} is no onnxruntime execution provider (this onnxruntime has"
                             f" {', '.join(ort.get_available_providers())})")
        if session_options is not None and not isinstance(session_options, ort.SessionOptions):
            raise TypeError(f"session_options must be an onnxruntime.SessionOptions, got {type(session_options).__name__}")
        check_session_options(session_options)
        options = session_options or make_session_options(threads)
        wants_cuda = CUDA in names
        preloaded = preload_cuda_libraries() if wants_cuda else None
        chosen = pkg.buckets if buckets is None else checked_bucket_lengths(buckets)
        missing = sorted(set(chosen) - set(pkg.buckets))
        if missing:
            raise ValueError(f"{pkg.path}: no graphs for bucket lengths {missing} (it has {pkg.buckets})")
        keys: list[int | None] = [*chosen, None]
        sessions = {key: open_session(pkg.graph_path(key), options, wanted) for key in keys}
        # The character graph runs where the others do: the same providers and options.
        char_path = pkg.char_graph_path
        char_session = open_session(char_path, options, wanted) if char_path is not None else None
        # The provider asked for first (CUDA, or TensorRT, OpenVINO...) that this onnxruntime cannot start: said
        # once (onnxruntime's own UserWarning, when it gives one, is easily filtered out and names no fallback).
        first = names[0] if names else CPU
        actual = sessions[None].get_providers()[0]
        if first != CPU and actual != first:
            why = f" (loading the CUDA libraries: {preloaded})" if preloaded and actual == CPU else ""
            warnings.warn(f"{'CUDA' if first == CUDA else first} was requested but the onnxruntime sessions run on"
                          f" {'the CPU' if actual == CPU else actual}{why}", RuntimeWarning, stacklevel=2)
        return cls(pkg, sessions, decode, workers, labels, char_session, char_cache)

    def __reduce__(self) -> Any:
        # A process pool (spawned, or a ProcessPoolExecutor) pickles what it is sent; onnxruntime's
        # sessions cannot travel, and its own error names neither the tagger nor what to do.
        raise TypeError("a Tagger cannot be pickled (its onnxruntime sessions stay in their process): open it in"
                        " each process with Tagger.load(...), as ner_fast.partition.tag_texts does for Dask and Spark")

    @property
    def sessions(self) -> Mapping[int | None, ort.InferenceSession]:
        """The onnxruntime session of each bucket length, and of the dynamic graph under None (read-only)."""
        return MappingProxyType(self._sessions)

    @property
    def providers(self) -> list[str]:
        """Execution providers of the sessions, in priority order."""
        return list(self._sessions[None].get_providers())

    # ----------------------------------------------------------------- the public calls

    def __call__(self, text: str) -> Doc:
        """Tokenize, split into sentences and tag a raw text (`ner_fast.engine.tag_texts`); a POS-input
        model refuses, and so does a text holding a lone surrogate (ValueError naming its position)."""
        return tag_texts(self, [text])[0]

    def pipe(self, texts: Iterable[str], batch_size: int = BATCH_SIZE, n_threads: int | None = None) -> Iterator[Doc]:
        """`Doc`s of many raw texts, lazily and in input order, sentences batched across documents
        (groups of `batch_size` sentences, each one tagging call whose batches run on a pool of
        `n_threads` threads, default the tagger's `workers`; the next group is segmented while the pool
        tags: `ner_fast.engine.pipe`)."""
        check_texts(texts, "pipe", one="tagger(text) tags one text")
        return pipe_texts(self, texts, batch_size, n_threads)

    @overload
    def tag(self, tokens: Sequence[str], pos: Sequence[str] | None = None, proba: Literal[False] = False) -> list[str]: ...
    @overload
    def tag(
        self, tokens: Sequence[str], pos: Sequence[str] | None = None, proba: Literal[True] = ...
    ) -> tuple[list[str], np.ndarray]: ...

    def tag(self, tokens: Sequence[str], pos: Sequence[str] | None = None, proba: bool = False) -> Any:
        """Tags of one pre-tokenized sentence (`pos`: its POS tags, needed when the model uses POS; a model
        that does not, `uses_pos` False, checks their number and ignores them, as `ner-fast tag` does a
        corpus's POS column, so one call serves every model).

        With `proba=True` returns `(tags, probabilities)`, probabilities float32 (len(tokens), len(self.tags)).
        """
        if isinstance(tokens, str):
            raise TypeError("tag takes one pre-tokenized sentence, a list of tokens, not a str: tagger(text) tags raw text")
        try:
            n = len(tokens)
        except TypeError:  # a generator, a number ...
            raise TypeError(f"tokens is a {type(tokens).__name__}: pass a list or tuple of tokens") from None
        if pos is not None and not hasattr(pos, "__len__"):  # a generator failed deep inside ("has no len()")
            raise TypeError(f"pos is a {type(pos).__name__}: pass a list or tuple of POS tags")
        if (0 < n <= MAX_BATCH_TOKENS and type(tokens) in (list, tuple)
                and (pos is None if not self.uses_pos else _same_length(pos, n))):
            # The common case without `_run`'s batch bookkeeping (a fifth of a 20-token call's cost
            # outside onnxruntime); anything unusual, errors included, goes through `_run`.
            try:
                matrix = None if token_fault(tokens) is not None else featurize(
                    tokens, pos if self.uses_pos else None, self.vocabs, self.max_token_chars).matrix
            except TypeError:
                matrix = None
            if matrix is not None:
                lengths = np.array([n], dtype=np.int64)
                (key, batch), = plan_batches(lengths, self.buckets, 1)
                top, out, _ = self._infer(matrix, np.array([0, n], dtype=np.int64), lengths, key, batch)
                names = self.tags
                tags = [names[t] for t in top[0, :n].tolist()]
                return (tags, out[0, :n]) if proba else tags
        result = self._run([tokens], None if pos is None else [pos], batch_size=1, proba=proba)
        return (result[0][0], result[1][0]) if proba else result[0][0]

    def tag_batch(
        self,
        sentences: Sequence[Sequence[str]],
        pos: Sequence[Sequence[str]] | None = None,
        batch_size: int = TAG_BATCH_SIZE,
        proba: bool = False,
        workers: int | None = None,
        return_pos: bool = False,
    ) -> Any:
        """Tags of many sentences, in input order; `batch_size` sentences go through a graph at once,
        `workers` batches at once in threads (default: the tagger's `workers`).

        With `proba=True` returns `(tags, probabilities)`, one (len(sentence), len(self.tags)) array each.
        With `return_pos=True` the predicted POS tags of the package's auxiliary POS head come last:
        `(tags, pos_tags)` or `(tags, probabilities, pos_tags)`, `pos_tags` one list per sentence, or
        None when the package has no POS head (`self.pos_tags is None`).

        A token must hold a character that is neither whitespace nor an invisible format character
        (`text.blank_token`, the rule of `ner-fast serve` too): an empty, whitespace-only or zero-width one
        (U+200B) is a ValueError naming it, and so is one holding a lone surrogate (`text.token_fault`).
        """
        tags, probs, pos_out = self._run(sentences, pos, batch_size, proba, return_pos, workers)
        head: tuple[Any, ...] = (tags, probs) if proba else (tags,)
        if return_pos:
            return (*head, pos_out)
        return head if proba else tags

    def entities(self, tokens: Sequence[str], pos: Sequence[str] | None = None) -> list[Entity]:
        """Entity spans of one sentence (see `Entity` for the score)."""
        tags, probs = self.tag(tokens, pos, proba=True)
        return spans(tokens, tags, self.chosen_probabilities(tags, probs), self.scheme, self.label_map)

    def entities_batch(
        self, sentences: Sequence[Sequence[str]], pos: Sequence[Sequence[str]] | None = None, batch_size: int = TAG_BATCH_SIZE
    ) -> list[list[Entity]]:
        """`entities` for many sentences, in input order."""
        tags, probs, _ = self._run(sentences, pos, batch_size, proba=True)
        return [spans(s, t, self.chosen_probabilities(t, p), self.scheme, self.label_map) for s, t, p in zip(sentences, tags, probs)]

    def chosen_probabilities(self, tags: Sequence[str], probs: np.ndarray) -> np.ndarray:
        """Each token's probability of its tag (`probs` from `tag(..., proba=True)`); ValueError for an unknown tag."""
        try:  # one pass: `entities` calls this for every sentence
            columns = [self._tag_index[t] for t in tags]
        except KeyError as err:
            raise ValueError(f"tag {err.args[0]!r} is not one of this model's ({', '.join(self.tags)})") from None
        return probs[np.arange(len(tags)), columns]

    # ----------------------------------------------------------------- the work

    def features(
        self, sentences: Sequence[Sequence[str]], pos: Sequence[Sequence[str]] | None = None, batch_size: int = TAG_BATCH_SIZE
    ) -> Iterator[np.ndarray]:
        """The network's input batches for `sentences`, as `tag_batch` makes them: int32 arrays
        (B, feature rows, L), one per batch, sentences sorted by length. For calibrating static
        quantization (`benchmarks/front.py`) and for looking at what the graph is given; the input's
        name is `input_name`."""
        matrix, offsets, lengths, jobs = self._plan(_listed(sentences), _listed(pos), batch_size)
        for key, batch in jobs:
            yield _batch_features(matrix, offsets, lengths, key, batch)

    def feeds(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """The graphs' inputs for one batch of `features` (as `features` yields them): the features under
        `input_name`, and for a package with a character graph the character features (float32 (B, L, F),
        from the tagger's cache, `ner_fast.char_cache`) under the graphs' second input."""
        feeds = {self._input: features}
        if self._chars is not None:
            # Every position's character row (padding: the row of zeros), (B, C, L) -> (B * L, C).
            b, _, seq_len = features.shape
            rows = features[:, ROW_CHARS:, :].transpose(0, 2, 1).reshape(b * seq_len, self.max_token_chars)
            feeds[self._char_input] = self._chars.features(rows).reshape(b, seq_len, self._chars.width)
        return feeds

    @property
    def input_name(self) -> str:
        """The name of the graphs' one input (what `features` yields)."""
        return self._input

    def _plan(
        self, sentences: Sequence[Sequence[str]], pos: Sequence[Sequence[str]] | None, batch_size: int
    ) -> Plan:
        """Checked input -> (feature matrix of every token, sentence offsets into it, lengths, batches
        of `buckets.plan_batches`)."""
        check_batch_size(batch_size)
        if not isinstance(sentences, Sequence):  # `_listed` made any iterable a list
            raise TypeError(f"pass a list of pre-tokenized sentences, got {type(sentences).__name__} {sentences!r}")
        # A str is a text, bytes are not tokens, and a dict or set has no token order (a dict would be tagged
        # as its keys).
        odd = next((i for i, s in enumerate(sentences) if isinstance(s, (str, bytes, bytearray, Mapping, AbstractSet))),
                   None)
        if isinstance(sentences, str) or (odd is not None and isinstance(sentences[odd], str)):
            raise TypeError("pass pre-tokenized sentences: a list of tokens each, not strings")
        if odd is not None:
            raise TypeError(f"sentence {odd} is a {type(sentences[odd]).__name__}: each sentence must be a list or tuple of tokens")
        n = len(sentences)
        try:
            lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=n)
        except TypeError:  # a sentence without a length: a generator, a number ...
            i, kind = next((i, type(s).__name__) for i, s in enumerate(sentences) if not hasattr(s, "__len__"))
            raise TypeError(f"sentence {i} is a {kind}: each sentence must be a list or tuple of tokens") from None
        check_reads_no_pos(self.uses_pos and pos is None, "these sentences do not have", "pass pos=, one POS tag per token")
        if pos is not None and any(isinstance(p, str) for p in pos):  # "NNPS" for four tokens
            raise TypeError("pos must hold a list of POS tags for each sentence, not a string")
        if pos is not None and (len(pos) != len(sentences) or any(len(p) != len(s) for p, s in zip(pos, sentences))):
            raise ValueError("pos must hold one POS tag per token of every sentence")
        words = [w for s in sentences for w in s]
        flat_pos = [p for s in pos for p in s] if (pos is not None and self.uses_pos) else None
        try:
            fault = token_fault(words)
            if fault is None:
                return self._plan_flat(words, flat_pos, lengths, batch_size)
        except TypeError:
            raise TypeError(_not_a_string(sentences, pos)) from None
        at, reason = fault
        sentence = int(np.searchsorted(np.cumsum(lengths), at, side="right"))
        token = at - int(lengths[:sentence].sum())
        raise ValueError(f"token {token} of sentence {sentence} is {words[at]!r}: {reason}")

    def _plan_flat(
        self, words: Sequence[str], pos: Sequence[str] | None, lengths: np.ndarray, batch_size: int
    ) -> Plan:
        """`_plan` of sentences given flat, unchecked: `words` (and `pos`, for a POS-input model) all
        sentences' tokens back to back, `lengths` (int64) each sentence's count. A token that is not a
        str raises TypeError. A sentence over `buckets.MAX_BATCH_TOKENS` tokens runs as consecutive
        pieces (`text.piece_lengths`): the offsets and lengths returned are the pieces'; the flat
        per-token outputs are the same either way."""
        if len(lengths) and int(lengths.max()) > MAX_BATCH_TOKENS:
            lengths = np.array(piece_lengths(words, lengths.tolist(), MAX_BATCH_TOKENS), dtype=np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        matrix = featurize(words, pos if self.uses_pos else None, self.vocabs, self.max_token_chars).matrix
        return matrix, offsets, lengths, plan_batches(lengths, self.buckets, batch_size)

    def _infer(
        self,
        matrix: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        key: int | None,
        batch: np.ndarray,
        want_pos: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One batch of `plan_batches` through its graph: (tag ids (B, L), probabilities (B, L, T), and
        with `want_pos` the POS head's output (B, L, V_pos), else None)."""
        feeds = self.feeds(_batch_features(matrix, offsets, lengths, key, batch))
        outputs = self._sessions[key].run(None if want_pos else self._outputs, feeds)
        return self._decoder(outputs[0], lengths[batch]), outputs[0], outputs[1] if want_pos else None

    def _run(
        self,
        sentences: Sequence[Sequence[str]],
        pos: Sequence[Sequence[str]] | None,
        batch_size: int,
        proba: bool,
        return_pos: bool = False,
        workers: int | None = None,
    ) -> tuple[list[Any], list[np.ndarray], list[list[str]] | None]:
        workers = self.workers if workers is None else check_threads("workers", workers)
        sentences, pos = _listed(sentences), _listed(pos)
        work = TagWork(self, *self._plan(sentences, pos, batch_size), probs=proba, pos=return_pos)
        work.run_all(workers)
        n = len(sentences)
        # The sentences' own offsets: `work.offsets` are those of the pieces a long sentence ran as.
        offsets = work.offsets if len(work.offsets) == n + 1 else np.cumsum([0, *map(len, sentences)])
        names = self.tags
        tags = [[names[t] for t in work.tag_ids[offsets[i] : offsets[i + 1]].tolist()] for i in range(n)]
        probs = work.probs
        per_sentence = [probs[offsets[i] : offsets[i + 1]] for i in range(n)] if probs is not None else []
        pos_names = self.pos_tags
        pos_ids = work.pos_ids
        pos_out = (
            [[pos_names[t] for t in pos_ids[offsets[i] : offsets[i + 1]].tolist()] for i in range(n)]
            if pos_ids is not None and pos_names is not None
            else None
        )
        return tags, per_sentence, pos_out


def _batch_features(matrix: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, key: int | None, batch: np.ndarray) -> np.ndarray:
    """The graph input of one planned batch: its sentences' rows of `matrix`, padded to the bucket
    length `key` (the dynamic graph, None: to the batch's longest sentence)."""
    seq_len = key if key is not None else int(lengths[batch].max())
    return _kernels.fill_bucket(matrix, None, offsets, batch, seq_len)[0]


def _same_length(pos: Sequence[str] | None, n: int) -> bool:
    """Whether `pos` is a list of n POS tags (the fast path of `tag`; anything else goes through `_run`)."""
    return pos is not None and not isinstance(pos, str) and len(pos) == n


def _listed(items: Any) -> Any:
    """`items` as a sequence: a generator or other one-pass iterable (`tag_batch(s.split() for s in
    lines)`) is read into a list, since tagging walks the sentences more than once; None and sequences
    (a str too, refused later as not pre-tokenized) are returned as they are."""
    if isinstance(items, (Mapping, AbstractSet)):  # tagged in their iteration order, which no caller chose
        raise TypeError(f"pass a list, not a {type(items).__name__}: a {type(items).__name__} has no order to "
                        "give the results back in")
    return items if items is None or isinstance(items, (Sequence, str)) else list(items)


def _not_a_string(sentences: Sequence[Sequence[Any]], pos: Sequence[Sequence[Any]] | None) -> str:
    """The message for the first token or POS tag that is not a str (found only after featurize refused one)."""
    for name, lists in (("token", sentences), ("POS tag", pos or [])):
        for i, items in enumerate(lists):
            for j, item in enumerate(items):
                if not isinstance(item, str):
                    return f"{name} {j} of sentence {i} is {item!r} ({type(item).__name__}): {name}s must be strings"
    return "tokens and POS tags must be strings"
