# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, binding=True, embedsignature=True
"""Compiled hot loops of ner-fast's preprocessing (module `ner_fast._kernels`; stub `_kernels.pyi`).

- vocabulary hash tables and lookups (`build_table`, `lookup`, `count_unique`, `char_counts`);
- per-token features in one pass: word id, casing class, character ids (`token_features`);
- bucket tensors from the per-token feature matrix (`fill_bucket`).

The other kernels live beside the module that wraps them: the GMB CSV reader in `_csv.pyx`
(`ner_fast._csv`, read by `ner_fast.corpus`), decoding in `_decode.pyx` (`ner_fast._decode`, read by
`ner_fast.decode`), training's CRF loss and flush-to-zero in `_training.pyx`
(`ner_fast.training._kernels`, read by `training.crf_loss` and `training.train`).

Tokens are Python strings, read in place: `Tokens(seq)` pins a tuple of them and records each
one's data pointer, storage kind (1, 2 or 4 bytes per code point) and length, so the kernels loop
over code points without encoding or copying anything. Every kernel is a `def` wrapper that
checks its inputs and allocates the output, then runs a `noexcept nogil` loop over typed
memoryviews or raw pointers into them. Nothing here imports anything beyond NumPy, so the tagger
uses the same kernels at inference time.
"""
from cpython.unicode cimport PyUnicode_Check
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from _hashing cimport _hash_of, _same, _table_size, ucs_t

import numpy as np


cdef extern from "Python.h":
    # Unicode database predicates (behind str.isdigit/islower/isupper) and the in-place
    # accessors of str objects. They only read memory, so they are safe without the GIL
    # (Cython's own declarations lack `nogil`).
    bint Py_UNICODE_ISDIGIT(Py_UCS4 ch) nogil
    bint Py_UNICODE_ISLOWER(Py_UCS4 ch) nogil
    bint Py_UNICODE_ISUPPER(Py_UCS4 ch) nogil
    bint Py_UNICODE_ISTITLE(Py_UCS4 ch) nogil
    uint32_t PyUnicode_READ(int kind, const void* data, Py_ssize_t index) nogil
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)


# Casing classes (Chiu & Nichols 2016, with the numeric classes of Reimers & Gurevych's
# implementation). Id 0 is padding. The rules, in order, mirror Python's str predicates.
CASING_CLASSES = (
    "<pad>",
    "other",
    "numeric",
    "mainly_numeric",
    "all_lower",
    "all_upper",
    "initial_upper",
    "contains_digit",
)
cdef enum:
    PADDING = 0
    UNKNOWN = 1
    CASE_OTHER = 1
    CASE_NUMERIC = 2
    CASE_MAINLY_NUMERIC = 3
    CASE_ALL_LOWER = 4
    CASE_ALL_UPPER = 5
    CASE_INITIAL_UPPER = 6
    CASE_CONTAINS_DIGIT = 7


# --------------------------------------------------------------------------- tokens

cdef class Tokens:
    """A sequence of `str` pinned for the kernels: each one's data pointer, kind and length.

    Holding the tuple keeps every string alive (and the sequence unchangeable) while a kernel
    reads the strings' characters in place without the GIL.
    """

    cdef readonly tuple strings
    cdef const uint64_t[::1] data
    cdef const uint8_t[::1] kinds
    cdef const int64_t[::1] lengths

    def __cinit__(self, strings):
        self.strings = tuple(strings)
        cdef Py_ssize_t i, n = len(self.strings)
        data = np.empty(n, dtype=np.uint64)
        kinds = np.empty(n, dtype=np.uint8)
        lengths = np.empty(n, dtype=np.int64)
        cdef uint64_t[::1] dv = data
        cdef uint8_t[::1] kv = kinds
        cdef int64_t[::1] lv = lengths
        cdef object s
        for i in range(n):
            s = self.strings[i]
            if not PyUnicode_Check(s):
                raise TypeError(f"token {i} is a {type(s).__name__}, not a str")
            dv[i] = <uint64_t><size_t>PyUnicode_DATA(s)
            kv[i] = <uint8_t>PyUnicode_KIND(s)
            lv[i] = PyUnicode_GET_LENGTH(s)
        self.data, self.kinds, self.lengths = dv, kv, lv

    def __len__(self) -> int:
        return self.lengths.shape[0]


cdef inline const void* _data(const uint64_t[::1] data, Py_ssize_t i) noexcept nogil:
    return <const void*><size_t>data[i]


# --------------------------------------------------------------------------- hash table

cdef inline uint64_t _hash(int kind, const void* p, int64_t n) noexcept nogil:
    if kind == 1:
        return _hash_of(<const uint8_t*>p, n)
    if kind == 2:
        return _hash_of(<const uint16_t*>p, n)
    return _hash_of(<const uint32_t*>p, n)


cdef int64_t _insert_all(Tokens entries, int32_t[::1] table, int32_t[::1] ids, int64_t[::1] firsts) noexcept nogil:
    """Insert every entry; ids[e] = the number of the distinct string entry e equals.

    firsts[u] = index of the first entry with distinct number u. Returns the number of distinct strings.
    """
    cdef Py_ssize_t e, n = entries.lengths.shape[0]
    cdef uint64_t mask = <uint64_t>table.shape[0] - 1, slot
    cdef int32_t other
    cdef int64_t n_unique = 0, f
    cdef int kind
    cdef const void* p
    for e in range(n):
        kind = entries.kinds[e]
        p = _data(entries.data, e)
        slot = _hash(kind, p, entries.lengths[e]) & mask
        while True:
            other = table[slot]
            if other == 0:
                table[slot] = <int32_t>(n_unique + 1)
                firsts[n_unique] = e
                ids[e] = <int32_t>n_unique
                n_unique += 1
                break
            f = firsts[other - 1]
            if _same(entries.kinds[f], _data(entries.data, f), entries.lengths[f], kind, p, entries.lengths[e]):
                ids[e] = other - 1
                break
            slot = (slot + 1) & mask
    return n_unique


cdef tuple _hashed(Tokens tokens, str caller):
    """Run `_insert_all` over fresh arrays: (table, ids, firsts, number of distinct strings)."""
    cdef Py_ssize_t n = len(tokens)
    if n >= 2**31 - 1:
        raise ValueError(f"{caller}: too many strings")
    table = np.zeros(_table_size(n), dtype=np.int32)
    ids = np.empty(n, dtype=np.int32)
    firsts = np.empty(n, dtype=np.int64)
    cdef int32_t[::1] tv = table, iv = ids
    cdef int64_t[::1] fv = firsts
    cdef int64_t n_unique
    with nogil:
        n_unique = _insert_all(tokens, tv, iv, fv)
    return table, ids, firsts, n_unique


def build_table(Tokens entries):
    """Open-addressing hash table over distinct `entries` for `lookup`.

    Returns an `int32` array whose size is a power of two at least twice the number of entries;
    a slot holds `entry + 1` (the first of equal entries), or 0 when empty.
    """
    table, _, firsts, _ = _hashed(entries, "build_table")
    # Slots hold distinct numbers; map them back to entry indices (+1) for `lookup`.
    table[table > 0] = firsts[table[table > 0] - 1] + 1
    return table


def count_unique(Tokens tokens):
    """Distinct strings of `tokens` in first-seen order.

    Returns `(firsts, counts, ids)`: int64 index of each distinct string's first occurrence,
    int64 number of occurrences of each, and int32 distinct number of every token.
    """
    _, ids, firsts, n_unique = _hashed(tokens, "count_unique")
    return firsts[:n_unique].copy(), np.bincount(ids, minlength=n_unique).astype(np.int64), ids


cdef inline int32_t _find(
    const int32_t[::1] table, Tokens entries, int kind, const void* p, int64_t length
) noexcept nogil:
    """Index of the entry equal to the string (kind, p, length), or -1."""
    cdef uint64_t mask = <uint64_t>table.shape[0] - 1
    cdef uint64_t slot = _hash(kind, p, length) & mask
    cdef int32_t entry
    while True:
        entry = table[slot]
        if entry == 0:
            return -1
        entry -= 1
        if _same(entries.kinds[entry], _data(entries.data, entry), entries.lengths[entry], kind, p, length):
            return entry
        slot = (slot + 1) & mask


cdef void _lookup(
    const int32_t[::1] table, Tokens entries, Tokens tokens,
    int32_t first_id, int32_t unknown, int32_t[:] out,
) noexcept nogil:
    cdef Py_ssize_t t
    cdef int32_t entry
    for t in range(tokens.lengths.shape[0]):
        entry = _find(table, entries, tokens.kinds[t], _data(tokens.data, t), tokens.lengths[t])
        out[t] = first_id + entry if entry >= 0 else unknown


cdef _check_table(const int32_t[::1] table, Tokens entries):
    if table.shape[0] != _table_size(len(entries)):
        raise ValueError("the hash table does not belong to these entries (use build_table)")


cdef int32_t[:] _out_1d(out, Py_ssize_t n, str name) except *:
    cdef int32_t[:] o = out
    if o.shape[0] != n:
        raise ValueError(f"{name} has {o.shape[0]} rows, expected {n}")
    return o


def lookup(
    const int32_t[::1] table,
    Tokens entries,
    Tokens tokens,
    int first_id,
    int unknown,
    out=None,
):
    """Id of every token: `first_id + e` for the entry `e` it equals, else `unknown`.

    `table` comes from `build_table(entries)`. Returns `int32` of shape (n_tokens,), written into
    `out` (any 1-D int32 view, e.g. a matrix column) when given.
    """
    _check_table(table, entries)
    if out is None:
        out = np.empty(len(tokens), dtype=np.int32)
    cdef int32_t[:] o = _out_1d(out, len(tokens), "lookup: out")
    with nogil:
        _lookup(table, entries, tokens, first_id, unknown, o)
    return out


# --------------------------------------------------------------------------- per-token features

cdef int32_t _casing_of(const ucs_t* p, int64_t n) noexcept nogil:
    cdef int64_t i, digits = 0
    cdef bint lower_ok = True, has_lower = False, upper_ok = True, has_upper = False
    cdef bint lo, up, ti
    cdef Py_UCS4 ch
    if n == 0:
        return CASE_OTHER
    for i in range(n):
        ch = p[i]
        if ch < 128:  # ASCII without the Unicode database: most tokens, 3x faster
            digits += 48 <= ch <= 57
            lo = 97 <= ch <= 122
            up = 65 <= ch <= 90
            ti = False
        else:
            digits += Py_UNICODE_ISDIGIT(ch)
            lo = Py_UNICODE_ISLOWER(ch)
            up = Py_UNICODE_ISUPPER(ch)
            ti = Py_UNICODE_ISTITLE(ch)
        # str.islower: no upper- or titlecase character and at least one lowercase one;
        # str.isupper: no lower- or titlecase character and at least one uppercase one.
        if up or ti:
            lower_ok = False
        if lo or ti:
            upper_ok = False
        has_lower = has_lower or lo
        has_upper = has_upper or up
    if digits == n:
        return CASE_NUMERIC
    if 2 * digits > n:
        return CASE_MAINLY_NUMERIC
    if lower_ok and has_lower:
        return CASE_ALL_LOWER
    if upper_ok and has_upper:
        return CASE_ALL_UPPER
    ch = p[0]
    if Py_UNICODE_ISUPPER(ch) and not Py_UNICODE_ISLOWER(ch) and not Py_UNICODE_ISTITLE(ch):
        return CASE_INITIAL_UPPER
    if digits > 0:
        return CASE_CONTAINS_DIGIT
    return CASE_OTHER


cdef inline int32_t _casing_and_chars(
    const ucs_t* p, int64_t n, const int32_t[::1] char_table, int32_t* chars, Py_ssize_t stride, Py_ssize_t width,
) noexcept nogil:
    """Write the character ids of one token (cut/padded to `width`); return its casing class."""
    cdef Py_ssize_t c, table_size = char_table.shape[0]
    cdef int64_t shown = n if n < width else width
    cdef uint32_t cp
    for c in range(shown):
        cp = p[c]
        chars[c * stride] = char_table[cp] if cp < table_size else UNKNOWN
    for c in range(shown, width):
        chars[c * stride] = PADDING
    return _casing_of(p, n)


cdef void _token_features(
    Tokens tokens, Tokens word_tokens, const int32_t[::1] table, Tokens entries, int32_t first_id,
    const int32_t[::1] char_table, int32_t[:] word_out, int32_t[:] casing_out, int32_t[:, :] chars_out,
) noexcept nogil:
    # One pass per token while its characters are in cache: word id, casing class, char ids.
    cdef Py_ssize_t t, width = chars_out.shape[1], stride = chars_out.strides[1] // sizeof(int32_t)
    cdef int64_t length
    cdef int kind
    cdef int32_t entry
    cdef const void* p
    cdef int32_t* chars
    for t in range(tokens.lengths.shape[0]):
        entry = _find(table, entries, word_tokens.kinds[t], _data(word_tokens.data, t), word_tokens.lengths[t])
        word_out[t] = first_id + entry if entry >= 0 else UNKNOWN
        kind = tokens.kinds[t]
        p = _data(tokens.data, t)
        length = tokens.lengths[t]
        chars = &chars_out[t, 0] if width > 0 else NULL
        if kind == 1:
            casing_out[t] = _casing_and_chars(<const uint8_t*>p, length, char_table, chars, stride, width)
        elif kind == 2:
            casing_out[t] = _casing_and_chars(<const uint16_t*>p, length, char_table, chars, stride, width)
        else:
            casing_out[t] = _casing_and_chars(<const uint32_t*>p, length, char_table, chars, stride, width)


def token_features(
    Tokens tokens,
    Tokens word_tokens,
    const int32_t[::1] table,
    Tokens entries,
    int first_id,
    const int32_t[::1] char_table,
    word_out,
    casing_out,
    chars_out,
):
    """Word id, casing class and character ids of every token, written into the given views.

    `word_tokens` are the strings looked up as words (the tokens themselves, or lower-cased):
    the id is `first_id + e` for the entry `e` of `entries` (hash `table` from `build_table`) it
    equals, else UNKNOWN (1). The casing class indexes CASING_CLASSES. `char_table[cp]` is the id
    of code point `cp` (UNKNOWN beyond the table); characters are cut or padded with 0 to the
    width of `chars_out` (n, max_chars). The outputs may be strided views, e.g. matrix columns.
    """
    cdef Py_ssize_t n = len(tokens)
    if len(word_tokens) != n:
        raise ValueError(f"token_features: {len(word_tokens)} word tokens for {n} tokens")
    _check_table(table, entries)
    cdef int32_t[:] wo = _out_1d(word_out, n, "token_features: word_out")
    cdef int32_t[:] co = _out_1d(casing_out, n, "token_features: casing_out")
    cdef int32_t[:, :] ho = chars_out
    if ho.shape[0] != n:
        raise ValueError(f"token_features: chars_out has {ho.shape[0]} rows, expected {n}")
    with nogil:
        _token_features(tokens, word_tokens, table, entries, first_id, char_table, wo, co, ho)


cdef void _char_counts(Tokens tokens, int64_t[::1] counts) noexcept nogil:
    cdef Py_ssize_t t, c
    cdef int kind
    cdef const void* p
    for t in range(tokens.lengths.shape[0]):
        kind = tokens.kinds[t]
        p = _data(tokens.data, t)
        for c in range(tokens.lengths[t]):
            counts[PyUnicode_READ(kind, p, c)] += 1


def char_counts(Tokens tokens):
    """Occurrences of every code point over all tokens: `int64` (0x110000,)."""
    counts = np.zeros(0x110000, dtype=np.int64)
    cdef int64_t[::1] cv = counts
    with nogil:
        _char_counts(tokens, cv)
    return counts


# --------------------------------------------------------------------------- buckets

cdef bint _offsets_ok(const int64_t[::1] offsets, Py_ssize_t n_tokens) noexcept nogil:
    cdef Py_ssize_t i, n = offsets.shape[0]
    if n == 0 or offsets[0] < 0 or offsets[n - 1] > n_tokens:
        return False
    for i in range(1, n):
        if offsets[i] < offsets[i - 1]:
            return False
    return True


cdef void _fill_bucket(
    const int32_t[:, ::1] tokens, const int32_t[::1] tag_ids, bint has_tags,
    const int64_t[::1] offsets, const int64_t[::1] sentences,
    int32_t[:, :, ::1] features, int32_t[:, ::1] tags, int32_t[::1] lengths,
) noexcept nogil:
    cdef Py_ssize_t i, f, t, s
    cdef Py_ssize_t n_features = tokens.shape[1], bucket_len = features.shape[2]
    cdef int64_t start, length
    cdef const int32_t* src
    cdef int32_t* dst
    for i in range(sentences.shape[0]):
        s = sentences[i]
        start = offsets[s]
        length = offsets[s + 1] - start
        if length > bucket_len:
            length = bucket_len
        lengths[i] = <int32_t>length
        if length == 0:
            continue
        # A small transpose, (length, F) token rows -> (F, bucket_len) block, on raw pointers:
        # writes run along contiguous rows, and the few token rows read stay in cache.
        src = &tokens[start, 0]
        dst = &features[i, 0, 0]
        for f in range(n_features):
            for t in range(length):
                dst[f * bucket_len + t] = src[t * n_features + f]
        if has_tags:
            for t in range(length):
                tags[i, t] = tag_ids[start + t]


def fill_bucket(
    const int32_t[:, ::1] tokens,
    tag_ids,
    const int64_t[::1] offsets,
    const int64_t[::1] sentences,
    int bucket_len,
):
    """Lay out the sentences `sentences` (indices into `offsets`) as one bucket of length L.

    `tokens` is the (n_tokens, F) per-token feature matrix, `tag_ids` an int32 (n_tokens,) array
    or None. Returns `(features, tags, lengths)`: int32 (n, F, L) with 0 on padding, int32 (n, L)
    with -1 on padding (None without tag_ids), int32 (n,) true lengths after cutting to L.
    """
    if bucket_len < 0:
        raise ValueError("fill_bucket: bucket_len must be >= 0")
    cdef Py_ssize_t n_sent = offsets.shape[0] - 1, i
    if not _offsets_ok(offsets, tokens.shape[0]):
        raise ValueError("fill_bucket: offsets must start at >= 0, never decrease and end within the tokens")
    for i in range(sentences.shape[0]):
        if sentences[i] < 0 or sentences[i] >= n_sent:
            raise ValueError(f"fill_bucket: sentence index {sentences[i]} out of range [0, {n_sent})")
    cdef const int32_t[::1] tids
    cdef bint has_tags = tag_ids is not None
    if has_tags:
        tids = tag_ids
        if tids.shape[0] != tokens.shape[0]:
            raise ValueError(f"fill_bucket: {tids.shape[0]} tag ids for {tokens.shape[0]} tokens")
    else:
        tids = np.zeros(0, dtype=np.int32)
    cdef Py_ssize_t n = sentences.shape[0]
    features = np.zeros((n, tokens.shape[1], bucket_len), dtype=np.int32)
    tags = np.full((n, bucket_len), -1, dtype=np.int32)
    lengths = np.empty(n, dtype=np.int32)
    cdef int32_t[:, :, ::1] fv = features
    cdef int32_t[:, ::1] tv = tags
    cdef int32_t[::1] lv = lengths
    with nogil:
        _fill_bucket(tokens, tids, has_tags, offsets, sentences, fv, tv, lv)
    return features, (tags if has_tags else None), lengths
