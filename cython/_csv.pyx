# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, binding=True, embedsignature=True
"""The GMB CSV rows, split and numbered in one pass over the bytes (`parse_csv`; module `ner_fast._csv`,
wrapped by `ner_fast.corpus`; stub `_csv.pyi`). Imports NumPy only."""
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memchr

import numpy as np

from _hashing cimport _hash_of, _same, _table_size


cdef int64_t _count_rows(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef const unsigned char* end = p + n
    cdef int64_t rows = 1
    while True:
        p = <const unsigned char*>memchr(p, 10, end - p)
        if p == NULL:
            return rows
        rows += 1
        p += 1


cdef inline int32_t _category(
    const unsigned char* base, int64_t start, int64_t stop, int32_t* table, uint64_t mask, int64_t* firsts,
    int64_t* n_unique,
) noexcept nogil:
    """Distinct number of the bytes base[start:stop] among those seen so far (inserting them if new).

    `table` is an open-addressing table of `mask + 1` slots; `firsts` holds (start, stop) pairs.
    """
    cdef uint64_t slot = _hash_of(base + start, stop - start) & mask
    cdef int32_t other
    cdef int64_t f
    while True:
        other = table[slot]
        if other == 0:
            f = n_unique[0]
            table[slot] = <int32_t>(f + 1)
            firsts[2 * f] = start
            firsts[2 * f + 1] = stop
            n_unique[0] = f + 1
            return <int32_t>f
        f = other - 1
        if _same(1, base + firsts[2 * f], firsts[2 * f + 1] - firsts[2 * f], 1, base + start, stop - start):
            return <int32_t>f
        slot = (slot + 1) & mask


cdef int64_t _parse_csv(
    const unsigned char* base, Py_ssize_t n, int ncols, const int32_t[::1] cat_cols, int32_t[:, ::1] cat_ids, int32_t[:, ::1] tables, int64_t[:, :, ::1] cat_firsts,
    int64_t[::1] n_unique, int64_t* bad_fields,
) noexcept nogil:
    """Parse the rows; returns the number parsed (all of them, or the index of the first bad row)."""
    cdef Py_ssize_t row = 0, k, n_cats = cat_cols.shape[0]
    cdef uint64_t mask = <uint64_t>tables.shape[1] - 1
    cdef int64_t start = 0, stop, next_start, i, field_start
    cdef const unsigned char* nl
    cdef int col
    while True:
        nl = <const unsigned char*>memchr(base + start, 10, n - start)
        stop = (nl - base) if nl != NULL else n
        next_start = stop + 1
        if nl != NULL and stop > start and base[stop - 1] == 13:  # a '\r' before the '\n' is not data
            stop -= 1
        col = 0
        i = start
        while True:  # one field per turn, base[field_start:i], quotes included
            field_start = i
            if i < stop and base[i] == 34:  # quoted: up to the closing quote; "" stands for "
                i += 1
                while i < stop and not (base[i] == 34 and (i + 1 >= stop or base[i + 1] != 34)):
                    i += 2 if base[i] == 34 else 1
                if i >= stop or (i + 1 < stop and base[i + 1] != 44):
                    bad_fields[0] = -1  # unclosed on this line, or text after the closing quote
                    return row
                i += 1
            else:
                while i < stop and base[i] != 44:
                    i += 1
            for k in range(n_cats):
                if cat_cols[k] == col:
                    cat_ids[k, row] = _category(base, field_start, i, &tables[k, 0], mask,
                                                &cat_firsts[k, 0, 0], &n_unique[k])
            col += 1
            if i >= stop:
                break
            i += 1  # the comma
        if col != ncols:
            bad_fields[0] = col
            return row
        row += 1
        if nl == NULL:
            break
        start = next_start
    return row


def parse_csv(const unsigned char[::1] data, int ncols, cat_cols):
    """Parse CSV rows (split at '\\n'; a '\\r' before it is dropped) in one pass.

    Fields are separated by ',' and may be quoted ('"', with '""' for a quote inside); a quoted
    field may not span lines. For every row and each column of `cat_cols`, the distinct number of
    its raw bytes (quotes included), so values decode once per distinct value, not once per row.

    Returns `(cat_ids, cat_bounds, bad)`: int32 (len(cat_cols), n_rows);
    per column of `cat_cols`, int64 (distinct, 2) byte bounds of each distinct raw value's first
    occurrence; and `None`, or `(row, n_fields)` for the first row without `ncols` fields, with
    n_fields = -1 for bad quoting (parsing stops there).
    """
    cdef const int32_t[::1] cats = np.asarray(cat_cols, dtype=np.int32)
    cdef Py_ssize_t n = data.shape[0], k, n_cats = cats.shape[0]
    for k in range(n_cats):
        if not 0 <= cats[k] < ncols:
            raise ValueError("parse_csv: cat_cols must be column indices")
    cdef const unsigned char* base = &data[0] if n > 0 else <const unsigned char*>b""
    cdef int64_t n_rows
    with nogil:
        n_rows = _count_rows(base, n)
    cat_ids = np.empty((n_cats, n_rows), dtype=np.int32)
    tables = np.zeros((n_cats, _table_size(n_rows + 1)), dtype=np.int32)
    cat_firsts = np.empty((n_cats, n_rows + 1, 2), dtype=np.int64)
    n_unique = np.zeros(n_cats, dtype=np.int64)
    cdef int32_t[:, ::1] iv = cat_ids, tab = tables
    cdef int64_t[:, :, ::1] firsts = cat_firsts
    cdef int64_t[::1] uv = n_unique
    cdef int64_t bad_fields = 0, parsed
    with nogil:
        parsed = _parse_csv(base, n, ncols, cats, iv, tab, firsts, uv, &bad_fields)
    bad = (int(parsed), int(bad_fields)) if parsed < n_rows else None
    cat_bounds = [cat_firsts[k, : n_unique[k]].copy() for k in range(n_cats)]
    return cat_ids, cat_bounds, bad
