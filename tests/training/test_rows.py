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
