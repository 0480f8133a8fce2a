"""Ensemble packages and the cut of rare words' embeddings (`export.ensemble_graph`,
`export.truncate_words`, `ner-fast export --ensemble/--max-words`).

The oracle is each member exported alone (float32), combined in NumPy: the ensemble's tag
probabilities must be the normalised geometric mean of the members', its POS probabilities their
mean, its CRF scores the mean of theirs. A cut vocabulary must give exactly what the full one gives
when the rarer words are replaced by the unknown id.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import SENTENCES, PackageGraph, absolute_paths, float_tol, make_checkpoint, network_terms
from ner_fast import Tagger
from ner_fast.checkpoint import load_model
from ner_fast.cli import cli
from ner_fast.corpus import Corpus
from ner_fast.decode import decode
from ner_fast.features import ROW_WORD
from ner_fast.training.export import export_model
from ner_fast.package import load_package
from ner_fast.vocab import UNK

# Words of the members' vocabulary and some they never saw.
TEXTS = SENTENCES + [["Merkel", "met", "Obama", "in", "Paris", "on", "Tuesday", "."], ["UN"]]


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two CRF models with POS heads over the same vocabularies, with different character CNNs and sizes."""
    root = tmp_path_factory.mktemp("members")
    arch = dict(use_pos=False, pos_aux_weight=1.0, crf=True, decode="bio")
    make_checkpoint(root / "a", seed=1, **arch)
    make_checkpoint(root / "b", seed=2, filter_widths=[3], filters=6, hidden=5, **arch)
    return root


def outputs(tagger: Tagger, x: np.ndarray) -> list[np.ndarray]:
    # The package's dynamic graph; a format-2 package's character graph feeds its second input.
    return PackageGraph(tagger.package, None).run(None, {tagger.input_name: x})


def geometric_mean(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Softmax of the mean log-probability, in float64."""
    mean_log = (np.log(pa.astype(np.float64)) + np.log(pb.astype(np.float64))) / 2
    expected = np.exp(mean_log - mean_log.max(axis=-1, keepdims=True))
    return expected / expected.sum(axis=-1, keepdims=True)


@pytest.mark.numeric
def test_an_ensemble_is_its_members_geometric_mean(members: Path, tmp_path: Path) -> None:
    alone = [Tagger.load(export_model(members / m, tmp_path / m, quantize=None), device="cpu") for m in "ab"]
    both = Tagger.load(export_model(members / "a", tmp_path / "ab", quantize=None, ensemble=[members / "b"]), device="cpu")
    batches = list(both.features(TEXTS, batch_size=len(TEXTS)))
    assert len(batches) == 1
    x = batches[0]
    (pa, pos_a), (pb, pos_b) = outputs(alone[0], x), outputs(alone[1], x)
    probs, pos = outputs(both, x)
    real = x[:, ROW_WORD, :] > 0
    assert real.sum() == sum(map(len, TEXTS))
    expected = geometric_mean(pa, pb)
    assert not np.allclose(pa[real], pb[real], atol=1e-2)  # the members disagree, so the mean means something
    # Each member's float32 network inside the ensemble's graph against the member alone (every operation
    # over the batch's steps), then a float32 mean of logs and softmax over n_tags (n_tags + 4 roundings).
    terms = max(network_terms(load_model(members / m, "best")[0], x.shape[-1]) for m in "ab")
    np.testing.assert_allclose(probs[real], expected[real], atol=float_tol(terms + len(both.tags) + 4))
    np.testing.assert_allclose(pos[real], ((pos_a + pos_b) / 2)[real], atol=float_tol(terms + 2))  # a mean of two
    for field in ("transitions", "start", "end"):
        mean = (getattr(alone[0].crf, field) + getattr(alone[1].crf, field)) / 2
        # A float32 mean of two float32 values: one rounding of the sum, one of the halving.
        np.testing.assert_allclose(getattr(both.crf, field), mean, atol=float_tol(2, float(np.abs(mean).max())))
    # The tagger decodes the combined probabilities with the combined CRF scores, sentence by sentence.
    for text in TEXTS:
        one = next(both.features([text]))
        expected = geometric_mean(outputs(alone[0], one)[0], outputs(alone[1], one)[0])
        ids = decode(expected, np.array([len(text)]), both.tags, "bio", both.crf)[0]
        assert both.tag(text) == [both.tags[t] for t in ids[: len(text)]]
    model = both.package.model
    assert [m["hidden"] for m in model["architecture"]["members"]] == [alone[0].package.model["architecture"]["hidden"], 5]
    assert [Path(s["model_dir"]).name for s in model["source"]["members"]] == ["a", "b"]


@pytest.mark.numeric
def test_an_int8_ensemble_tags_like_the_float_one(members: Path, tmp_path: Path) -> None:
    exact = Tagger.load(export_model(members / "a", tmp_path / "f", quantize=None, ensemble=[members / "b"]), device="cpu")
    small = Tagger.load(export_model(members / "a", tmp_path / "q", ensemble=[members / "b"]), device="cpu")
    assert small.package.model["quantization"] == "int8"
    _, p_exact = exact.tag_batch(TEXTS, proba=True)
    _, p_small = small.tag_batch(TEXTS, proba=True)
    assert len(p_exact) == len(p_small) == len(TEXTS)
    for a, b in zip(p_exact, p_small):
        # Not float rounding but int8's: weights and activations land on 1/255 of their range (0.4%), errors
        # that add up through the two members' few small layers to a few percent of a probability at most;
        # a wrong scale or zero point moves probabilities by tenths.
        assert np.abs(a - b).max() < 0.05


@pytest.mark.numeric
def test_max_words_reads_the_rarer_words_as_unknown(members: Path, tmp_path: Path) -> None:
    full = Tagger.load(export_model(members / "a", tmp_path / "full", quantize=None), device="cpu")
    words = full.package.model["vocab"]["words"]
    k = 8
    cut = Tagger.load(export_model(members / "a", tmp_path / "cut", quantize=None, max_words=k), device="cpu")
    assert cut.package.model["vocab"]["words"] == words[:k]
    assert cut.package.model["architecture"]["n_words"] == k
    x_full, x_cut = next(full.features(TEXTS, batch_size=len(TEXTS))), next(cut.features(TEXTS, batch_size=len(TEXTS)))
    rare = x_full[:, ROW_WORD, :] >= k
    kept = (x_full[:, ROW_WORD, :] > UNK) & ~rare
    assert rare.any() and kept.any()
    expected = x_full.copy()
    expected[:, ROW_WORD, :][rare] = UNK
    assert np.array_equal(x_cut, expected)
    # The same float32 network but for the embedding table's size: within its operations' rounding.
    terms = network_terms(load_model(members / "a", "best")[0], x_cut.shape[-1])
    np.testing.assert_allclose(outputs(cut, x_cut)[0], outputs(full, expected)[0], atol=float_tol(terms))
    weights = {p: sum(f.stat().st_size for f in p.iterdir()) for p in (full.package.path, cut.package.path)}
    assert weights[cut.package.path] < weights[full.package.path]


def test_members_that_do_not_fit_together_are_refused(members: Path, tmp_path: Path) -> None:
    other = Corpus.from_sentences([["Rome", "is", "old", "."]], None, [["B-geo", "O", "O", "O"]])
    make_checkpoint(tmp_path / "c", corpus=other, with_pos=False)
    with pytest.raises(ValueError, match="same vocabularies"):
        export_model(members / "a", tmp_path / "x", ensemble=[tmp_path / "c"])
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())  # nothing written
    result = CliRunner().invoke(cli, ["export", str(members / "a"), "--out", str(tmp_path / "y"), "--ensemble", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "same vocabularies" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_members_trained_with_different_decoding_are_refused(members: Path, tmp_path: Path) -> None:
    # Same vocabularies and architecture as member a (which decodes "bio"): only the decoding differs.
    make_checkpoint(tmp_path / "argmax", seed=3, use_pos=False, pos_aux_weight=1.0, crf=True, decode="argmax")
    assert load_package(export_model(tmp_path / "argmax", tmp_path / "alone", quantize=None)).model["decode"] == "argmax"
    with pytest.raises(ValueError, match="decode alike"):
        export_model(members / "a", tmp_path / "x", ensemble=[tmp_path / "argmax"])
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())  # nothing written
    result = CliRunner().invoke(
        cli, ["export", str(members / "a"), "--out", str(tmp_path / "y"), "--ensemble", str(members / "b"), "--ensemble", str(tmp_path / "argmax")]
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1, result.output
    # Both members and both values are named.
    for part in (str(members / "a"), "'bio'", str(tmp_path / "argmax"), "'argmax'"):
        assert part in result.output, (part, result.output)
    assert str(members / "b") not in result.output  # b decodes as a does
    assert not (tmp_path / "y").exists() or not any((tmp_path / "y").iterdir())


def test_the_package_records_its_members_without_absolute_paths(members: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The members live outside the current folder: their folder names alone.
    assert not members.is_relative_to(Path.cwd())
    model = load_package(export_model(members / "a", tmp_path / "e", quantize=None, ensemble=[members / "b"])).model
    assert [s["model_dir"] for s in model["source"]["members"]] == ["a", "b"]
    assert absolute_paths(model) == []
    # From the folder holding them (named absolute or relative): relative to it, as a user types them.
    monkeypatch.chdir(members.parent)
    model = load_package(export_model(members / "a", tmp_path / "f", quantize=None, ensemble=[Path(members.name) / "b"])).model
    assert [s["model_dir"] for s in model["source"]["members"]] == [f"{members.name}/a", f"{members.name}/b"]
    assert absolute_paths(model) == []
    single = load_package(export_model(members / "a", tmp_path / "g", quantize=None)).model
    assert single["source"]["model_dir"] == f"{members.name}/a"
    assert absolute_paths(single) == []


def test_export_command_writes_an_ensemble(members: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["export", str(members / "a"), "--out", str(tmp_path / "e"), "--ensemble", str(members / "b"), "--max-words", "9"]
    )
    assert result.exit_code == 0, result.output
    pkg = load_package(tmp_path / "e")
    assert len(pkg.model["architecture"]["members"]) == 2 and len(pkg.model["vocab"]["words"]) == 9
    assert pkg.model["pos_output"] is not None


def test_export_refuses_what_it_would_ignore_or_hide(members: Path, tmp_path: Path) -> None:
    # An ensemble is one graph: --char-graph given with --ensemble was ignored without a word.
    result = CliRunner().invoke(cli, ["export", str(members / "a"), "--out", str(tmp_path / "e"), "--ensemble",
                                      str(members / "b"), "--char-graph"])
    assert result.exit_code == 2 and "--char-graph: an ensemble is always one graph" in result.output
    assert not (tmp_path / "e").exists()
    # A package written into a training run (--force keeps its files) hid it: evaluate and --resume then
    # called the folder a package.
    run = tmp_path / "run"
    shutil.copytree(members / "b", run)
    result = CliRunner().invoke(cli, ["export", str(members / "a"), "--out", str(run), "--force"])
    assert result.exit_code == 2 and f"{run} is a training run" in result.output
    assert not (run / "manifest.json").exists()


def test_the_same_member_twice_is_refused(members: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="named twice"):
        export_model(members / "a", tmp_path / "x", ensemble=[members / "b", members / ".." / members.name / "a"])
    assert not (tmp_path / "x").exists()
    result = CliRunner().invoke(cli, ["export", str(members / "a"), "--out", str(tmp_path / "y"), "--ensemble", str(members / "a")])
    assert result.exit_code == 1 and "named twice" in result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "y").exists()


@pytest.mark.numeric
def test_max_words_cuts_a_model_trained_with_the_language_model_loss(tmp_path: Path) -> None:
    """The training-only LM head predicts the most frequent word ids; a cut below its `lm_vocab` must
    still export (it failed: 'parameter lm_fwd_out_weight has shape (6, 50), expected (4, 50)') and tag
    as the full model does with the rarer words read as unknown."""
    make_checkpoint(tmp_path / "lm", seed=1, use_pos=False, pos_aux_weight=1.0, lm_aux_weight=0.1, lm_vocab=6)
    full = Tagger.load(export_model(tmp_path / "lm", tmp_path / "full", quantize=None), device="cpu")
    k = 4
    cut = Tagger.load(export_model(tmp_path / "lm", tmp_path / "cut", quantize=None, max_words=k), device="cpu")
    assert cut.package.model["architecture"]["n_words"] == k
    assert cut.package.model["architecture"]["lm_aux_weight"] == full.package.model["architecture"]["lm_aux_weight"] > 0
    x_full, x_cut = next(full.features(TEXTS, batch_size=len(TEXTS))), next(cut.features(TEXTS, batch_size=len(TEXTS)))
    rare = x_full[:, ROW_WORD, :] >= k
    assert rare.any()
    expected = x_full.copy()
    expected[:, ROW_WORD, :][rare] = UNK
    assert np.array_equal(x_cut, expected)
    terms = network_terms(load_model(tmp_path / "lm", "best")[0], x_cut.shape[-1])  # as in the test above
    np.testing.assert_allclose(outputs(cut, x_cut)[0], outputs(full, expected)[0], atol=float_tol(terms))
