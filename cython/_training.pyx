# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, binding=True, embedsignature=True
"""Training-only kernels (module `ner_fast.training._kernels`; stub `training/_kernels.pyi`): a linear-chain
CRF's negative log-likelihood and its gradients (`crf_nll_grad`, wrapped by `training.crf_loss`), and
flush-to-zero (`flush_denormals`, called by `training.train`): not a loop, but C-level processor state.
The runtime never imports this module."""
from libc.stdint cimport int64_t
from libc.math cimport exp, log

import numpy as np


ctypedef fused real_t:
    float
    double


# --------------------------------------------------------------------------- CRF training loss

cdef inline double _row_max(double[:, ::1] a, Py_ssize_t row, Py_ssize_t n) noexcept nogil:
    """The largest of a[row, :n] (n >= 1): the shift that keeps a step's exp() in (0, 1]."""
    cdef double m = a[row, 0]
    cdef Py_ssize_t i
    for i in range(1, n):
        if a[row, i] > m:
            m = a[row, i]
    return m


cdef Py_ssize_t _crf_nll_grad(
    const real_t[:, :, ::1] emit,
    const int64_t[:, ::1] labels,
    const real_t[:, ::1] trans,
    const real_t[::1] start,
    const real_t[::1] end,
    double[::1] nll,
    real_t[:, :, ::1] g_emit,
    double[:, ::1] g_trans,
    double[::1] g_start,
    double[::1] g_end,
    double[:, ::1] alpha,
    double[:, ::1] beta,
    double[:, ::1] e_col,
    double[::1] c_max,
    double[:, ::1] e_row,
    double[::1] r_max,
    double[::1] work,
    double[::1] acc,
) noexcept nogil:
    """Fill nll and the gradients; returns -1, or the first row whose labels are malformed (an id out
    of range, or a tag after a -1), which is then left unscored."""
    cdef Py_ssize_t batch = emit.shape[0], seq_len = emit.shape[1], n_tags = emit.shape[2]
    cdef Py_ssize_t b, t, i, j, n, y, prev
    cdef double m, s, v, log_z, gold, p, scale
    # exp(trans) once per call, shifted by each column's maximum (forward: alpha into tag j) and by
    # each row's maximum (backward: beta out of tag i), so a sum over predecessors or successors has
    # a term of the largest transition at 1 and never underflows to log(0) as a whole.
    for j in range(n_tags):
        c_max[j] = trans[0, j]
        for i in range(1, n_tags):
            if trans[i, j] > c_max[j]:
                c_max[j] = trans[i, j]
    for i in range(n_tags):
        r_max[i] = trans[i, 0]
        for j in range(1, n_tags):
            if trans[i, j] > r_max[i]:
                r_max[i] = trans[i, j]
    for i in range(n_tags):
        for j in range(n_tags):
            e_col[i, j] = exp(trans[i, j] - c_max[j])
            e_row[i, j] = exp(trans[i, j] - r_max[i])
    for b in range(batch):
        n = 0
        while n < seq_len and labels[b, n] >= 0:
            if labels[b, n] >= n_tags:
                return b
            n += 1
        for t in range(n, seq_len):
            if labels[b, t] >= 0:
                return b
        if n == 0:
            continue  # a row that only pads the batch: nll 0, no gradient (g_emit is zeroed)

        # alpha[t, j]: log of the summed scores of every path over tokens 0..t that ends in tag j.
        # A step shifts by the largest alpha (m), so exp() of the shifted values lies in (0, 1].
        for j in range(n_tags):
            alpha[0, j] = <double>emit[b, 0, j] + start[j]  # in float64, not float32 + float32
        for t in range(1, n):
            m = _row_max(alpha, t - 1, n_tags)
            for j in range(n_tags):
                acc[j] = 0.0
            for i in range(n_tags):
                v = exp(alpha[t - 1, i] - m)
                for j in range(n_tags):
                    acc[j] += v * e_col[i, j]
            for j in range(n_tags):
                alpha[t, j] = m + c_max[j] + log(acc[j]) + emit[b, t, j]
        m = alpha[n - 1, 0] + end[0]
        for j in range(1, n_tags):
            if alpha[n - 1, j] + end[j] > m:
                m = alpha[n - 1, j] + end[j]
        s = 0.0
        for j in range(n_tags):
            s += exp(alpha[n - 1, j] + end[j] - m)
        log_z = m + log(s)

        # beta[t, i]: log of the summed scores of every continuation after token t in tag i.
        for i in range(n_tags):
            beta[n - 1, i] = end[i]
        for t in range(n - 2, -1, -1):
            m = emit[b, t + 1, 0] + beta[t + 1, 0]
            for j in range(1, n_tags):
                if emit[b, t + 1, j] + beta[t + 1, j] > m:
                    m = emit[b, t + 1, j] + beta[t + 1, j]
            for j in range(n_tags):
                work[j] = exp(emit[b, t + 1, j] + beta[t + 1, j] - m)
            for i in range(n_tags):
                s = 0.0
                for j in range(n_tags):
                    s += e_row[i, j] * work[j]
                beta[t, i] = m + r_max[i] + log(s)

        # The gold path's score, and the gradient: marginals minus the gold path's indicators.
        prev = labels[b, 0]
        gold = <double>emit[b, 0, prev] + start[prev]
        g_start[prev] -= 1.0
        for t in range(n):
            y = labels[b, t]
            if t > 0:
                gold += <double>emit[b, t, y] + trans[prev, y]
                g_trans[prev, y] -= 1.0
            for j in range(n_tags):
                p = exp(alpha[t, j] + beta[t, j] - log_z)
                g_emit[b, t, j] = <real_t>(p - (1.0 if j == y else 0.0))
                if t == 0:
                    g_start[j] += p
                if t == n - 1:
                    g_end[j] += p
            prev = y
        gold += end[prev]
        g_end[prev] -= 1.0
        nll[b] = log_z - gold

        # Pair marginals exp(alpha[t-1, i] + trans[i, j] + emit[t, j] + beta[t, j] - log Z), factored
        # as exp(alpha[t-1, i] - m) * e_col[i, j] * exp(c_max[j] + emit[t, j] + beta[t, j] + m - log Z):
        # 2T exp() a step instead of T*T.
        for t in range(1, n):
            m = _row_max(alpha, t - 1, n_tags)
            for j in range(n_tags):
                work[j] = exp(c_max[j] + emit[b, t, j] + beta[t, j] + m - log_z)
            for i in range(n_tags):
                scale = exp(alpha[t - 1, i] - m)
                for j in range(n_tags):
                    g_trans[i, j] += scale * e_col[i, j] * work[j]
    return -1


def crf_nll_grad(
    const real_t[:, :, ::1] emissions,
    const int64_t[:, ::1] labels,
    const real_t[:, ::1] transitions,
    const real_t[::1] start,
    const real_t[::1] end,
):
    """A linear-chain CRF's negative log-likelihood of each gold sequence and its gradients.

    `emissions` (B, L, T) are per-token tag scores (float32 or float64; the CRF parameters in the
    same dtype), `labels` (B, L) tag ids with -1 on padding, real tokens first; `transitions[i, j]`
    scores tag j right after tag i, `start` (T,) a sentence's first tag, `end` (T,) its last.
    Returns `(nll (B,) float64, d_emissions (B, L, T) in the emissions' dtype, d_transitions (T, T),
    d_start (T,), d_end (T,) float64)`: the gradients of the summed NLL, i.e. forward-backward
    marginals minus the gold path's indicators (summed over the batch for the CRF parameters). A row
    without tokens scores 0 and gets no gradient.

    The forward and backward algorithms run in log space, in float64 whatever the input: log Z of a
    long sentence is in the hundreds, and a marginal is exp() of a difference of such values, where
    float32's 7 digits would leave errors of ~1e-5 in each; on (T, T) tables the doubles cost nothing
    measurable. Each step's sum is shifted by its largest term, so nothing overflows, and only terms
    ~700 nats below the largest (weights under 1e-300) can underflow.
    """
    cdef Py_ssize_t batch = emissions.shape[0], seq_len = emissions.shape[1], n_tags = emissions.shape[2]
    if labels.shape[0] != batch or labels.shape[1] != seq_len:
        raise ValueError(
            f"crf_nll_grad: labels are ({labels.shape[0]}, {labels.shape[1]}), emissions ({batch}, {seq_len}, {n_tags})"
        )
    if (transitions.shape[0] != n_tags or transitions.shape[1] != n_tags
            or start.shape[0] != n_tags or end.shape[0] != n_tags):
        raise ValueError(f"crf_nll_grad: CRF parameters must be ({n_tags}, {n_tags}), ({n_tags},), ({n_tags},)")
    if n_tags == 0 and seq_len > 0:
        raise ValueError("crf_nll_grad: no tags")
    dtype = np.float32 if real_t is float else np.float64
    nll = np.zeros(batch, dtype=np.float64)
    d_emissions = np.zeros((batch, seq_len, n_tags), dtype=dtype)
    d_transitions = np.zeros((n_tags, n_tags), dtype=np.float64)
    d_start = np.zeros(n_tags, dtype=np.float64)
    d_end = np.zeros(n_tags, dtype=np.float64)
    steps = np.empty((2, max(seq_len, 1), n_tags), dtype=np.float64)  # alpha and beta, written before read
    tables = np.empty((2, n_tags, n_tags), dtype=np.float64)
    vectors = np.empty((4, n_tags), dtype=np.float64)
    cdef real_t[:, :, ::1] gv = d_emissions
    cdef double[::1] nv = nll, sv = d_start, ev = d_end
    cdef double[:, ::1] tv = d_transitions
    cdef double[:, ::1] alpha = steps[0], beta = steps[1], e_col = tables[0], e_row = tables[1]
    cdef double[::1] c_max = vectors[0], r_max = vectors[1], work = vectors[2], acc = vectors[3]
    cdef Py_ssize_t bad
    with nogil:
        bad = _crf_nll_grad(
            emissions, labels, transitions, start, end, nv, gv, tv, sv, ev,
            alpha, beta, e_col, c_max, e_row, r_max, work, acc,
        )
    if bad >= 0:
        raise ValueError(
            f"crf_nll_grad: labels of row {bad} must be tag ids in [0, {n_tags}) followed only by -1 padding,"
            f" got {np.asarray(labels[bad]).tolist()}"
        )
    return nll, d_emissions, d_transitions, d_start, d_end


# --------------------------------------------------------------------------- floating point

cdef extern from *:
    """
    #if defined(__x86_64__) || defined(_M_X64) || defined(__SSE__)
    #include <xmmintrin.h>
    static int ner_fast_flush_denormals(void) {
        _mm_setcsr(_mm_getcsr() | 0x8040);  /* FTZ (bit 15) and DAZ (bit 6) */
        return 1;
    }
    #elif defined(__aarch64__)
    static int ner_fast_flush_denormals(void) {
        unsigned long fpcr;
        __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
        __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr | (1UL << 24)));  /* FZ */
        return 1;
    }
    #else
    static int ner_fast_flush_denormals(void) { return 0; }
    #endif
    """
    int ner_fast_flush_denormals() noexcept nogil


def flush_denormals():
    """Make this thread, and every thread it starts from now on, treat denormal floats as zero.

    Returns False where the processor has no such mode. Training needs it: Adam decays the first
    moment of every embedding row absent from a batch by 0.9 per step, so after ~800 steps many
    reach the denormal range, where x86 arithmetic is ~45x slower (an epoch of the GMB run went
    from 156 s to 250 s). Threads inherit the mode when created, so call this before importing
    MXNet, whose engine and OpenMP threads then run with it.
    """
    return ner_fast_flush_denormals() == 1
