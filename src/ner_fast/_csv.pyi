"""Type stub of the compiled GMB CSV reader (source: cython/_csv.pyx)."""
import numpy as np

def parse_csv(
    data: bytes, ncols: int, cat_cols: list[int]
) -> tuple[np.ndarray, list[np.ndarray], tuple[int, int] | None]: ...
