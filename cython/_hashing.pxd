# The hashing that the vocabulary tables (`_kernels.pyx`) and the CSV reader (`_csv.pyx`) share: inline
# C functions, compiled into each module that cimports them.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t


ctypedef fused ucs_t:
    # The three storage kinds of str: the loops below are compiled once per kind, so the inner
    # loops index a plain array instead of switching on the kind for every character.
    uint8_t
    uint16_t
    uint32_t


cdef inline uint64_t _hash_of(const ucs_t* p, int64_t n) noexcept nogil:
    """FNV-1a over whole code points, with a final mix so the low bits (the slot) vary."""
    cdef uint64_t h = 14695981039346656037ULL
    cdef int64_t i
    for i in range(n):
        h ^= p[i]
        h *= 1099511628211ULL
    return h ^ (h >> 32)


cdef inline Py_ssize_t _table_size(Py_ssize_t n_entries):
    """Slots of an open-addressing table for `n_entries` (a power of two, at most half full)."""
    cdef Py_ssize_t size = 8
    while size < 2 * n_entries:
        size *= 2
    return size


cdef inline bint _same(int ka, const void* a, int64_t na, int kb, const void* b, int64_t nb) noexcept nogil:
    # CPython stores every str in its narrowest kind, so equal strings have equal kind and bytes.
    # An inline loop: tokens are short, and a call to memcmp costs more than comparing them.
    if ka != kb or na != nb:
        return False
    cdef const uint8_t* x = <const uint8_t*>a
    cdef const uint8_t* y = <const uint8_t*>b
    cdef int64_t i
    for i in range(na * ka):
        if x[i] != y[i]:
            return False
    return True
