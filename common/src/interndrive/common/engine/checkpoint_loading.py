"""Loading mmengine checkpoints under torch >= 2.6, where `torch.load` defaults to `weights_only=True`.

mmengine 0.10.7 calls `torch.load(filename, map_location=...)` without `weights_only`, and every
checkpoint it writes holds the MessageHub's `HistoryBuffer`s, whose pickles reference numpy arrays and
`builtins.getattr` (for the bound statistics methods). With torch >= 2.6 that makes `--resume` and
testing of mmengine checkpoints fail with `UnpicklingError: Weights only load failed`.

The local-file loader registered here first tries the safe `weights_only=True` load with numpy's
array globals and HistoryBuffer allowed (enough for plain state dicts and converted weights). If the
file needs more (mmengine's own checkpoints do: `getattr`), it falls back to the full unpickler that
mmengine used before torch 2.6, logging which file it trusted. Set `INTERNDRIVE_WEIGHTS_ONLY=1` to
refuse that fallback (for checkpoints of unknown origin).
"""

from __future__ import annotations

import logging
import os
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

from .checks import CheckpointMismatchError


def _safe_globals() -> list:
    dtype_classes = {
        type(np.dtype(t))
        for t in ('float16', 'float32', 'float64', 'int32', 'int64', 'uint8', 'bool')
    }
    reconstruct = getattr(getattr(np, 'core', None), 'multiarray', None)
    extras = [reconstruct._reconstruct] if reconstruct is not None else []
    return [HistoryBuffer, np.ndarray, np.dtype, *dtype_classes, *extras]


def strict_weights_only() -> bool:
    """Whether the untrusted-pickle fallback is disabled (`INTERNDRIVE_WEIGHTS_ONLY=1`)."""
    return os.environ.get('INTERNDRIVE_WEIGHTS_ONLY', '') == '1'


def load_checkpoint_file(filename: str, map_location=None) -> object:
    """`torch.load` of a local checkpoint: safe load first, full unpickling as a logged fallback."""
    if not os.path.isfile(filename):
        from .checks import MissingPathError

        raise MissingPathError(f'checkpoint {filename!r} does not exist')
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if strict_weights_only():
            raise CheckpointMismatchError(
                f'checkpoint {filename!r} needs full unpickling (not only weights) and '
                f'INTERNDRIVE_WEIGHTS_ONLY=1 forbids it: {str(e).splitlines()[0]}'
            ) from e
    print_log(
        f'{filename}: loading with full unpickling (mmengine checkpoint with training state); '
        'only load checkpoints you trust, or set INTERNDRIVE_WEIGHTS_ONLY=1',
        logger='current',
        level=logging.DEBUG,
    )
    return torch.load(filename, map_location=map_location, weights_only=False)


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None) -> object:
    return load_checkpoint_file(os.path.expanduser(filename), map_location)
