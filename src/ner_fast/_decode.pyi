"""Type stub of the compiled decoding kernel (source: cython/_decode.pyx)."""
import numpy as np

#: The smallest probability taken as it is in decoding: below it, log(PROBA_FLOOR).
PROBA_FLOOR: float

def viterbi_path(
    scores: np.ndarray,
    lengths: np.ndarray,
    trans: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    from_proba: bool = False,
) -> np.ndarray: ...
