import numpy as np
import pytest

from ner_fast.training.rows import rows_by_word


def test_known_words_take_the_source_rows_and_the_rest_stay_fresh():
    words = ["<pad>", "<unk>", "paris", "zorblat", "london"]
    known = {"london": 0, "paris": 2, "berlin": 1}
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    fresh = np.full((5, 4), -1.0, dtype=np.float32)
    out, n = rows_by_word(words, known, vectors, fresh)
    assert n == 2
    # Plain reference: row by row.
    for i, w in enumerate(words):
        expected = vectors[known[w]] if w in known else fresh[i]
        np.testing.assert_array_equal(out[i], expected)
    assert (fresh == -1).all()  # the input is not changed


def test_widths_and_rows_must_match():
    with pytest.raises(ValueError, match="width"):
        rows_by_word(["a"], {"a": 0}, np.zeros((1, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="rows"):
        rows_by_word(["a", "b"], {"a": 0}, np.zeros((1, 4)), np.zeros((1, 4)))


def test_narrower_vectors_fill_the_first_columns_and_zero_the_rest():
    """`wider`: vectors inside a wider embedding (`--vectors` with a larger --word-dim)."""
    words = ["<pad>", "<unk>", "paris", "zorblat", "london"]
    known = {"london": 0, "paris": 2, "berlin": 1}
    vectors = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
    fresh = np.full((5, 5), -1.0, dtype=np.float32)
    out, n = rows_by_word(words, known, vectors, fresh, wider=True)
    assert n == 2 and out.shape == (5, 5)
    for i, w in enumerate(words):
        expected = list(vectors[known[w]]) + [0.0, 0.0] if w in known else [-1.0] * 5
        assert out[i].tolist() == expected
    # The same width: as without `wider`; vectors wider than the embedding never fit.
    same, _ = rows_by_word(words, known, np.ones((3, 5), dtype=np.float32), fresh, wider=True)
    assert same[4].tolist() == [1.0] * 5 and same[3].tolist() == [-1.0] * 5
    with pytest.raises(ValueError, match="width 6, the embedding 5"):
        rows_by_word(words, known, np.zeros((3, 6)), fresh, wider=True)
