"""Finding the checkpoint to resume from.

mmengine's `find_latest_checkpoint` trusts the `last_checkpoint` pointer file. That pointer can name a
checkpoint that no longer exists (CheckpointHook deletes the oldest checkpoint *before* writing the new
one when `max_keep_ckpts` is set) or be empty after a kill; mmengine's resume then fails to load it.
`find_last_checkpoint` validates the pointer and otherwise falls back to the newest
`epoch_*.pth`/`iter_*.pth` in the work dir.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_CKPT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def _checkpoint_order(path: Path) -> tuple[float, int]:
    # Newest first by modification time; the step number breaks ties (same-second saves).
    match = _CKPT_NAME.match(path.name)
    return (path.stat().st_mtime, int(match.group(2)) if match else -1)


def find_last_checkpoint(work_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint to resume from in `work_dir`, or None when there is none."""
    work = Path(work_dir)
    pointer = work / 'last_checkpoint'
    if pointer.is_file():
        named = pointer.read_text().strip()
        if named:
            target = Path(named) if Path(named).is_absolute() else work / named
            if target.is_file():
                return target
    candidates = [p for p in work.glob('*.pth') if _CKPT_NAME.match(p.name) and p.is_file()]
    if not candidates:
        return None
    return max(candidates, key=_checkpoint_order)
