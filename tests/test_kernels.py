"""The compiled kernels against plain Python/NumPy references (hypothesis property tests)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner_fast import _csv, _decode, _kernels
from ner_fast.buckets import IGNORE_LABEL, assign_buckets, build_buckets, default_buckets, long_bucket_limit, training_buckets
from ner_fast.features import CASING_CLASSES

# Characters from every storage kind of str: ASCII, latin-1, other BMP (incl. titlecase and
# digits of other scripts) and astral plane.
CHARS = st.one_of(
    st.sampled_from("aZz09._-'\xa0éÉß\u01c5\u0130\u0660\u2019\U0001d7d8\U0001f600"),
    st.characters(blacklist_categories=("Cs",)),
)
TOKEN = st.text(alphabet=CHARS, max_size=25)


def reference_casing(word: str) -> str:
    """Chiu & Nichols casing with Reimers & Gurevych's numeric classes, on Python's str predicates."""
    if not word:
        return "other"
    digits = sum(ch.isdigit() for ch in word)
    if word.isdigit():
        return "numeric"
    if digits / len(word) > 0.5:
        return "mainly_numeric"
    if word.islower():
        return "all_lower"
    if word.isupper():
        return "all_upper"
    if word[0].isupper():
        return "initial_upper"
    if digits:
        return "contains_digit"
    return "other"


def token_features(tokens, word_tokens, entries, first_id, char_table, max_chars):
    """Run the fused kernel into fresh arrays; returns (word ids, casing ids, char ids)."""
    pinned = _kernels.Tokens(entries)
    words = np.full(len(tokens), -5, dtype=np.int32)
    casing = np.full(len(tokens), -5, dtype=np.int32)
    chars = np.full((len(tokens), max_chars), -5, dtype=np.int32)
    _kernels.token_features(
        _kernels.Tokens(tokens), _kernels.Tokens(word_tokens), _kernels.build_table(pinned), pinned,
        first_id, char_table, words, casing, chars,
    )
    return words, casing, chars


@given(st.lists(TOKEN, max_size=40))
def test_casing_matches_python_predicates(words: list[str]) -> None:
    _, ids, _ = token_features(words, words, [], 2, np.zeros(0, np.int32), 0)
    assert [CASING_CLASSES[i] for i in ids] == [reference_casing(w) for w in words]


def test_casing_examples() -> None:
    words = ["London", "the", "USA", "1996", "12.5%", "A4", "iPhone", "...", "\u01c5ungla", "\u0660\u0661x", ""]
    _, ids, _ = token_features(words, words, [], 2, np.zeros(0, np.int32), 0)
    assert [CASING_CLASSES[i] for i in ids] == [
        "initial_upper", "all_lower", "all_upper", "numeric", "mainly_numeric", "all_upper",
        "other", "other", "other", "mainly_numeric", "other",
    ]


@given(
    st.lists(TOKEN, max_size=40),
    st.integers(0, 12),
    st.dictionaries(CHARS, st.integers(2, 500), max_size=20),
    st.lists(TOKEN, unique=True, max_size=20),
    st.booleans(),
)
def test_token_features_match_references(tokens, max_chars, known, entries, lower) -> None:
    size = max((ord(c) for c in known), default=-1) + 1
    table = np.full(size, 1, dtype=np.int32)
    for ch, i in known.items():
        table[ord(ch)] = i
    word_tokens = [t.lower() for t in tokens] if lower else tokens
    words, casing, chars = token_features(tokens, word_tokens, entries, 2, table, max_chars)
    stoi = {s: 2 + i for i, s in enumerate(entries)}
    assert words.tolist() == [stoi.get(t, 1) for t in word_tokens]
    assert [CASING_CLASSES[i] for i in casing] == [reference_casing(w) for w in tokens]
    expected = [[known.get(ch, 1) for ch in t[:max_chars]] + [0] * (max_chars - len(t[:max_chars])) for t in tokens]
    assert chars.tolist() == expected


def test_token_features_writes_into_matrix_columns() -> None:
    matrix = np.full((3, 5), 9, dtype=np.int32)
    entries = _kernels.Tokens(["ab", "c"])
    tokens = _kernels.Tokens(["c", "ab", "zz"])
    table = np.array([1] * 99 + [7, 8], dtype=np.int32)  # 'c' (99) -> 7
    _kernels.token_features(tokens, tokens, _kernels.build_table(entries), entries, 2, table,
                            matrix[:, 0], matrix[:, 1], matrix[:, 3:])
    assert matrix.tolist() == [[3, 4, 9, 7, 0], [2, 4, 9, 1, 1], [1, 4, 9, 1, 1]]
    with pytest.raises(ValueError, match="2 word tokens for 3 tokens"):
        _kernels.token_features(tokens, entries, _kernels.build_table(entries), entries, 2, table,
                                matrix[:, 0], matrix[:, 1], matrix[:, 3:])
    with pytest.raises(ValueError, match="chars_out has 2 rows"):
        _kernels.token_features(tokens, tokens, _kernels.build_table(entries), entries, 2, table,
                                matrix[:, 0], matrix[:, 1], matrix[:2, 3:])


@given(st.lists(TOKEN, unique=True, max_size=30), st.lists(TOKEN, max_size=40), st.integers(0, 5), st.data())
def test_lookup_matches_a_dict(entries: list[str], others: list[str], first_id: int, data: st.DataObject) -> None:
    tokens = data.draw(st.lists(st.sampled_from(entries), max_size=40)) + others if entries else others
    tokens = data.draw(st.permutations(tokens))
    pinned = _kernels.Tokens(entries)
    ids = _kernels.lookup(_kernels.build_table(pinned), pinned, _kernels.Tokens(tokens), first_id, -7)
    stoi = {s: first_id + i for i, s in enumerate(entries)}
    assert ids.tolist() == [stoi.get(t, -7) for t in tokens]


def test_lookup_keeps_the_first_of_duplicate_entries_and_writes_into_views() -> None:
    entries = _kernels.Tokens(["a", "b", "a"])
    table = _kernels.build_table(entries)
    matrix = np.zeros((3, 4), dtype=np.int32)
    _kernels.lookup(table, entries, _kernels.Tokens(["a", "b", "c"]), 2, 1, out=matrix[:, 1])
    assert matrix[:, 1].tolist() == [2, 3, 1]
    assert not matrix[:, [0, 2, 3]].any()


def test_lookup_rejects_mismatched_inputs() -> None:
    entries = _kernels.Tokens([str(i) for i in range(10)])
    with pytest.raises(ValueError, match="hash table"):
        _kernels.lookup(np.zeros(8, dtype=np.int32), entries, entries, 0, -1)
    with pytest.raises(ValueError, match="out has 3 rows"):
        _kernels.lookup(_kernels.build_table(entries), entries, entries, 0, -1, out=np.zeros(3, dtype=np.int32))
    with pytest.raises(TypeError, match="token 1 is a int"):
        _kernels.Tokens(["a", 1])


@given(st.lists(TOKEN, max_size=60))
def test_count_unique_matches_first_seen_counting(tokens: list[str]) -> None:
    firsts, counts, ids = _kernels.count_unique(_kernels.Tokens(tokens))
    order: dict[str, int] = {}
    for t in tokens:
        order.setdefault(t, len(order))
    assert [tokens[i] for i in firsts] == list(order)
    assert counts.tolist() == [tokens.count(t) for t in order]
    assert ids.tolist() == [order[t] for t in tokens]


@given(st.lists(TOKEN, max_size=40))
def test_char_counts(tokens: list[str]) -> None:
    counts = _kernels.char_counts(_kernels.Tokens(tokens))
    text = "".join(tokens)
    assert {chr(c): int(counts[c]) for c in np.flatnonzero(counts)} == {ch: text.count(ch) for ch in set(text)}


def reference_buckets(lengths, bucket_lengths, cut):
    """Per-sentence bucket length by the documented rule (plain Python)."""
    out = []
    for n in lengths:
        fits = [b for b in sorted(bucket_lengths) if b >= n]
        out.append(fits[0] if fits else (max(bucket_lengths) if cut else n))
    return out


@given(
    st.lists(st.integers(0, 30), max_size=25),
    st.lists(st.integers(1, 20), min_size=1, max_size=5),
    st.booleans(),
    st.booleans(),
    st.integers(1, 6),
)
def test_build_buckets_matches_np_full_reference(lengths, bucket_lengths, cut, with_tags, n_features) -> None:
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
    n_tokens = int(offsets[-1])
    rng = np.random.default_rng(len(lengths) + n_tokens)
    matrix = rng.integers(1, 1000, size=(n_tokens, n_features), dtype=np.int32)
    tags = rng.integers(0, 9, size=n_tokens, dtype=np.int32) if with_tags else None
    buckets, n_cut = build_buckets(matrix, offsets, tags, bucket_lengths, cut=cut)

    targets = reference_buckets(lengths, bucket_lengths, cut)
    assert n_cut == (sum(n > max(bucket_lengths) for n in lengths) if cut else 0)
    assert [b.length for b in buckets] == sorted(set(targets))
    seen = []
    for bucket in buckets:
        assert bucket.features.shape == (len(bucket), n_features, bucket.length)
        assert bucket.features.flags.c_contiguous and bucket.features.dtype == np.int32
        assert bucket.indices.tolist() == [i for i, t in enumerate(targets) if t == bucket.length]
        for row, i in enumerate(bucket.indices.tolist()):
            n = min(lengths[i], bucket.length)
            expected = np.full((n_features, bucket.length), 0, dtype=np.int32)
            expected[:, :n] = matrix[offsets[i] : offsets[i] + n].T
            assert np.array_equal(bucket.features[row], expected)
            assert bucket.lengths[row] == n
            if with_tags:
                label = np.full(bucket.length, IGNORE_LABEL, dtype=np.int32)
                label[:n] = tags[offsets[i] : offsets[i] + n]
                assert np.array_equal(bucket.tags[row], label)
            else:
                assert bucket.tags is None
        seen += bucket.indices.tolist()
    assert sorted(seen) == list(range(len(lengths)))


def test_fill_bucket_validates_inputs() -> None:
    matrix = np.ones((3, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="out of range"):
        _kernels.fill_bucket(matrix, None, np.array([0, 3], dtype=np.int64), np.array([1], dtype=np.int64), 4)
    with pytest.raises(ValueError, match="offsets"):
        _kernels.fill_bucket(matrix, None, np.array([0, 5], dtype=np.int64), np.array([0], dtype=np.int64), 4)
    with pytest.raises(ValueError, match="2 tag ids for 3 tokens"):
        _kernels.fill_bucket(matrix, np.zeros(2, np.int32), np.array([0, 3], np.int64), np.array([0], np.int64), 4)


def test_default_and_assigned_buckets() -> None:
    lengths = [3] * 5 + [4] * 2 + [7] * 5 + [9]
    assert default_buckets(lengths, batch_size=5) == [3, 7]
    assert default_buckets([2, 6], batch_size=5) == [6]  # nothing frequent: one bucket, nothing cut
    assert assign_buckets(np.array([0, 3, 4, 7, 8]), [3, 7]).tolist() == [0, 0, 1, 1, 2]


@given(st.lists(st.integers(1, 60), min_size=1, max_size=300), st.integers(1, 20), st.booleans())
def test_keep_long_buckets_cut_nothing_and_hold_a_batch_each(lengths, batch_size, by_hand) -> None:
    """`--keep-long`: the buckets without it (the tutorial's, or given by hand) and more, none cut (up to
    `long_bucket_limit`), every added bucket but the longest holding at least one full batch of the
    sentences assigned to it."""
    given = sorted(set(lengths))[: len(set(lengths)) // 2] if by_hand else None
    cut = training_buckets(lengths, batch_size, keep_long=False, given=given)
    kept = training_buckets(lengths, batch_size, keep_long=True, given=given)
    frequent = [n for n in range(1, 61) if lengths.count(n) >= batch_size]
    base = given or frequent
    assert cut == (given or frequent or [max(lengths)])  # without: the tutorial's rule (or the given)
    assert set(base) <= set(kept) and kept == sorted(set(kept))
    limit = long_bucket_limit(batch_size)
    assert max(kept) == max(base + [min(max(lengths), max(limit, *cut))])
    added = [b for b in kept if b not in base]
    members = np.bincount(assign_buckets(np.minimum(lengths, limit), kept), minlength=len(kept))
    counts = [int(members[kept.index(b)]) for b in added]
    assert all(c >= batch_size for c in counts[:-1]) and all(c > 0 for c in counts)
    n_long = sum(1 for n in lengths if n > max(base, default=0))
    assert (len(added) == 0) if not n_long else (1 <= len(added) <= n_long // batch_size + 1)


def test_keep_long_never_adds_a_bucket_under_the_largest_nor_stretches_a_full_one() -> None:
    # Where the tutorial's largest bucket is past `long_bucket_limit`, longer sentences are cut to it
    # (as without --keep-long), not given a shorter bucket.
    batch_size = 16
    limit = long_bucket_limit(batch_size)
    lengths = [limit + 10] * batch_size + [limit + 400] * 3
    assert training_buckets(lengths, batch_size, keep_long=True) == [limit + 10]
    # One outlier (a file missing a blank line) gets a bucket of its own: 40 sentences of 30 tokens
    # padded to it was what joining it to the last full bucket did.
    lengths = list(range(1, 11)) * 20 + [30] * 40 + [8000]
    assert training_buckets(lengths, batch_size, keep_long=True) == [*range(1, 11), 30, limit]
    # A tiny corpus, no length frequent: buckets of batch_size sentences, not one at its longest sentence,
    # and nothing cut, as the tutorial's one bucket at the longest sentence cuts nothing.
    assert training_buckets([5] * 10 + [3000], 50, keep_long=True) == [3000] == default_buckets([5] * 10 + [3000], 50)
    assert training_buckets([5] * 60 + [3000], 50, keep_long=True) == [5, 163]
    # The bound cut 1,270 of wikigold's 1,356 training sentences to 8 tokens at --batch-size 1000, which the
    # tutorial's rule keeps whole: --keep-long never cuts more than without it.
    lengths = list(range(1, 145)) * 9
    for batch_size in (200, 1000):
        assert long_bucket_limit(batch_size) < 144
        kept = training_buckets(lengths, batch_size, keep_long=True)
        assert max(kept) == 144 == max(training_buckets(lengths, batch_size, keep_long=False))
        assert len(kept) == -(-len(lengths) // batch_size)  # still buckets of batch_size sentences


FIELD = st.text(alphabet=st.sampled_from('ab ,"\xe9'), max_size=6)


@given(st.lists(st.tuples(FIELD, FIELD, FIELD), min_size=1, max_size=20), st.sampled_from(["\r\n", "\n"]))
def test_parse_csv_matches_the_csv_module(rows, line_end) -> None:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator=line_end).writerows(rows)
    data = out.getvalue().encode("utf-8").rstrip(b"\r\n")
    cat_ids, cat_bounds, bad = _csv.parse_csv(data, 3, [2, 0, 1])
    assert bad is None
    lines = [line.decode("utf-8") for line in data.split(b"\n")]
    expected = [next(csv.reader([line.removesuffix("\r")], strict=True)) for line in lines]

    def unquote(raw: bytes) -> str:
        text = raw.decode("utf-8")
        return text[1:-1].replace('""', '"') if text.startswith('"') else text

    for k, col in enumerate([2, 0, 1]):
        distinct = [data[a:b] for a, b in cat_bounds[k].tolist()]
        assert len(set(distinct)) == len(distinct)
        assert [unquote(distinct[i]) for i in cat_ids[k]] == [fields[col] for fields in expected]


@pytest.mark.parametrize(
    ("data", "bad"),
    [
        (b"a,b\r\nc\r\nd,e,f", (1, 1)),
        (b'a,b\n"c,d",e,f', (1, 3)),
        (b'a,"b""c"\n"x"y,z', (1, -1)),  # text after a closing quote
        (b'a,"b\nc",d', (0, -1)),  # a quoted field may not span lines
        (b'"a,b",""', None),
    ],
)
def test_parse_csv_reports_the_first_bad_row(data: bytes, bad) -> None:
    assert _csv.parse_csv(data, 2, [1])[-1] == bad


def test_parse_csv_validates_columns() -> None:
    ids, bounds, bad = _csv.parse_csv(b"", 1, [0])  # one empty row
    assert ids.tolist() == [[0]] and bad is None
    with pytest.raises(ValueError, match="cat_cols"):
        _csv.parse_csv(b"a,b", 2, [5])


def reference_viterbi(scores: np.ndarray, lengths: np.ndarray, trans: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Plain NumPy Viterbi over the batch at once (first best predecessor on ties, as argmax)."""
    batch, seq_len, n_tags = scores.shape
    out = np.full((batch, seq_len), -1, dtype=np.int64)
    if seq_len == 0 or batch == 0:
        return out
    score = scores[:, 0] + start
    back = np.zeros((batch, seq_len, n_tags), dtype=np.int64)
    for t in range(1, seq_len):
        cand = score[:, :, None] + trans[None]
        best_prev = cand.argmax(axis=1)
        stepped = np.take_along_axis(cand, best_prev[:, None, :], axis=1)[:, 0] + scores[:, t]
        score = np.where((t < lengths)[:, None], stepped, score)
        back[:, t] = best_prev
    tag = (score + end).argmax(axis=1)
    for b in range(batch):
        k = int(tag[b])
        for t in range(int(lengths[b]) - 1, -1, -1):
            out[b, t] = k
            k = int(back[b, t, k])
    return out


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(0, 9), st.booleans(), st.booleans())
def test_viterbi_path_matches_numpy_reference(seed: int, n_tags: int, seq_len: int, forbid: bool, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    batch = 4

    def draw(*shape: int) -> np.ndarray:
        # Small integers make exact ties, which both must break the same way (first best).
        return rng.integers(-2, 3, shape).astype(np.float64) if ties else rng.normal(0, 2, shape)

    scores, trans, start, end = draw(batch, seq_len, n_tags), draw(n_tags, n_tags), draw(n_tags), draw(n_tags)
    if forbid:  # -inf entries, as the IOB2 rules give, never on every predecessor at once
        trans[rng.random(trans.shape) < 0.3] = -np.inf
        trans[0, :] = 0.0
        start[1:][rng.random(n_tags - 1) < 0.3] = -np.inf
    lengths = rng.integers(0, seq_len + 1, batch)
    got = _decode.viterbi_path(scores, lengths, trans, start, end)
    np.testing.assert_array_equal(got, reference_viterbi(scores, lengths, trans, start, end))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(0, 9), st.booleans())
def test_viterbi_path_reads_float32_probabilities_in_place(seed: int, n_tags: int, seq_len: int, zeros: bool) -> None:
    # The tagger's path: onnxruntime's float32 probabilities, their log taken inside the kernel, must
    # give the path of the float64 log-probabilities `decode` used to compute first (floor 1e-30).
    rng = np.random.default_rng(seed)
    batch = 4
    proba = rng.dirichlet(np.full(n_tags, 0.5), size=(batch, seq_len)).astype(np.float32)
    if zeros:  # underflowed probabilities: the floor, never log(0)
        proba[rng.random(proba.shape) < 0.2] = 0.0
    trans, start, end = rng.normal(0, 1, (n_tags, n_tags)), rng.normal(0, 1, n_tags), rng.normal(0, 1, n_tags)
    trans[rng.random(trans.shape) < 0.3] = -np.inf
    trans[0, :] = 0.0
    lengths = rng.integers(0, seq_len + 1, batch)
    logp = np.log(np.maximum(proba.astype(np.float64), 1e-30))
    expected = reference_viterbi(logp, lengths, trans, start, end)
    np.testing.assert_array_equal(_decode.viterbi_path(proba, lengths, trans, start, end, from_proba=True), expected)
    np.testing.assert_array_equal(
        _decode.viterbi_path(proba.astype(np.float64), lengths, trans, start, end, from_proba=True), expected
    )


def test_viterbi_path_validates_inputs() -> None:
    scores = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="transition tables"):
        _decode.viterbi_path(scores, np.array([3, 1]), np.zeros((3, 3)), np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="lengths"):
        _decode.viterbi_path(scores, np.array([3]), np.zeros((4, 4)), np.zeros(4), np.zeros(4))
    # Lengths over the padded length are cut to it.
    assert (_decode.viterbi_path(scores, np.array([9, 0]), np.zeros((4, 4)), np.zeros(4), np.zeros(4))[0] >= 0).all()
