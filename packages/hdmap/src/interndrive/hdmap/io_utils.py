"""Small file helpers: atomic writes and JSON/pickle reading with errors that name the file."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from interndrive.common.engine.atomic_files import atomic_write_bytes

from .errors import HDMapInputError, MissingPathError


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f'object of type {type(obj).__name__} is not JSON serializable')


def write_bytes_atomic(path: str | os.PathLike, payload: bytes) -> Path:
    """Writes `payload` atomically (common's temp file + fsync + rename) and returns the path."""
    atomic_write_bytes(path, payload)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Writes `data` as JSON atomically (see `write_bytes_atomic`).

    numpy arrays and scalars are converted to lists / Python numbers.
    """
    return write_bytes_atomic(path, json.dumps(data, default=_to_jsonable).encode())


def read_json_or_pickle(path: str | os.PathLike, what: str) -> Any:
    """Loads a .json (or, like the challenge's `mmcv.load`, a .pkl/.pickle) file.

    Args:
        path: The file.
        what: What the file should be, for error messages ('submission', 'annotation file').
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f'{what} {path}: no such file')
    suffix = path.suffix.lower()
    if suffix in ('.pkl', '.pickle'):
        # Pickle runs code from the file: only for the user's own files, as the challenge allows.
        with path.open('rb') as f:
            return pickle.load(f)
    if suffix != '.json':
        raise HDMapInputError(
            f'{what} {path}: expected a .json (or .pkl) file, got {suffix or "no suffix"!r}'
        )
    try:
        with path.open() as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise HDMapInputError(f'{what} {path}: not valid JSON ({e})') from e
