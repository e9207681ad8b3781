"""Atomic file writes, and their hook into mmengine's checkpoint saving.

A file is written to a temporary file in the destination folder (same file system, so the rename is
atomic), flushed and fsync'ed, then `os.replace`d over the destination. A process killed at any point
leaves either the old file or the complete new one, never a truncated file; at worst a stray
`.<name>.*.tmp` file remains, which the next successful write of the same name does not depend on.

mmengine writes checkpoints through a file backend (`get_file_backend(path, backend_args)`) and the
`last_checkpoint` pointer with a plain `open(..., 'w')`. `AtomicLocalBackend` is registered as the file
backend `interndrive_atomic_local`, and `AtomicCheckpointHook` (a CheckpointHook) uses it by default
and also rewrites the pointer atomically. Configs select it with
`default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', ...))`; the CLI does this for them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

ATOMIC_BACKEND_NAME = 'interndrive_atomic_local'


def _umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any threads write.
    current = os.umask(0o022)
    os.umask(current)
    return current


# mkstemp creates 0600 files; a checkpoint should get the permissions open() would give it.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes `data` to `path` atomically (temp file in the same folder, fsync, `os.replace`)."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{dest.name}.', suffix='.tmp', dir=dest.parent)
    try:
        with os.fdopen(fd, 'wb') as f:
            os.fchmod(f.fileno(), _FILE_MODE)
            f.write(data)
            f.flush()
            # Without fsync a power loss after the rename can leave an empty file on some file
            # systems (ext4 delayed allocation); the rename itself is atomic either way.
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        # BaseException: also clean up on KeyboardInterrupt / SystemExit during the write.
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = 'utf-8') -> None:
    """Writes `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_torch_save(obj: object, path: str | os.PathLike[str]) -> None:
    """`torch.save(obj, path)`, atomically."""
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


@register_backend(ATOMIC_BACKEND_NAME)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        atomic_write_bytes(filepath, obj)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = 'utf-8') -> None:
        atomic_write_text(filepath, obj, encoding)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """CheckpointHook that writes checkpoints and the `last_checkpoint` pointer atomically.

    Takes the same arguments as mmengine's CheckpointHook. `backend_args` defaults to the atomic local
    backend; pass another backend explicitly for remote storage (which has its own atomicity).
    """

    def __init__(self, *args, backend_args: dict | None = None, **kwargs) -> None:
        if backend_args is None and kwargs.get('file_client_args') is None:
            backend_args = {'backend': ATOMIC_BACKEND_NAME}
        super().__init__(*args, backend_args=backend_args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        pointer = Path(runner.work_dir) / 'last_checkpoint'
        # The parent writes the pointer with a plain open('w'), so a kill in that instant can leave
        # it empty; `resume.find_last_checkpoint` then falls back to the newest checkpoint file.
        # Rewriting it atomically here makes the pointer durable (fsync'ed) once we return.
        super()._save_checkpoint_with_step(runner, step, meta)
        if is_main_process() and self.last_ckpt is not None:
            atomic_write_text(pointer, str(self.last_ckpt))
