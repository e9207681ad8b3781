"""Progress bars for long loops (training, testing, converters, offline evaluation).

Shown only on the main process, only when stderr is a terminal (a log file full of carriage returns
helps nobody) unless `INTERNDRIVE_PROGRESS=1` forces them on; `INTERNDRIVE_PROGRESS=0` turns them off.
Light on purpose (no torch/mmengine import): converters and `interndrive evaluate` use it too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar('T')


def _is_main_process() -> bool:
    """Rank 0 (or not distributed), without importing torch when nothing imported it yet."""
    if os.environ.get('RANK', '0') != '0':  # set by torchrun before any process group exists
        return False
    dist = getattr(sys.modules.get('torch'), 'distributed', None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return True


def progress_enabled() -> bool:
    """Whether progress bars should be drawn in this process."""
    setting = os.environ.get('INTERNDRIVE_PROGRESS', '').strip()
    if setting == '0' or not _is_main_process():
        return False
    return setting == '1' or sys.stderr.isatty()


def track(
    iterable: Iterable[T], description: str = '', total: int | None = None, unit: str = 'it'
) -> Iterator[T]:
    """Iterates `iterable` with a tqdm bar (see `progress_enabled`).

    Args:
        iterable: What to iterate over.
        description: Text left of the bar (e.g. `'test'`, `'converting val'`).
        total: Number of items when `len(iterable)` is not available.
        unit: Unit shown in the rate (e.g. `'frame'`).
    """
    if total is None and hasattr(iterable, '__len__'):
        total = len(iterable)  # type: ignore[arg-type]
    yield from tqdm(
        iterable,
        desc=description,
        total=total,
        unit=unit,
        disable=not progress_enabled(),
        dynamic_ncols=True,
        leave=False,
    )


def progress_bar(total: int, description: str = '', initial: int = 0, unit: str = 'it') -> tqdm:
    """A manually updated tqdm bar (`bar.update(1)`, `bar.close()`), see `progress_enabled`."""
    return tqdm(
        total=total,
        initial=initial,
        desc=description,
        unit=unit,
        disable=not progress_enabled(),
        dynamic_ncols=True,
        leave=False,
    )
