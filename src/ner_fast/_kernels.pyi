"""Type stub of the compiled preprocessing kernels (source: cython/_kernels.pyx; tests/test_kernel_stubs.py
holds it against the compiled signatures)."""
from typing import Iterable

import numpy as np

CASING_CLASSES: tuple[str, ...]

class Tokens:
    """A sequence of str pinned for the kernels (read in place, never copied)."""

    strings: tuple[str, ...]
    def __init__(self, strings: Iterable[str]) -> None: ...
    def __len__(self) -> int: ...

def build_table(entries: Tokens) -> np.ndarray: ...
def count_unique(tokens: Tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def lookup(
    table: np.ndarray,
    entries: Tokens,
    tokens: Tokens,
    first_id: int,
    unknown: int,
    out: np.ndarray | None = None,
) -> np.ndarray: ...
def token_features(
    tokens: Tokens,
    word_tokens: Tokens,
    table: np.ndarray,
    entries: Tokens,
    first_id: int,
    char_table: np.ndarray,
    word_out: np.ndarray,
    casing_out: np.ndarray,
    chars_out: np.ndarray,
) -> None: ...
def char_counts(tokens: Tokens) -> np.ndarray: ...
def fill_bucket(
    tokens: np.ndarray,
    tag_ids: np.ndarray | None,
    offsets: np.ndarray,
    sentences: np.ndarray,
    bucket_len: int,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]: ...
