"""Atomic file writes in plain Python (no torch, no OpenMMLab): the core that `atomic_io` builds on.

A file is written to a temporary file in the destination folder (same file system, so the rename is
atomic), flushed and fsync'ed, then `os.replace`d over the destination. A process killed at any point
leaves either the old file or the complete new one, never a truncated file; at worst a stray
`.<name>.*.tmp` file remains, which the next successful write of the same name does not depend on.
Light enough for the OpenMMLab-free checkpoint tools (`interndrive.common.checkpoint`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any threads write.
    current = os.umask(0o022)
    os.umask(current)
    return current


# mkstemp creates 0600 files; a checkpoint should get the permissions open() would give it.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Calls `write(f)` on a temp file in `path`'s folder, then fsyncs it and `os.replace`s it to `path`."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{dest.name}.', suffix='.tmp', dir=dest.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            os.fchmod(f.fileno(), _FILE_MODE)
            write(f)
            f.flush()
            # Without fsync a power loss after the rename can leave an empty file on some file
            # systems (ext4 delayed allocation); the rename itself is atomic either way.
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        # BaseException: also clean up on KeyboardInterrupt / SystemExit during the write.
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes `data` to `path` atomically (temp file in the same folder, fsync, `os.replace`)."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = 'utf-8') -> None:
    """Writes `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode(encoding))
