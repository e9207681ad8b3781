"""Atomic file writes: write a temporary file in the destination folder, then `os.replace` it.

A crash or Ctrl-C never leaves a half-written labels.npz, info pickle or PNG behind, and readers never
see a partial file.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from interndrive.common.engine.atomic_files import atomic_write as common_atomic_write


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Calls `write(file)` on a temporary file next to `path`, then renames it onto `path`.

    The one implementation lives in `interndrive.common.engine.atomic_files` (torch-free, fsync,
    normal file permissions); this wrapper returns the path, which the callers here print.
    """
    common_atomic_write(path, write)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_savez_compressed(
    path: str | os.PathLike[str], *args: np.ndarray, **arrays: np.ndarray
) -> Path:
    """`np.savez_compressed` to exactly `path` (numpy would append `.npz` to a temp name)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, *args, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_pickle(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write(path, lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL))


def atomic_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_bytes(path, json.dumps(obj, indent=1).encode())
