"""`ner_fast.text`: the GMB-style tokenizer and sentence splitter (examples, agreement with the bundled
corpus, offsets on any input), and the `Doc` API on real tagging through `Tagger.__call__` and `pipe`."""
from __future__ import annotations

import copy
import itertools
import json
import pickle
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from ner_fast import Doc, Entity, Tagger
from ner_fast.corpus import read_corpus
from ner_fast.training.export import export_model
from ner_fast.package import PackageError
from ner_fast.schemes import TagScheme, chunk_ids
from ner_fast.doc import json_line
from ner_fast.text import ABBREVIATIONS, blank_token, CUT_BACKOFF, MAX_SENTENCE_TOKENS, NUMBERED_ABBREVIATIONS, corpus_abbreviations, segment, split_sentences, tokenize
from helpers import float_tol, make_checkpoint

CORPUS = Path(__file__).resolve().parents[1] / "src" / "ner_fast" / "data" / "ner_dataset.csv.zip"


def words(text: str) -> list[str]:
    return tokenize(text)[0]


def sentences(text: str) -> list[str]:
    w, starts, ends, offsets = segment(text)
    return [text[starts[a] : ends[b - 1]] for a, b in zip(offsets[:-1], offsets[1:])]


# ------------------------------------------------------------------------------------------ tokenizer


@pytest.mark.parametrize(
    "text, expected",
    [
        # contractions split, possessive 's alone, abbreviations keep their period, compounds whole
        ("Mr. Smith's car isn't in the U.S.-led zone.", ["Mr.", "Smith", "'s", "car", "is", "n't", "in", "the", "U.S.-led", "zone", "."]),
        ("We'll see, they've said I'm OK; don't", ["We", "'ll", "see", ",", "they", "'ve", "said", "I", "'m", "OK", ";", "do", "n't"]),
        ("DON'T", ["DO", "N'T"]),
        ("al-Qaida's Shi'ite leaders in Port-au-Prince", ["al-Qaida", "'s", "Shi'ite", "leaders", "in", "Port-au-Prince"]),
        # money, percent and numbers with separators
        ("$5 and 3.5% of 1,000 at 3:30 p.m.", ["$", "5", "and", "3.5", "%", "of", "1,000", "at", "3:30", "p.m."]),
        # straight quotes and brackets are their own tokens, unchanged
        ('He said "no" (twice).', ["He", "said", '"', "no", '"', "(", "twice", ")", "."]),
        # a sentence-final period leaves a word, not an abbreviation
        ("She lives in Paris. Gen. Smith too.", ["She", "lives", "in", "Paris", ".", "Gen.", "Smith", "too", "."]),
        ("George W. Bush met AT&T and/or Wal-Mart's CEO", ["George", "W.", "Bush", "met", "AT&T", "and/or", "Wal-Mart", "'s", "CEO"]),
        ("No. 5 but he said No.", ["No.", "5", "but", "he", "said", "No", "."]),
        ("Wait... what?! -- nothing", ["Wait", "...", "what", "?!", "--", "nothing"]),
        ("countries' leaders in the '80s", ["countries", "'", "leaders", "in", "the", "'80s"]),
        ("mail jo.doe+x@example.co.uk or https://example.org/a?b=1.", ["mail", "jo.doe+x@example.co.uk", "or", "https://example.org/a?b=1", "."]),
        ("", []),
        (" \t\n", []),
    ],
)
def test_gmb_conventions(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_whitespace_of_every_kind_separates_and_offsets_point_into_the_original() -> None:
    text = "Paris\tLondon\u00a0Berlin\u2028Rome\rMadrid\r\nOslo\u2003Bern\x0bKyiv\u200bRiga\ufeffBonn"
    w, starts, ends = tokenize(text)
    assert w == ["Paris", "London", "Berlin", "Rome", "Madrid", "Oslo", "Bern", "Kyiv", "Riga", "Bonn"]
    assert [text[a:b] for a, b in zip(starts, ends)] == w


def test_control_characters_and_astral_code_points() -> None:
    text = "a\x00b \U0001f600x \U0001d400\U0001d401 e\u0301t\u00e9 \x07"
    w, starts, ends = tokenize(text)
    # Controls separate; an emoji is a symbol token; mathematical letters are word characters; a
    # combining accent stays in its word.
    assert w == ["a", "b", "\U0001f600", "x", "\U0001d400\U0001d401", "e\u0301t\u00e9"]
    assert [text[a:b] for a, b in zip(starts, ends)] == w


def is_separator(ch: str) -> bool:
    """The separators as the module documents them, written independently of its regex."""
    # Whitespace, control characters and the invisible format characters (category Cf) but the soft hyphen,
    # which belongs to its word (and is dropped when it stands alone: checked in the test).
    return ch.isspace() or unicodedata.category(ch) == "Cc" or (unicodedata.category(ch) == "Cf" and ch != SOFT_HYPHEN)


SOFT_HYPHEN = "\u00ad"


SPECIAL = st.sampled_from(list("\t\n\r\x0b\x0c \u00a0\u2028\u2029\u3000\x00\x1f\x85\u200b\u200e\u200d\u00ad\ufeff.'’-?!\"$%n't")
                          + ["\U0001f600", "\U00010348", "\U000e0020"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(min_size=1, max_size=8), SPECIAL, st.sampled_from(["U.S.", "Mr.", "n't", "'s", "1,000", "http://x.y"])), max_size=30))
def test_offsets_are_valid_ordered_and_cover_every_non_separator(parts: list[str]) -> None:
    text = "".join(parts)
    w, starts, ends, offsets = segment(text)
    assert len(w) == len(starts) == len(ends)
    covered = np.zeros(len(text), dtype=np.int64)
    previous_end = 0
    for word, a, b in zip(w, starts, ends):
        assert previous_end <= a < b <= len(text)
        assert text[a:b] == word
        covered[a:b] += 1
        previous_end = b
    for i, ch in enumerate(text):
        if ch == SOFT_HYPHEN:  # inside a word: covered; a token of soft hyphens alone: dropped
            assert covered[i] in (0, 1), (i, ch)
        else:
            assert covered[i] == (0 if is_separator(ch) else 1), (i, ch)
    assert all(word.strip(SOFT_HYPHEN) for word in w)  # no token is blank or soft hyphens alone
    # Sentences: from token 0 to the last, none empty (no sentence at all without tokens), none too long.
    assert offsets[0] == 0 and offsets[-1] == len(w)
    assert np.all(np.diff(offsets) > 0) and np.all(np.diff(offsets) <= MAX_SENTENCE_TOKENS)
    assert len(offsets) == 1 if not w else len(offsets) >= 2


def test_a_megabyte_string() -> None:
    unit = "Mr. Smith's firm paid $5 in the U.S.-led zone.\u00a0Prices rose 3.5% on Monday!\n\n"
    text = unit * (1_000_000 // len(unit) + 1)
    w, starts, ends, offsets = segment(text)
    per_unit = words(unit)
    assert len(text) >= 1_000_000
    assert len(w) == len(per_unit) * (len(text) // len(unit))
    assert w[: 2 * len(per_unit)] == per_unit * 2
    assert text[starts[-1] : ends[-1]] == w[-1]
    assert len(offsets) - 1 == 2 * (len(text) // len(unit))  # two sentences a unit


def test_tokenizer_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="str"):
        tokenize(b"bytes")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def gmb():
    return read_corpus(CORPUS)


def test_agreement_with_the_bundled_corpus(gmb) -> None:
    """Re-tokenizing the corpus's sentences from their space-joined text gives back its tokens."""
    sample = gmb[:3000]
    agree = total = 0
    for i in range(len(sample)):
        gold = sample.sentence(i).words
        text = " ".join(gold)
        spans, position = set(), 0
        for word in gold:
            spans.add((position, position + len(word)))
            position += len(word) + 1
        w, starts, ends = tokenize(text)
        agree += len(spans & set(zip(starts, ends)))
        total += len(gold)
    assert total > 60_000
    assert agree / total >= 0.999


def test_abbreviations_cover_the_corpus(gmb) -> None:
    counts = Counter(w for w in gmb.words if w.endswith("."))
    learned = {a for a in corpus_abbreviations(counts.elements()) if counts[a + "."] >= 2}
    assert {"Mr", "Corp", "Gen", "No"} <= learned
    assert learned <= ABBREVIATIONS | NUMBERED_ABBREVIATIONS
    for a in learned:
        follower = "5" if a in NUMBERED_ABBREVIATIONS else "Smith"
        assert words(f"{a}. {follower}") == [f"{a}.", follower]


# ----------------------------------------------------------------------------------- sentence splitter


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Angela Merkel visited Paris on Monday. She met Emmanuel Macron.",
         ["Angela Merkel visited Paris on Monday.", "She met Emmanuel Macron."]),
        ('He said "Go!" Then he left (quickly.) Done', ['He said "Go!"', "Then he left (quickly.)", "Done"]),
        ('Really? "Yes," she said.', ["Really?", '"Yes," she said.']),
        ("Mr. Smith went to the U.S. on Monday. Wait... what? yes", ["Mr. Smith went to the U.S. on Monday.", "Wait... what? yes"]),
        ("Title\n\nFirst line\nsame sentence", ["Title", "First line\nsame sentence"]),
        ("One\r\rTwo\r\n \r\nThree\u2029Four", ["One", "Two", "Three", "Four"]),
        ("", []),
    ],
)
def test_sentence_splitting(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_no_sentence_is_longer_than_the_cap() -> None:
    cap = MAX_SENTENCE_TOKENS
    text = " ".join(f"w{i}" for i in range(2 * cap + 10)) + ". Short one."
    w, starts, ends, offsets = segment(text)
    lengths = [b - a for a, b in zip(offsets[:-1], offsets[1:])]
    # The run without a full stop is cut every `cap` tokens; the short sentence keeps its own bounds.
    assert lengths == [cap, cap, 11, 3]
    assert w[offsets[-2] : offsets[-1]] == ["Short", "one", "."]


def test_a_long_run_is_not_cut_inside_a_name() -> None:
    # A cut at the cap itself fell between "Angela" and "Merkel" (tokens 255 and 256): two entities.
    cap = MAX_SENTENCE_TOKENS
    text = "the " * (cap - 1) + "Angela Merkel visited New York City on Monday"
    w, _, _, offsets = segment(text)
    assert w[cap - 1 : cap + 1] == ["Angela", "Merkel"]
    assert offsets == [0, cap - 2, len(w)]  # back to the last cut between two plain tokens: "the | the"
    # Punctuation is plain too: "a | ," is a place to cut, ", | Emmanuel" and "Emmanuel | Macron" are not.
    text = "a " * (cap - 2) + ", Emmanuel Macron said"
    w, _, _, offsets = segment(text)
    assert w[cap - 2 : cap + 1] == [",", "Emmanuel", "Macron"]
    assert offsets == [0, cap - 2, len(w)]


def test_a_long_run_of_names_is_cut_at_the_cap() -> None:
    # No place between two plain tokens within CUT_BACKOFF of the cap: the cap itself.
    cap = MAX_SENTENCE_TOKENS
    words = ["x"] * (cap - CUT_BACKOFF - 5) + ["Name"] * (2 * cap)
    w, _, _, offsets = segment(" ".join(words))
    assert offsets[1] == cap and offsets[2] == 2 * cap
    assert np.all(np.diff(offsets) <= cap)


def test_split_sentences_returns_token_offsets() -> None:
    text = "a. B"
    w, starts, ends = tokenize(text)
    assert split_sentences(text, w, starts, ends) == [0, 2, 3]


# ------------------------------------------------------------------------------------------ Doc API

TEXTS = [
    "Angela Merkel visited Paris on Monday. She met Emmanuel Macron in New\tYork.",
    "",
    "The UN met in New York.\n\nPrices rose 3.5 % in 2009, Mr. Smith's firm said.",
    "   ",
    "Zyxwv straße Ω 1,000 \U0001f600 don't stop " * 3,
    "Angela",
]


@pytest.fixture(scope="module")
def tagger(tmp_path_factory: pytest.TempPathFactory) -> Tagger:
    folder = tmp_path_factory.mktemp("text")
    make_checkpoint(folder / "model", buckets=[4, 9], with_pos=False)
    return Tagger.load(export_model(folder / "model", folder / "pkg", quantize=None), device="cpu", threads=1)


def check_doc(doc: Doc, text: str) -> None:
    """The offset invariants of one Doc."""
    assert doc.text == text
    tokens = doc.tokens
    assert [t.text for t in tokens] == words(text)
    for t in tokens:
        assert text[t.start : t.end] == t.text and 0.0 <= t.score <= 1.0 and t.pos is None
    # Sentences tile the tokens in order (no tokens, no sentence).
    assert bool(doc.sentences) == bool(tokens)
    if tokens:
        assert [s.token_start for s in doc.sentences] == [0, *[s.token_end for s in doc.sentences[:-1]]]
        assert doc.sentences[-1].token_end == len(tokens)
    for s in doc.sentences:
        assert (s.start, s.end) == (tokens[s.token_start].start, tokens[s.token_end - 1].end)
    for e in doc.entities:
        assert text[e.start : e.end] == e.text
        assert (e.start, e.end) == (tokens[e.token_start].start, tokens[e.token_end - 1].end)
        assert tokens[e.token_start].tag in (f"B-{e.label}", f"I-{e.label}")
        assert all(t.tag == f"I-{e.label}" for t in tokens[e.token_start + 1 : e.token_end])
        # The mean of the same float32 scores in another order: one rounding per term.
        n = e.token_end - e.token_start
        assert e.score == pytest.approx(np.mean([t.score for t in tokens[e.token_start : e.token_end]]), rel=float_tol(n + 1))
        # Never across a sentence boundary.
        assert any(s.token_start <= e.token_start and e.token_end <= s.token_end for s in doc.sentences)


def test_call_tags_the_sentences_of_the_text_like_tag_batch(tagger: Tagger) -> None:
    n_entities = 0
    for text in TEXTS:
        doc = tagger(text)
        check_doc(doc, text)
        w, starts, ends, offsets = segment(text)
        sents = [w[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
        tags, probs = tagger.tag_batch(sents, proba=True)
        assert [t.tag for t in doc.tokens] == [t for s in tags for t in s]
        chosen = [p[i, tagger.tags.index(t)] for s, p in zip(tags, probs) for i, t in enumerate(s)]
        assert [t.score for t in doc.tokens] == pytest.approx(chosen, rel=float_tol(1))  # the same value, rounded to float32 at most once
        expected = [(e.label, s[e.token_start : e.token_end]) for s in sents for e in tagger.entities(s)]
        assert [(e.label, [t.text for t in doc.tokens[e.token_start : e.token_end]]) for e in doc.entities] == expected
        n_entities += len(doc.entities)
    assert n_entities > 0


def test_a_long_text_without_sentence_ends(tagger: Tagger) -> None:
    text = "alpha\tbeta gamma\u00a0" * 2000  # 6,000 tokens, no full stop: cut at the sentence cap
    doc = tagger(text)
    check_doc(doc, text)
    assert len(doc) == 6000 and len(doc.sentences) == -(-6000 // MAX_SENTENCE_TOKENS)


@pytest.mark.parametrize("batch_size, n_threads", [(1, 1), (2, 2), (3, 1), (256, 2)])
def test_pipe_equals_call_in_order(tagger: Tagger, batch_size: int, n_threads: int) -> None:
    texts = TEXTS * 7
    docs = list(tagger.pipe(texts, batch_size=batch_size, n_threads=n_threads))
    assert len(docs) == len(texts)
    assert [d.to_dict() for d in docs] == [tagger(t).to_dict() for t in texts]


def test_pipe_is_lazy(tagger: Tagger) -> None:
    pulled = itertools.count()
    endless = (TEXTS[0] for _ in pulled)
    docs = list(itertools.islice(tagger.pipe(endless, batch_size=4, n_threads=2), 5))
    assert [d.text for d in docs] == [TEXTS[0]] * 5
    assert next(pulled) < 40  # read ahead a few groups, not the endless input


def test_pipe_and_call_refuse_bad_input(tagger: Tagger) -> None:
    with pytest.raises(TypeError):
        list(tagger.pipe(["ok", b"bytes"]))  # type: ignore[list-item]
    with pytest.raises(TypeError):
        tagger(["already", "tokens"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        list(tagger.pipe(["a"], batch_size=0))
    with pytest.raises(TypeError, match="batch_size must be an int, got str"):
        list(tagger.pipe(["a"], batch_size="4"))  # type: ignore[arg-type]  (was "'<' not supported ...")
    with pytest.raises(ValueError, match="n_threads"):
        list(tagger.pipe(["a"], n_threads=0))
    # A set or a dict was tagged in its own iteration order (a dict as its keys): nothing to match back to.
    with pytest.raises(TypeError, match="ordered iterable of texts, not a set"):
        tagger.pipe({"b text", "a text"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ordered iterable of texts, not a dict"):
        tagger.pipe({"Angela Merkel": "x"})  # type: ignore[arg-type]


def test_a_doc_pickles_with_its_own_outputs_only(tagger: Tagger) -> None:
    # A Doc of `pipe` views its group's output arrays (thousands of sentences): pickled, it carried them all.
    texts = [f"{TEXTS[0]} Day {i}." for i in range(600)]
    docs = list(tagger.pipe(texts))
    alone = tagger(texts[7])
    again = pickle.loads(pickle.dumps(docs[7]))
    assert again.to_dict() == docs[7].to_dict() == alone.to_dict() and again.entities
    assert len(pickle.dumps(docs[7])) <= 1.2 * len(pickle.dumps(alone))
    assert copy.deepcopy(docs[7]).to_dict() == alone.to_dict()


def test_doc_entities_cannot_be_changed_through_the_doc(tagger: Tagger) -> None:
    doc = tagger(TEXTS[0])
    assert isinstance(doc.entities, tuple) and doc.entities  # a cached list was handed out: .clear() emptied the Doc
    with pytest.raises(AttributeError):
        doc.entities.clear()  # type: ignore[attr-defined]
    assert doc.to_dict()["entities"]


def test_to_dict_shape(tagger: Tagger) -> None:
    doc = tagger(TEXTS[0])
    d = json.loads(json.dumps(doc.to_dict()))
    assert list(d) == ["text", "entities", "sentences", "tokens"]
    assert d["text"] == TEXTS[0]
    assert len(d["entities"]) == len(doc.entities) > 0
    for e, ent in zip(d["entities"], doc.entities):
        assert list(e) == ["label", "entity_group", "start", "end", "text", "word", "score", "token_start", "token_end"]
        assert e["entity_group"] == e["label"] == ent.label and e["word"] == e["text"] == TEXTS[0][e["start"] : e["end"]]
        assert e["score"] == pytest.approx(ent.score, abs=0.5e-6 + float_tol(2, 1.0, np.float64))  # to_dict rounds to 6 decimals
    assert d["sentences"] == [{"start": 0, "end": 38}, {"start": 39, "end": 75}]
    assert [list(t) for t in d["tokens"]] == [["text", "start", "end", "tag", "pos"]] * len(doc.tokens)
    assert [(t["text"], t["start"], t["end"], t["tag"], t["pos"]) for t in d["tokens"]] == [t[:5] for t in doc.tokens]


def test_json_line_is_compact_json_with_line_ends_escaped() -> None:
    value = {"text": "a\u2028b\x85c\u2029d \u00e9\u674e\U0001f642 \"q\"\n", "n": [1, 0.5, None, True]}
    line = json_line(value)
    # Written by hand: no spaces, non-ASCII kept as UTF-8, the three line ends and the JSON escapes escaped.
    expected = '{"text":"a\\u2028b\\u0085c\\u2029d \u00e9\u674e\U0001f642 \\"q\\"\\n","n":[1,0.5,null,true]}'
    assert line == expected.encode("utf-8")
    assert json.loads(line) == value
    assert len(line.decode("utf-8").splitlines()) == 1


def test_to_json_is_the_json_line_of_to_dict(tagger: Tagger) -> None:
    texts = [TEXTS[0], "Zo\u00eb met Ange\u2028la in Z\u00fcrich\x85 on Friday.\u2029Then Paris."]
    docs = [tagger(t) for t in texts]
    assert docs
    for text, doc in zip(texts, docs):
        line = doc.to_json()
        assert json.loads(line) == json.loads(json.dumps(doc.to_dict()))  # the json module as the reference
        assert line.splitlines() == [line] and json.loads(line)["text"] == text
        assert line.encode("utf-8") == json_line(doc.to_dict())


def test_entity_is_one_class_with_offsets_and_token_indices(tagger: Tagger) -> None:
    e = Entity("per", 0, 13, "Angela Merkel", 0.5, 0, 2)
    assert e.type == e.label == "per"
    found = tagger.entities(["Angela", "Merkel", "visited", "Paris"])
    assert found and all(isinstance(x, Entity) for x in found)


def test_a_pos_input_model_refuses_raw_text(tmp_path: Path) -> None:
    make_checkpoint(tmp_path / "model", buckets=[4], with_pos=True)
    pos_tagger = Tagger.load(export_model(tmp_path / "model", tmp_path / "pkg", quantize=None), device="cpu")
    with pytest.raises(ValueError, match="POS"):
        pos_tagger("Angela Merkel visited Paris.")
    with pytest.raises(ValueError, match="POS"):
        next(pos_tagger.pipe(["Angela Merkel visited Paris."]))


def test_load_without_a_path_uses_the_bundled_package(tagger: Tagger, tmp_path: Path, move_bundled) -> None:
    move_bundled("default", tmp_path / "missing")
    with pytest.raises(PackageError, match="no bundled"):
        Tagger.load()
    move_bundled("default", tagger.package.path)
    loaded = Tagger.load(device="cpu")
    assert loaded.package.path == tagger.package.path
    assert loaded("Angela Merkel visited Paris.").to_dict() == tagger("Angela Merkel visited Paris.").to_dict()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["O", "B-geo", "I-geo", "E-geo", "S-geo", "B-per", "I-per", "E-per", "S-per"]), max_size=14))
def test_chunk_ids_match_seqeval(tags: list[str]) -> None:
    """The Doc path's per-sentence chunker (`schemes.chunk_ids`) against seqeval."""
    scheme = TagScheme(["O", "B-geo", "I-geo", "E-geo", "S-geo", "B-per", "I-per", "E-per", "S-per"])
    found = chunk_ids([scheme.tags.index(t) for t in tags], scheme)
    assert sorted((scheme.types[k], a, b) for a, b, k in found) == sorted((k, s, e + 1) for k, s, e in get_entities(tags))


def test_the_text_module_imports_no_engine() -> None:
    """Tokenizing needs neither onnxruntime nor mxnet nor onnx (a fresh process)."""
    import subprocess
    import sys

    script = (
        "import sys; from ner_fast.text import segment; segment('Mr. Smith went.'); "
        "print(sorted(m for m in ('mxnet', 'onnx', 'onnxruntime', 'pandas') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_tokens_carry_the_pos_head_tags(tmp_path: Path) -> None:
    """A package with an auxiliary POS head (no POS input): each Token.pos is the head's tag for it."""
    make_checkpoint(tmp_path / "model", buckets=[4, 9], use_pos=False, pos_aux_weight=1.0)
    pos_tagger = Tagger.load(export_model(tmp_path / "model", tmp_path / "pkg", quantize=None), device="cpu")
    assert pos_tagger.pos_tags and not pos_tagger.uses_pos
    doc = pos_tagger(TEXTS[2])
    w, starts, ends, offsets = segment(TEXTS[2])
    sents = [w[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    _, expected = pos_tagger.tag_batch(sents, return_pos=True)
    assert len(doc.tokens) > 0
    assert [t.pos for t in doc.tokens] == [p for s in expected for p in s]
    assert all(t.pos in pos_tagger.pos_tags for t in doc.tokens)
    assert [t["pos"] for t in doc.to_dict()["tokens"]] == [t.pos for t in doc.tokens]
    assert [d.to_dict() for d in pos_tagger.pipe([TEXTS[2], TEXTS[0]], n_threads=2)] == [
        pos_tagger(TEXTS[2]).to_dict(), pos_tagger(TEXTS[0]).to_dict()]


@settings(max_examples=300)
@given(st.lists(st.text(alphabet=st.sampled_from(["a", " ", "\t", "\u00a0", "\u2028", "\x1c", "\x00", "\u200b", "\u2060",
                                                  "\ufeff", "\u00ad", "\u200d", "\U000e0041", "\u0301", "\u00e9"]),
                        max_size=3), max_size=6))
def test_blank_token_is_the_first_empty_whitespace_or_format_only_token(tokens: list[str]) -> None:
    # The rule the tagger, the server and the corpus readers share, against its plain statement: empty, or
    # every character whitespace (str.isspace) or a format character (category Cf: U+200B ZERO WIDTH SPACE,
    # U+2060, the BOM, ...). NUL (a control, Cc) and a combining accent (Mn) are neither.
    expected = next((i for i, t in enumerate(tokens) if all(c.isspace() or unicodedata.category(c) == "Cf" for c in t)), None)
    assert blank_token(tokens) == expected


def test_the_format_characters_are_unicode_category_cf() -> None:
    # The class the rule and the tokenizer share, against unicodedata over every code point: each Cf
    # character of this Python's Unicode is in it, and nothing else but code points a newer Unicode made
    # Cf (unassigned, Cn, here).
    import re

    from ner_fast.text import FORMAT_CHARACTERS

    listed = re.compile(f"[{FORMAT_CHARACTERS}]")
    every = [chr(c) for c in range(0x110000)]
    cf = {c for c in every if unicodedata.category(c) == "Cf"}
    matched = {c for c in every if listed.fullmatch(c)}
    assert cf and cf <= matched
    assert all(unicodedata.category(c) == "Cn" for c in matched - cf)


@pytest.mark.parametrize("text", ["Paris\u200b is", "Paris \u200b\u2060 is", "\ufeffParis is", "Paris \u200e is",
                                  "Paris\u200d is \u202a\u202c", "a \u00ad b \u00ad\u00ad", "x \u2062 y \U000e0001"])
def test_the_tokenizer_makes_no_blank_token_of_format_characters(text: str) -> None:
    # Raw text with invisible format characters (copied from the web: zero-width spaces, bidi marks, a
    # BOM) gives the tokens of the text without them: none of them alone, which the tagger refuses.
    words, starts, ends = tokenize(text)
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    assert words == visible.split() and blank_token(words) is None
    assert all(text[s:e] == w for w, s, e in zip(words, starts, ends))
    assert segment(text)[0] == words
    # One beside a letter stays in its word when it is part of one (the soft hyphen of a hyphenation point).
    assert tokenize("co\u00adoperate now")[0] == ["co\u00adoperate", "now"]


def test_blank_token_of_a_token_that_is_not_a_string_is_a_type_error() -> None:
    assert blank_token(["New York", "5\u00a0storm"]) is None
    with pytest.raises(TypeError):
        blank_token(["a", 3])  # type: ignore[list-item]
