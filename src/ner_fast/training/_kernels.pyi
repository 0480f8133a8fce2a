"""Type stub of the compiled training-only kernels (source: cython/_training.pyx)."""
import numpy as np

def crf_nll_grad(
    emissions: np.ndarray,
    labels: np.ndarray,
    transitions: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
def flush_denormals() -> bool: ...
