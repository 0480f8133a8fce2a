# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, binding=True, embedsignature=True
"""The best tag path of each sentence, for BIO-constrained and CRF decoding (module `ner_fast._decode`,
wrapped by `ner_fast.decode`; stub `_decode.pyi`): a `def` wrapper that checks its inputs and
allocates the output around a `noexcept nogil` loop over typed memoryviews. Imports NumPy only:
the tagger decodes with it at inference time."""
from libc.stdint cimport int32_t, int64_t
from libc.math cimport log

import numpy as np


ctypedef fused real_t:
    float
    double


#: The smallest probability taken as it is: below it, log(PROBA_FLOOR), so 0 is not -inf. Its one home:
#: `decode.PROBA_FLOOR` (NumPy decoding and distillation) is this value.
PROBA_FLOOR = 1e-30
cdef double _FLOOR = PROBA_FLOOR


cdef inline double _emission(real_t value, bint from_proba) noexcept nogil:
    # A probability's log as `decode.log_proba` takes it (float64, floored at PROBA_FLOOR).
    cdef double v = <double>value
    if from_proba:
        return log(v if v > _FLOOR else _FLOOR)
    return v


cdef void _viterbi(
    const real_t[:, :, ::1] scores,
    const int64_t[::1] lengths,
    const double[:, ::1] trans,
    const double[::1] start,
    const double[::1] end,
    bint from_proba,
    double[::1] cur,
    double[::1] nxt,
    int32_t[:, ::1] back,
    int64_t[:, ::1] out,
) noexcept nogil:
    cdef Py_ssize_t b, t, i, j, n, k, arg, n_tags = trans.shape[0]
    cdef double best, v
    for b in range(scores.shape[0]):
        n = min(lengths[b], scores.shape[1])
        if n <= 0:
            continue
        for j in range(n_tags):
            cur[j] = _emission(scores[b, 0, j], from_proba) + start[j]
        for t in range(1, n):
            for j in range(n_tags):
                # The first best predecessor, as NumPy's argmax; the sums in NumPy's order.
                best = cur[0] + trans[0, j]
                arg = 0
                for i in range(1, n_tags):
                    v = cur[i] + trans[i, j]
                    if v > best:
                        best = v
                        arg = i
                nxt[j] = best + _emission(scores[b, t, j], from_proba)
                back[t, j] = <int32_t>arg
            for j in range(n_tags):
                cur[j] = nxt[j]
        k = 0
        best = cur[0] + end[0]
        for j in range(1, n_tags):
            v = cur[j] + end[j]
            if v > best:
                best = v
                k = j
        for t in range(n - 1, -1, -1):
            out[b, t] = k
            k = back[t, k]


def viterbi_path(
    const real_t[:, :, ::1] scores,
    const int64_t[::1] lengths,
    const double[:, ::1] trans,
    const double[::1] start,
    const double[::1] end,
    bint from_proba=False,
):
    """Best tag ids (B, L) of per-token log-scores (B, L, T) plus transition (T, T), start and end
    scores (T,); -1 beyond each sentence's length (lengths are cut to L). -inf scores forbid.

    `scores` may be float32 or float64 and is read in place (sums are float64). With `from_proba`
    they are probabilities, and each one's log, floored at PROBA_FLOOR, is taken in float64 as it is
    read: the tagger decodes onnxruntime's float32 output without a float64 copy of it.
    """
    cdef Py_ssize_t batch = scores.shape[0], seq_len = scores.shape[1], n_tags = scores.shape[2], b
    if trans.shape[0] != n_tags or trans.shape[1] != n_tags or start.shape[0] != n_tags or end.shape[0] != n_tags:
        raise ValueError(f"viterbi_path: transition tables must be ({n_tags}, {n_tags}), ({n_tags},), ({n_tags},)")
    if lengths.shape[0] != batch:
        raise ValueError(f"viterbi_path: {lengths.shape[0]} lengths for {batch} sentences")
    if n_tags == 0 and seq_len > 0:
        raise ValueError("viterbi_path: no tags")
    out = np.full((batch, seq_len), -1, dtype=np.int64)
    work = np.empty(2 * n_tags, dtype=np.float64)  # the scores of the current and the next position
    back = np.empty((max(seq_len, 1), n_tags), dtype=np.int32)  # rows 1..n-1 written before read
    cdef double[::1] cv = work[:n_tags], nv = work[n_tags:]
    cdef int32_t[:, ::1] bv = back
    cdef int64_t[:, ::1] ov = out
    with nogil:
        _viterbi(scores, lengths, trans, start, end, from_proba, cv, nv, bv, ov)
    return out
