"""Our array files (`.npz`): written without pickle by `write_npz` into a file that `atomic.py` publishes,
read back whole by `read_npz` with errors that name the file (a checkpoint, a prepared folder's arrays)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Mapping


def write_npz(f: IO[bytes], arrays: Mapping[str, Any]) -> None:
    """Write `arrays` to the open binary file `f` as an uncompressed `.npz` (what `np.savez` writes, no
    pickle; `read_npz` reads it). The archive is closed even when the write is interrupted: inside
    `np.savez` a Ctrl-C or SIGTERM left numpy's ZipFile open, and finalized after `f` was closed it printed
    "Exception ignored ... ValueError: seek of closed file" with a traceback."""
    import zipfile

    import numpy as np

    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def read_npz(path: str | os.PathLike[str], what: str = "array file") -> dict[str, Any]:
    """Every array of an `.npz` written by this package (no pickle), read whole.

    ValueError naming the file when it is missing, not an npz archive (random bytes are not
    "pickled data"), truncated or corrupt.
    """
    import zipfile
    import zlib

    import numpy as np

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file (expected a {what})")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a {what} (not an .npz archive; damaged or replaced?)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, RuntimeError) as err:
        raise ValueError(f"{path}: the {what} is corrupt or truncated ({err})") from None
