"""Type stub of the compiled decoding kernel (source: cython/_decode.pyx)."""
import numpy as np

def viterbi_path(
    scores: np.ndarray,
    lengths: np.ndarray,
    trans: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    from_proba: bool = False,
) -> np.ndarray: ...
