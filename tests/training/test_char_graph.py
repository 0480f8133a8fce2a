"""The character CNN as its own graph (package format 2) and the tagger's cache of its features.

The same checkpoint (`helpers.make_checkpoint`, as tests/training/test_export.py makes them) exported
both ways, with and without the character graph, must give the same probabilities bit for bit: the
main graphs are the same nodes but for where the character features come from, and a row's features
depend on that row alone. The tagger's cache must not change an answer either: a sentence tagged cold,
after other batches filled the cache, among unrelated sentences, with 2 workers, or with a cache too
small to hold the batch, gets the same floats. (Parity with MXNet of the format-2 graphs:
test_export.py, whose packages are format 2 since it is the default.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from helpers import PackageGraph, make_checkpoint
from ner_fast import Tagger
from ner_fast.char_cache import CharCache
from ner_fast.package import load_package
from ner_fast.training.export import export_model
from training.test_export import lengths_for, random_features

POS_TAGS = ["NN", "VB", "NNP", "JJ"]


@pytest.fixture(scope="module", params=[None, "int8"], ids=["float32", "int8"])
def both(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(config, vocabularies, format-2 package, format-1 package) of one checkpoint, buckets 4 and 9 and
    the dynamic graph, under the quantization of the parameter."""
    folder = tmp_path_factory.mktemp("both")
    config, _, vocabs = make_checkpoint(folder / "model", max_token_chars=8)
    split = export_model(folder / "model", folder / "split", buckets="auto", quantize=request.param)
    single = export_model(folder / "model", folder / "single", buckets="auto", quantize=request.param, char_graph=False)
    return config, vocabs, split, single


def sentences(vocabs, n: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """`n` sentences of 1 to 14 tokens: known words, words with a letter of the `seed`'s own (new word
    forms), long and odd tokens (cut at max_token_chars, unknown characters), and their POS tags."""
    rng = np.random.default_rng(seed)
    words = [w for w in vocabs.words.itos[2:]]
    odd = ["Zyxwvutsrq", "Ω", "straße", "Al-Qaida", "2009", "U.N.", "Pneumonoultramicroscopic", "李"]
    out = []
    for _ in range(n):
        sent = []
        for _ in range(int(rng.integers(1, 15))):
            r = rng.random()
            w = str(words[int(rng.integers(len(words)))])
            sent.append(odd[int(rng.integers(len(odd)))] if r < 0.2 else w[:5] + "vwxyzq"[seed % 6] if r < 0.4 else w)
        out.append(sent)
    return out, [[POS_TAGS[int(rng.integers(4))] for _ in s] for s in out]


def probs(tagger: Tagger, sents: list[list[str]], pos: list[list[str]], **kw) -> list[np.ndarray]:
    found = tagger.tag_batch(sents, pos, proba=True, **kw)[1]
    assert len(found) == len(sents)
    return found


@pytest.mark.numeric
def test_the_package_exported_both_ways_gives_the_same_probabilities_bit_for_bit(both: tuple) -> None:
    config, vocabs, split, single = both
    assert load_package(split).char_graph_path is not None and load_package(single).char_graph_path is None
    rng = np.random.default_rng(7)
    # Each graph, on the same feature batches (buckets, the dynamic graph beyond them, batches of 1 and more).
    for seq_len in [*load_package(split).buckets, None]:
        ours, theirs = PackageGraph(split, seq_len), PackageGraph(single, seq_len)
        for length in [seq_len] if seq_len else [9, 23]:
            for batch in (1, 6):
                x = random_features(rng, config, lengths_for(rng, batch, length), length)
                assert np.array_equal(ours.run(None, {"features": x})[0], theirs.run(None, {"features": x})[0])
    # Through the tagger (its cache filling as it goes), batched and one sentence at a time.
    sents, pos = sentences(vocabs, 80, seed=1)
    a, b = Tagger.load(split, threads=1), Tagger.load(single, threads=1)
    assert a._chars is not None and b._chars is None
    for x, y in zip(probs(a, sents, pos, batch_size=16), probs(b, sents, pos, batch_size=16)):
        assert np.array_equal(x, y)
    for s, p in zip(sents[:10], pos[:10]):
        assert np.array_equal(a.tag(s, p, proba=True)[1], b.tag(s, p, proba=True)[1])


@pytest.mark.numeric
def test_the_cache_never_changes_a_sentence_probabilities(both: tuple) -> None:
    _, vocabs, split, _ = both
    sents, pos = sentences(vocabs, 40, seed=2)
    others, other_pos = sentences(vocabs, 120, seed=3)
    cold = [Tagger.load(split, threads=1).tag(s, p, proba=True)[1] for s, p in zip(sents, pos)]  # a fresh cache each
    warm = Tagger.load(split, threads=1)
    probs(warm, others, other_pos)  # other batches fill the cache first
    filled = len(warm._chars)
    assert filled > 0
    for s, p, ref in zip(sents, pos, cold):
        assert np.array_equal(warm.tag(s, p, proba=True)[1], ref)
    mixed = [s for pair in zip(others[:40], sents) for s in pair]
    mixed_pos = [p for pair in zip(other_pos[:40], pos) for p in pair]
    two = Tagger.load(split, threads=2, workers=2)  # 2 intra-op threads too
    for tagger, kw in ((warm, {"batch_size": 7}), (two, {"batch_size": 5}), (two, {"batch_size": 64, "workers": 1})):
        found = probs(tagger, mixed, mixed_pos, **kw)[1::2]
        assert len(found) == len(cold)
        for x, ref in zip(found, cold):
            assert np.array_equal(x, ref)
    assert len(warm._chars) > filled  # the new sentences' word forms were added


@pytest.mark.numeric
@pytest.mark.parametrize("capacity", [0, 1, 5])
def test_a_full_cache_keeps_its_bound_and_the_answers(both: tuple, capacity: int) -> None:
    _, vocabs, split, single = both
    sents, pos = sentences(vocabs, 30, seed=4)
    reference = probs(Tagger.load(single, threads=1), sents, pos)
    small = Tagger.load(split, threads=1, workers=2, char_cache=capacity)
    for _ in range(2):  # the second time, the cache is full
        for x, ref in zip(probs(small, sents, pos, batch_size=4), reference):
            assert np.array_equal(x, ref)
        assert len(small._chars) == capacity  # far more distinct word forms than room


def test_char_cache_rows_match_the_character_graph(both: tuple) -> None:
    """The cache gives each row what the character graph computes for it alone, kept or not, and keeps
    each distinct row once."""
    config, _, split, _ = both
    session = ort.InferenceSession(str(load_package(split).char_graph_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    rows = rng.integers(0, config.n_chars, (30, config.max_token_chars)).astype(np.int32)
    rows[10:20] = rows[:10]  # repeated rows
    alone = np.concatenate([session.run(None, {"char_ids": rows[i : i + 1]})[0] for i in range(len(rows))])
    for n_chars in (None, config.n_chars, 300, 70_000):  # int32, uint8, uint16, int32 keys
        cache = CharCache(session, config.max_token_chars, capacity=12, n_chars=n_chars)
        assert np.array_equal(cache.features(rows), alone)
        assert len(cache) == 12  # 20 distinct rows, room for 12
        assert np.array_equal(cache.features(rows[::-1]), alone[::-1])
    with pytest.raises(ValueError, match="whole number of rows"):
        CharCache(session, config.max_token_chars, capacity=-1)


def test_sessions_that_do_not_fit_together_are_refused(both: tuple) -> None:
    _, _, split, single = both
    pkg, one = load_package(split), load_package(single)
    cpu = ["CPUExecutionProvider"]
    chars = ort.InferenceSession(str(pkg.char_graph_path), providers=cpu)
    with pytest.raises(ValueError, match="but the package has no character graph"):
        Tagger(one, {None: ort.InferenceSession(str(pkg.graph_path(None)), providers=cpu)})
    # Without a character session, the tagger opens the package's own with the graphs' providers.
    opened = Tagger(pkg, {None: ort.InferenceSession(str(pkg.graph_path(None)), providers=cpu)})
    assert opened._chars is not None and opened._chars._session.get_providers() == cpu
    with pytest.raises(ValueError, match="compute their own character features"):
        Tagger(one, {None: ort.InferenceSession(str(one.graph_path(None)), providers=cpu)}, char_session=chars)
    tagger = Tagger.load(split, device="cpu")
    assert tagger._chars is not None and tagger._chars._session.get_providers() == tagger.providers


def test_export_command_writes_either_kind(both: tuple, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ner_fast.cli import cli

    _, _, split, _ = both
    run = split.parent / "model"
    for flag, version in (("--char-graph", 2), ("--no-char-graph", 1)):
        result = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / flag), "--quantize", "none", flag])
        assert result.exit_code == 0, result.output
        assert load_package(tmp_path / flag).manifest["format_version"] == version


def test_write_package_refuses_graphs_and_a_character_graph_that_do_not_fit(both: tuple, tmp_path: Path) -> None:
    """A graph taking the character features without the character graph (what `bundle --requantize` wrote
    from a format-2 package) would give a package no tagger can load: refused before anything is written."""
    import onnx

    from ner_fast.training.package_writer import write_package

    _, _, split, single = both
    pkg = load_package(split)
    takes, computes = (onnx.load(str(load_package(p).graph_path(None))) for p in (split, single))
    chars = onnx.load(str(pkg.char_graph_path))
    info = {k: v for k, v in pkg.model.items() if k not in ("format_version", "buckets", "versions", "char_graph")}
    for graph, char_model, why in ((takes, None, "no character graph was given"), (computes, chars, "computes its own")):
        with pytest.raises(ValueError, match=why):
            write_package(tmp_path / "out", graph, [], info, {}, char_model=char_model)
        assert not (tmp_path / "out").exists()
    written = write_package(tmp_path / "out", takes, [4], info, {}, char_model=chars)
    assert load_package(written).manifest["format_version"] == 2


@pytest.mark.parametrize("capacity", [-1, 2.0, True, np.bool_(True), "100", None, np.int64(-2)])
def test_a_bad_char_cache_is_refused_whatever_the_format(both: tuple, capacity: object) -> None:
    """A package without a character graph ignores the cache, not a mistaken value (a float, a negative
    number): refused before any session starts, for both kinds, by load and by the constructor."""
    _, _, split, single = both
    for package in (split, single):
        with pytest.raises(ValueError, match="char_cache must be a whole number of rows"):
            Tagger.load(package, char_cache=capacity)
        pkg = load_package(package)
        with pytest.raises(ValueError, match="char_cache must be a whole number of rows"):
            Tagger(pkg, {None: ort.InferenceSession(str(pkg.graph_path(None)), providers=["CPUExecutionProvider"])},
                   char_cache=capacity)


def test_a_numpy_integer_char_cache_is_a_whole_number(both: tuple) -> None:
    _, _, split, _ = both
    tagger = Tagger.load(split, char_cache=np.int64(3))
    assert tagger._chars is not None and tagger._chars.capacity == 3 and type(tagger._chars.capacity) is int


@pytest.fixture(scope="module")
def raw_both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(format-2, format-1) int8 packages of one checkpoint without POS input (raw text can be tagged)."""
    folder = tmp_path_factory.mktemp("raw")
    make_checkpoint(folder / "model", with_pos=False, max_token_chars=8)
    return (export_model(folder / "model", folder / "split", quantize="int8"),
            export_model(folder / "model", folder / "single", quantize="int8", char_graph=False))


def raw_texts(n: int, seed: int) -> list[str]:
    """Raw texts of the checkpoint's words, new word forms and odd tokens, one to three sentences each."""
    rng = np.random.default_rng(seed)
    words = ["the", "EU", "said", "Paris", "on", "Monday", "Zyxwvutsrq", "Ω", "straße", "Al-Qaida", "2009", "U.N.", "李"]
    return [" ".join(" ".join(words[int(k)] for k in rng.integers(0, len(words), int(rng.integers(1, 12)))) + " ."
                     for _ in range(int(rng.integers(1, 4)))) for _ in range(n)]


@pytest.mark.numeric
def test_pipe_with_threads_and_a_warm_cache_gives_each_text_its_single_graph_answer(raw_both: tuple) -> None:
    split, single = raw_both
    texts = raw_texts(60, seed=8)
    reference = [Tagger.load(single, threads=1)(t).to_json() for t in texts]  # the single graph, each text alone
    assert sum('"score"' in r for r in reference) > 10  # entities, each with its score
    warm = Tagger.load(split, threads=1, workers=2)
    list(warm.pipe(raw_texts(40, seed=9)))  # other texts fill the cache first
    assert len(warm._chars) > 0
    for batch_size, n_threads in ((3, 2), (1000, 2), (7, 1)):
        got = [d.to_json() for d in warm.pipe(texts, batch_size=batch_size, n_threads=n_threads)]
        assert len(got) == len(reference)
        assert got == reference  # the JSON carries every score: the same floats


@pytest.mark.slow  # starts a local Dask cluster
def test_tag_output_dir_on_dask_equals_the_single_graph_command(raw_both: tuple, tmp_path: Path) -> None:
    """`ner-fast tag --output-dir` (each Dask worker process loads its own tagger and cache) writes what the
    format-1 package writes in one process, byte for byte."""
    import json

    from click.testing import CliRunner

    from ner_fast.cli import cli

    pytest.importorskip("distributed")
    split, single = raw_both
    path = tmp_path / "docs.txt"
    path.write_text("".join(t + "\n" for t in raw_texts(50, seed=10)), encoding="utf-8")
    one = CliRunner().invoke(cli, ["tag", str(single), str(path), "--input-format", "text", "--output-format", "jsonl",
                                   "--output", str(tmp_path / "one.jsonl"), "--threads", "1"])
    assert one.exit_code == 0, one.output
    out = tmp_path / "out"
    many = CliRunner().invoke(cli, ["tag", str(split), str(path), "--input-format", "text", "--local-workers", "2",
                                    "--output-dir", str(out), "--partition-size", "9"])
    assert many.exit_code == 0, many.output
    parts = sorted(out.glob("part-*.jsonl"))
    assert len(parts) == 6
    lines = [line for part in parts for line in part.read_text(encoding="utf-8").splitlines()]
    want = (tmp_path / "one.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(want) == 50
    assert [json.loads(x) for x in lines] == [json.loads(x) for x in want]


@pytest.mark.numeric
@pytest.mark.parametrize("capacity", [50, 100_000])
def test_many_threads_on_one_tagger_get_the_answers_of_one(both: tuple, capacity: int) -> None:
    """8 threads x 200 calls on one tagger, inserting into its cache at once (a small cache fills up while
    they run): every answer is the single graph's, bit for bit, and the cache holds at most its capacity."""
    from concurrent.futures import ThreadPoolExecutor

    _, vocabs, split, single = both
    sents, pos = sentences(vocabs, 120, seed=11)
    reference = probs(Tagger.load(single, threads=1), sents, pos)
    shared = Tagger.load(split, threads=1, char_cache=capacity)

    def calls(seed: int) -> int:
        rng = np.random.default_rng(seed)
        wrong = 0
        for k in range(200):
            if k % 4:
                i = int(rng.integers(len(sents)))
                wrong += not np.array_equal(shared.tag(sents[i], pos[i], proba=True)[1], reference[i])
            else:
                idx = rng.integers(len(sents), size=5).tolist()
                got = probs(shared, [sents[i] for i in idx], [pos[i] for i in idx], batch_size=int(rng.integers(1, 6)))
                wrong += sum(not np.array_equal(g, reference[i]) for g, i in zip(got, idx))
        return wrong

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(calls, range(8))) == [0] * 8
    assert 0 < len(shared._chars) <= capacity and len(shared._chars._slots) == len(shared._chars)


def test_cuda_falls_back_to_the_cpu_for_the_character_graph_too(both: tuple) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    _, _, split, _ = both
    with pytest.warns(RuntimeWarning, match="CUDA"):
        tagger = Tagger.load(split, device="cuda")
    assert tagger.providers == tagger._chars._session.get_providers() == ["CPUExecutionProvider"]
