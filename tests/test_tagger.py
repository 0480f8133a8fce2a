"""The onnxruntime `Tagger`: MXNet's answers end to end, bucketing and order, long sentences, entities,
POS handling, devices, and threads."""
from __future__ import annotations

import json
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from ner_fast import Entity, Tagger
from ner_fast.checkpoint import save_params
from ner_fast.decode import CRF, viterbi
from ner_fast.features import featurize
from ner_fast.training.model import predict_proba
from ner_fast.training.export import export_model
from ner_fast.package import load_package
from ner_fast.doc import spans
from helpers import float_tol, network_terms, POS, SENTENCES, PackageGraph, make_checkpoint

# Words and POS tags from the training sentences, plus words and characters never seen ("Zyxwv", "ß").
WORDS = sorted({w for s in SENTENCES for w in s}) + ["Zyxwv", "straße", "Ω", "1,000"]
TAGSET = sorted({p for s in POS for p in s})


def random_sentences(rng: np.random.Generator, lengths: list[int]) -> tuple[list[list[str]], list[list[str]]]:
    words = [[WORDS[i] for i in rng.integers(0, len(WORDS), n)] for n in lengths]
    pos = [[TAGSET[i] for i in rng.integers(0, len(TAGSET), n)] for n in lengths]
    return words, pos


@pytest.fixture(scope="module", params=[2, 1], ids=["bidirectional", "forward-only"])
def model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(config, params, vocabularies, package, tagger) of a two-layer BiLSTM, or forward-only LSTM, model."""
    folder = tmp_path_factory.mktemp("tagger")
    config, params, vocabs = make_checkpoint(folder / "model", buckets=[3, 6, 10], directions=request.param)
    package = export_model(folder / "model", folder / "pkg", buckets="auto", quantize=None)
    return config, params, vocabs, package, Tagger.load(package, device="cpu", threads=1)


def mxnet_proba(model: tuple, words: list[str], pos: list[str]) -> np.ndarray:
    """MXNet's probabilities for one sentence, run at exactly its length."""
    config, params, vocabs, _, _ = model
    x = featurize(words, pos, vocabs, config.max_token_chars).matrix.T[None]
    return predict_proba(params, config, np.ascontiguousarray(x))[0]


@pytest.mark.numeric
def test_tags_and_probabilities_match_mxnet_end_to_end(model: tuple) -> None:
    tagger = model[4]
    rng = np.random.default_rng(0)
    # Lengths in every bucket, on bucket edges, and beyond the largest bucket (dynamic graph, whole).
    words, pos = random_sentences(rng, [1, 3, 4, 6, 9, 10, 11, 25, 2])
    tags, probs = tagger.tag_batch(words, pos, batch_size=3, proba=True)
    for w, p, t, pr in zip(words, pos, tags, probs):
        expected = mxnet_proba(model, w, p)
        assert pr.shape == (len(w), len(tagger.tags))
        # onnxruntime against MXNet, both float32: every operation of the network over the sentence.
        assert np.abs(pr - expected).max() <= float_tol(network_terms(model[0], len(w)))
        assert t == [tagger.tags[i] for i in expected.argmax(1)]


def test_batches_come_back_in_input_order_and_equal_single_calls(model: tuple) -> None:
    tagger = model[4]
    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 16, 40).tolist()
    words, pos = random_sentences(rng, lengths)
    singles = [tagger.tag(w, p) for w, p in zip(words, pos)]
    for batch_size in (1, 4, 64):
        assert tagger.tag_batch(words, pos, batch_size=batch_size) == singles
    assert [len(t) for t in singles] == lengths


def test_single_calls_give_the_batch_probabilities_for_any_sequence_type(model: tuple) -> None:
    # `tag` has its own path for one sentence: the same tags and probabilities as `tag_batch`, in every
    # bucket and beyond the largest, for lists and tuples; odd inputs still get `_run`'s errors.
    tagger = model[4]
    rng = np.random.default_rng(7)
    words, pos = random_sentences(rng, [1, 3, 5, 6, 10, 11, 30])
    tags, probs = tagger.tag_batch(words, pos, batch_size=1, proba=True)
    assert len(tags) == len(words)
    for w, p, t, pr in zip(words, pos, tags, probs):
        one_tags, one_probs = tagger.tag(tuple(w), tuple(p), proba=True)
        assert one_tags == t == tagger.tag(w, p)
        np.testing.assert_array_equal(one_probs, pr)
    with pytest.raises(TypeError, match="token 1 of sentence 0"):
        tagger.tag(["Paris", 3], pos=["NNP", "NNP"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="one POS tag per token"):
        tagger.tag(("Paris", "."), pos=("NNP",))


def test_empty_input(model: tuple) -> None:
    tagger = model[4]
    assert tagger.tag([], pos=[]) == []
    assert tagger.tag_batch([], pos=[]) == []
    assert tagger.entities([], pos=[]) == []
    assert tagger.tag_batch([[], []], pos=[[], []]) == [[], []]


def test_one_pass_iterables_are_read_once_and_tag_as_lists_do(model: tuple) -> None:
    tagger = model[4]
    words, pos = random_sentences(np.random.default_rng(3), [2, 5, 7, 11])
    expected = tagger.tag_batch(words, pos, batch_size=2)
    assert len(expected) == 4
    # Generators, walked more than once inside: they were read twice, so the second walk found them empty.
    assert tagger.tag_batch((w for w in words), (p for p in pos), batch_size=2) == expected
    batches = list(tagger.features((w for w in words), (p for p in pos), batch_size=2))
    assert sum(b.shape[0] for b in batches) == len(words)


@pytest.mark.parametrize(("bad", "error"), [("4", TypeError), (True, TypeError), (2.0, TypeError), (0, ValueError)])
def test_a_batch_size_that_is_not_a_positive_int_is_named(model: tuple, bad: object, error: type) -> None:
    tagger = model[4]
    words, pos = random_sentences(np.random.default_rng(4), [3])
    # "4" gave "'<' not supported between instances of 'str' and 'int'"; 2.0 and True were taken.
    with pytest.raises(error, match="batch_size must be"):
        tagger.tag_batch(words, pos, batch_size=bad)  # type: ignore[arg-type]
    assert tagger.tag_batch(words, pos, batch_size=np.int64(2)) == tagger.tag_batch(words, pos)


@pytest.mark.parametrize("blank", ["", " ", "\t", "\u00a0", "\u2028 \n", "\u200b", "\u2060\ufeff", " \u200e"])
def test_an_empty_or_whitespace_token_is_refused_as_serve_refuses_it(model: tuple, blank: str) -> None:
    # tag_batch tagged `"a  b".split(" ")`'s empty token (and spaCy's whitespace tokens) as a word the
    # network never saw, which changes its neighbours' tags; `ner-fast serve` refused the same tokens
    # (422). One rule now, `text.blank_token`, and the message names the token.
    tagger = model[4]
    words, pos = random_sentences(np.random.default_rng(5), [3, 4])
    words[1][2] = blank
    for call in (tagger.tag_batch, tagger.entities_batch, lambda w, p: list(tagger.features(w, p))):
        with pytest.raises(ValueError, match=rf"^token 2 of sentence 1 is {re.escape(repr(blank))}: a token must"):
            call(words, pos)
    with pytest.raises(ValueError, match=r"^token 2 of sentence 0 is "):
        tagger.tag(words[1], pos[1])
    # Whitespace inside a token is the token's own (GMB's '5\u00a0storm' is one word of its corpus), and so
    # is a zero-width character beside a letter.
    for inside in ("5\u00a0storm", "Paris\u200b", "\u00adx"):
        words[1][2] = inside
        assert len(tagger.tag_batch(words, pos)[1]) == 4


def test_a_token_holding_a_lone_surrogate_is_refused_as_text_holding_one_is(model: tuple) -> None:
    # Raw text with a lone surrogate (a JSON "\ud800", a byte read with surrogateescape) was refused, the
    # same as a token: tagged, and its entity text then failed to be written as UTF-8.
    tagger = model[4]
    words, pos = random_sentences(np.random.default_rng(6), [3, 4])
    words[1][1] = "Par\udcc3is"
    for call in (tagger.tag_batch, tagger.entities_batch, lambda w, p: list(tagger.features(w, p))):
        with pytest.raises(ValueError, match=r"^token 1 of sentence 1 is 'Par\\udcc3is': character 3 is a lone surrogate"):
            call(words, pos)
    with pytest.raises(ValueError, match=r"^token 1 of sentence 0 is .*lone surrogate \(U\+DCC3\)"):
        tagger.tag(words[1], pos[1])
    words[1][1] = "Paris\U0001f600"  # a character beyond the BMP is one code point in a str, not a pair
    assert len(tagger.tag_batch(words, pos)[1]) == 4


def test_pos_is_required_when_the_model_uses_it(model: tuple) -> None:
    tagger = model[4]
    assert tagger.uses_pos
    with pytest.raises(ValueError, match="^this model reads POS tags, which these sentences do not have: pass pos=, one POS tag per token$"):
        tagger.tag(["Paris"])
    with pytest.raises(ValueError, match="one POS tag per token"):
        tagger.tag(["Paris", "."], pos=["NNP"])
    with pytest.raises(TypeError, match="pre-tokenized"):
        tagger.tag_batch("Paris is nice", pos=None)
    # bytes were read as tokens of ints ("token 0 of sentence 0 is 80 (int)"); a set of sentences was tagged in
    # the set's order, which nothing could be matched back to.
    with pytest.raises(TypeError, match="^sentence 0 is a bytes: each sentence must be a list or tuple of tokens"):
        tagger.tag_batch([b"Paris"], pos=[["NNP"]])
    with pytest.raises(TypeError, match="^pass a list, not a set"):
        tagger.tag_batch({("Paris",), ("Rome",)}, pos=[["NNP"], ["NNP"]])
    with pytest.raises(TypeError, match="^pass a list, not a dict"):
        tagger.tag_batch([["Paris"]], pos={"Paris": "NNP"})


def test_a_model_without_pos_tags_without_it(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "m", with_pos=False)
    tagger = Tagger.load(export_model(tmp_path / "m", tmp_path / "pkg", quantize=None), device="cpu")
    assert not tagger.uses_pos
    assert len(tagger.tag(["Paris", "is", "nice"])) == 3


def test_entities_use_the_tagged_spans(model: tuple) -> None:
    tagger = model[4]
    rng = np.random.default_rng(2)
    words, pos = random_sentences(rng, [12] * 5)
    n_entities = 0
    for w, p in zip(words, pos):
        tags, probs = tagger.tag(w, p, proba=True)
        found = tagger.entities(w, p)
        assert found == spans(w, tags, probs.max(1))
        n_entities += len(found)
        for e in found:
            # Token indices, and character offsets into the space-joined sentence.
            assert e.text == " ".join(w[e.token_start : e.token_end]) == " ".join(w)[e.start : e.end]
            assert e.start == len(" ".join(w[: e.token_start])) + (e.token_start > 0)
            assert tags[e.token_start] in (f"B-{e.label}", f"I-{e.label}") and e.type == e.label
            # The mean of the same float32 probabilities, in whatever order: one rounding per term.
            assert e.score == pytest.approx(float(probs[e.token_start : e.token_end].max(1).mean()),
                                            rel=float_tol(e.token_end - e.token_start + 1))
    assert n_entities > 0  # the loop above checked something
    assert tagger.entities_batch(words, pos) == [tagger.entities(w, p) for w, p in zip(words, pos)]


def test_spans_follow_conlleval() -> None:
    tokens = ["a", "bb", "c", "d", "e", "f", "g"]
    tags = ["B-per", "I-per", "I-geo", "O", "I-org", "B-org", "I-org"]
    scores = np.array([0.9, 0.7, 0.5, 1.0, 0.6, 0.8, 0.6])
    # "a bb c d e f g": character offsets into the space-joined tokens, then token indices. The scores are
    # float64 means of two numbers: approx's default (rel 1e-6) is far above their rounding.
    assert spans(tokens, tags, scores) == [
        Entity("per", 0, 4, "a bb", pytest.approx(0.8), 0, 2),
        Entity("geo", 5, 6, "c", pytest.approx(0.5), 2, 3),
        Entity("org", 9, 10, "e", pytest.approx(0.6), 4, 5),
        Entity("org", 11, 14, "f g", pytest.approx(0.7), 5, 7),
    ]
    assert spans([], [], np.zeros(0)) == []


def test_several_threads_give_the_serial_results(model: tuple) -> None:
    tagger = model[4]
    rng = np.random.default_rng(3)
    work = [random_sentences(rng, rng.integers(1, 14, 6).tolist()) for _ in range(24)]
    serial = [tagger.tag_batch(w, p, batch_size=4) for w, p in work]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda wp: tagger.tag_batch(wp[0], wp[1], batch_size=4), work))
    assert parallel == serial
    # A tagger that itself runs batches in worker threads gives the same results too.
    workers = Tagger.load(model[3], device="cpu", threads=1, workers=3)
    assert [workers.tag_batch(w, p, batch_size=2) for w, p in work] == serial
    with pytest.raises(ValueError, match="workers"):
        Tagger.load(model[3], workers=0)


def test_cuda_request_without_cuda_warns_and_runs_on_cpu(model: tuple) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.warns(RuntimeWarning, match="CUDA"):
        tagger = Tagger.load(model[3], device="cuda")
    assert tagger.providers == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="device"):
        Tagger.load(model[3], device="tpu")  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider' is not in available provider names")  # faked available
def test_cuda_libraries_are_preloaded_once_and_only_for_cuda(model: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gpu extra's CUDA and cuDNN come as pip packages, which onnxruntime's CUDA provider finds only
    after `onnxruntime.preload_dlls()`: a load whose providers hold CUDA's (`device="cuda"` or "auto", or
    `providers` given) calls it once a process where the CUDA provider exists; "cpu", or an onnxruntime
    without CUDA, never does."""
    import ner_fast.sessions as sessions

    calls: list[int] = []
    monkeypatch.setattr(ort, "preload_dlls", lambda: calls.append(1), raising=False)
    sessions._preload_cuda_libraries.cache_clear()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert sessions.providers_for("auto") == ["CPUExecutionProvider"]
    assert sessions.providers_for("cpu") == ["CPUExecutionProvider"]
    for device in ("auto", "cpu"):
        Tagger.load(model[3], device=device)
    assert calls == []
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert sessions.providers_for("cpu") == ["CPUExecutionProvider"]
    Tagger.load(model[3], device="cpu")
    assert calls == []
    for device in ("cuda", "auto", "cuda"):
        assert sessions.providers_for(device) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
        with pytest.warns(RuntimeWarning, match="run on the CPU"):  # this onnxruntime has no CUDA in truth
            Tagger.load(model[3], device=device)
    assert calls == [1]
    sessions._preload_cuda_libraries.cache_clear()
    with pytest.warns(RuntimeWarning, match="run on the CPU"):
        Tagger.load(model[3], providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert calls == [1, 1]
    # A loader that fails leaves CUDA to the system's libraries and says why.
    sessions._preload_cuda_libraries.cache_clear()
    monkeypatch.setattr(ort, "preload_dlls", lambda: (_ for _ in ()).throw(OSError("libcudnn.so.9: not found")), raising=False)
    with pytest.warns(RuntimeWarning, match=r"run on the CPU \(loading the CUDA libraries: OSError: libcudnn.so.9: not found\)"):
        Tagger.load(model[3], device="cuda")
    assert sessions.preload_cuda_libraries() == "OSError: libcudnn.so.9: not found"
    sessions._preload_cuda_libraries.cache_clear()


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider' is not in available provider names")  # faked available
def test_what_the_cuda_preload_prints_reaches_the_warning_not_stdout(
    model: tuple, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`onnxruntime.preload_dlls()` reports each CUDA/cuDNN library it cannot load with print(), on stdout,
    where `ner-fast tag` writes its JSON lines (onnxruntime-gpu installed on a machine without CUDA, the
    default device "auto"). What it prints is kept from stdout and said in the warning that the sessions
    run on the CPU (one line, colour codes dropped)."""
    import ner_fast.sessions as sessions

    def noisy_preload() -> None:  # what onnxruntime 1.2x prints where the pip CUDA packages are missing
        print("Failed to load libcudnn.so.9: libcudnn.so.9: cannot open shared object file")
        print("\033[33mPlease follow https://onnxruntime.ai/docs/install/#cuda-and-cudnn to install CUDA.\033[0m")

    monkeypatch.setattr(ort, "preload_dlls", noisy_preload, raising=False)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    sessions._preload_cuda_libraries.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="run on the CPU") as caught:
            tagger = Tagger.load(model[3], device="auto")
        assert tagger.providers == ["CPUExecutionProvider"]
        assert capsys.readouterr().out == ""
        said = [str(w.message) for w in caught if "run on the CPU" in str(w.message)]
        assert len(said) == 1 and "\n" not in said[0] and "\033" not in said[0]
        assert "Failed to load libcudnn.so.9" in said[0] and "install CUDA" in said[0]
    finally:
        sessions._preload_cuda_libraries.cache_clear()


def test_cuda_libraries_are_preloaded_once_when_threads_load_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Taggers loaded by several threads at once (Dask workers, `serve` workers) preload once."""
    import threading
    import time

    import ner_fast.sessions as sessions

    calls: list[int] = []
    start = threading.Barrier(8)

    def slow_preload() -> None:
        calls.append(1)
        time.sleep(0.05)  # the loader takes a while: the other threads arrive meanwhile

    monkeypatch.setattr(ort, "preload_dlls", slow_preload, raising=False)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    sessions._preload_cuda_libraries.cache_clear()

    def load(_: int) -> str | None:
        start.wait()
        return sessions.preload_cuda_libraries()

    try:
        with ThreadPoolExecutor(8) as pool:
            chosen = list(pool.map(load, range(8)))
        assert chosen == [None] * 8
        assert calls == [1]
    finally:
        sessions._preload_cuda_libraries.cache_clear()


def test_ready_made_sessions(model: tuple) -> None:
    package, reference = model[3], model[4]
    pkg = load_package(package)
    dynamic_only = Tagger(pkg, {None: ort.InferenceSession(str(pkg.graph_path(None)), providers=["CPUExecutionProvider"])})
    assert dynamic_only.buckets == []
    words, pos = random_sentences(np.random.default_rng(4), [2, 5, 8, 13])
    assert dynamic_only.tag_batch(words, pos) == reference.tag_batch(words, pos)
    with pytest.raises(ValueError, match="dynamic"):
        Tagger(pkg, {})


def test_loading_some_buckets_gives_the_same_tags(model: tuple) -> None:
    package, reference = model[3], model[4]
    fewer = Tagger.load(package, device="cpu", buckets=[6])
    assert fewer.buckets == [6] and len(fewer.sessions) == 2
    words, pos = random_sentences(np.random.default_rng(5), [1, 3, 6, 7, 12])
    assert fewer.tag_batch(words, pos) == reference.tag_batch(words, pos)
    with pytest.raises(ValueError, match=r"no graphs for bucket lengths \[7\]"):
        Tagger.load(package, buckets=[6, 7])
    # A str was read a character at a time: "invalid literal for int() with base 10: 'a'".
    for wrong in ("abc", "6", 6, [0], [6.0], [True]):
        with pytest.raises(ValueError, match=r"^bucket lengths must be positive integers, got "):
            Tagger.load(package, buckets=wrong)


def valid_iob2(ids: np.ndarray, tags: list[str]) -> bool:
    """IOB2, written out plainly (not the decoder's own tables): I-X only right after B-X or I-X."""
    names = [tags[i] for i in ids]
    return all(
        not tag.startswith("I-") or (i > 0 and names[i - 1] in (f"B-{tag[2:]}", f"I-{tag[2:]}"))
        for i, tag in enumerate(names)
    )


def test_bio_decoding_is_viterbi_over_mxnet_probabilities(tmp_path: Path) -> None:
    config, params, vocabs = make_checkpoint(tmp_path / "m", buckets=[5, 10], decode="bio", seed=1)
    tagger = Tagger.load(export_model(tmp_path / "m", tmp_path / "pkg", quantize=None), device="cpu")
    assert tagger.decode == "bio" and Tagger.load(tmp_path / "pkg", decode="argmax").decode == "argmax"
    words, pos = random_sentences(np.random.default_rng(6), np.random.default_rng(6).integers(1, 14, 60).tolist())
    got = tagger.tag_batch(words, pos, batch_size=8)
    valid_argmax = 0
    for w, p, t in zip(words, pos, got):
        proba = mxnet_proba((config, params, vocabs, None, None), w, p)
        expected = viterbi(proba[None], np.array([len(w)]), tagger.tags)[0]
        assert t == [tagger.tags[i] for i in expected]
        assert valid_iob2(expected, tagger.tags)
        valid_argmax += valid_iob2(proba.argmax(1), tagger.tags)
    # The sample holds both kinds of sentences: argmax already valid, and argmax repaired by Viterbi.
    assert 0 < valid_argmax < len(words)
    n_entities = 0
    for w, p in zip(words[:10], pos[:10]):
        tags, probs = tagger.tag(w, p, proba=True)
        n_entities += len(tagger.entities(w, p))
        for e in tagger.entities(w, p):
            chosen = [probs[i, tagger.tags.index(tags[i])] for i in range(e.token_start, e.token_end)]
            assert e.score == pytest.approx(float(np.mean(chosen)), rel=float_tol(len(chosen) + 1))  # as above
    assert n_entities > 0


def test_a_crf_package_tags_with_its_learned_transitions(tmp_path: Path) -> None:
    config, params, vocabs = make_checkpoint(tmp_path / "m", buckets=[5, 10], decode="bio", seed=2, crf=True)
    rng = np.random.default_rng(2)
    for name in ("crf_transitions", "crf_start", "crf_end"):
        params[name] = rng.normal(0, 2, params[name].shape).astype(np.float32)
    save_params(tmp_path / "m" / "best.params.npz", params)
    package = export_model(tmp_path / "m", tmp_path / "pkg", quantize=None)
    crf = CRF.from_params(params)
    stored = CRF.from_json(load_package(package).model["crf"])
    graph_meta = {p.key: p.value for p in onnx.load(str(package / "dynamic.onnx"), load_external_data=False).metadata_props}
    assert json.loads(graph_meta["ner_fast.crf"]) == load_package(package).model["crf"]
    assert all(np.array_equal(getattr(stored, k), getattr(crf, k)) for k in ("transitions", "start", "end"))
    words, pos = random_sentences(np.random.default_rng(7), np.random.default_rng(7).integers(1, 14, 40).tolist())
    changed = 0
    for decode in ("bio", "argmax"):
        tagger = Tagger.load(package, device="cpu", decode=decode)
        got = tagger.tag_batch(words, pos, batch_size=8)
        for w, p, t in zip(words, pos, got):
            proba = mxnet_proba((config, params, vocabs, None, None), w, p)
            expected = viterbi(proba[None], np.array([len(w)]), tagger.tags, crf, constrained=decode == "bio")[0]
            assert t == [tagger.tags[i] for i in expected]
            changed += expected.tolist() != viterbi(proba[None], np.array([len(w)]), tagger.tags)[0].tolist()
    assert changed > 0  # the transitions mattered: a plain (non-CRF) decode differs somewhere


def test_the_default_package_holds_the_dynamic_graph_alone(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "m", buckets=[3, 6])
    default = export_model(tmp_path / "m", tmp_path / "default", quantize=None)
    assert sorted(p.name for p in default.glob("*.onnx")) == ["chars.onnx", "dynamic.onnx"]  # and the character graph
    tagger = Tagger.load(default, device="cpu")
    assert tagger.buckets == [] and list(tagger.sessions) == [None]
    bucketed = Tagger.load(export_model(tmp_path / "m", tmp_path / "auto", buckets="auto", quantize=None), device="cpu")
    assert bucketed.buckets == [3, 6]
    words, pos = random_sentences(np.random.default_rng(8), [1, 3, 5, 6, 9, 2, 14])
    assert tagger.tag_batch(words, pos, batch_size=3) == bucketed.tag_batch(words, pos, batch_size=3)


def test_features_are_each_sentences_featurize_rows_padded_with_zeros(model: tuple) -> None:
    config, _, vocabs, _, tagger = model
    rng = np.random.default_rng(3)
    words, pos = random_sentences(rng, [1, 3, 4, 6, 9, 10, 11, 25, 2])
    batches = list(tagger.features(words, pos, batch_size=3))
    assert batches and sum(b.shape[0] for b in batches) == len(words)
    rows = [b[i] for b in batches for i in range(b.shape[0])]
    assert all(b.dtype == np.int32 for b in batches)
    for w, p in zip(words, pos):
        expected = featurize(w, p, vocabs, config.max_token_chars).matrix.T
        n = expected.shape[1]
        assert any(r.shape[1] >= n and np.array_equal(r[:, :n], expected) and not r[:, n:].any() for r in rows)
    # They are what the graphs take: the dynamic graph runs on each under `input_name`.
    session = PackageGraph(model[3], None)  # a format-2 package's character graph feeds its second input
    assert session.session.get_inputs()[0].name == tagger.input_name
    for b in batches:
        assert session.run(None, {tagger.input_name: b})[0].shape[0] == b.shape[0]


def test_pickling_a_tagger_says_to_open_it_in_each_process(model: tuple) -> None:
    # A ProcessPoolExecutor, a spawned Pool or Ray pickles what it is given: onnxruntime sessions cannot
    # travel, and the error was onnxruntime's "no default __reduce__ due to non-trivial __cinit__".
    import copy
    import pickle

    tagger = model[4]
    for attempt in (lambda: pickle.dumps(tagger), lambda: copy.copy(tagger)):
        with pytest.raises(TypeError, match=r"^a Tagger cannot be pickled .*Tagger\.load"):
            attempt()


def test_providers_as_one_string_is_refused(model: tuple) -> None:
    # onnxruntime reads a str as its characters: twenty warnings ('C', 'P', 'U', ... not available), an
    # "EP Error" banner, then the CPU. One provider is a list of one.
    package = model[3]
    with pytest.raises(TypeError, match=r"^providers must be a list .*\['CPUExecutionProvider'\]"):
        Tagger.load(package, providers="CPUExecutionProvider")
    assert Tagger.load(package, providers=("CPUExecutionProvider",)).providers == ["CPUExecutionProvider"]


@pytest.mark.filterwarnings("ignore:Specified provider 'TensorrtExecutionProvider' is not in available provider names")
def test_another_accelerator_that_cannot_start_is_warned_of_as_cuda_is(model: tuple) -> None:
    """providers=["TensorrtExecutionProvider", ...] on an onnxruntime without it ran on the CPU with only
    onnxruntime's UserWarning, which names no fallback; device="cuda" got a RuntimeWarning."""
    import onnxruntime as ort

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has TensorRT")
    with pytest.warns(RuntimeWarning, match="^TensorrtExecutionProvider was requested but the onnxruntime sessions run"
                                            " on the CPU$"):
        tagger = Tagger.load(model[3], providers=["TensorrtExecutionProvider", "CPUExecutionProvider"])
    assert tagger.providers == ["CPUExecutionProvider"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        Tagger.load(model[3], providers=["CPUExecutionProvider"])  # what was asked for: no warning
