"""Atomic file writes and their hook into mmengine's checkpoint saving.

The writes themselves live in `atomic_files` (plain Python) and `..checkpoint.atomic_torch_save`
(OpenMMLab-free); they are re-exported here.

mmengine writes checkpoints through a file backend (`get_file_backend(path, backend_args)`) and the
`last_checkpoint` pointer with a plain `open(..., 'w')`. `AtomicLocalBackend` is registered as the file
backend `interndrive_atomic_local`, and `AtomicCheckpointHook` (a CheckpointHook) uses it by default
and also rewrites the pointer atomically. Configs select it with
`default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', ...))`; the CLI does this for them.
"""

from __future__ import annotations

from pathlib import Path

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ..checkpoint import atomic_torch_save
from .atomic_files import atomic_write_bytes, atomic_write_text

__all__ = [
    'ATOMIC_BACKEND_NAME',
    'AtomicCheckpointHook',
    'AtomicLocalBackend',
    'atomic_torch_save',
    'atomic_write_bytes',
    'atomic_write_text',
]

ATOMIC_BACKEND_NAME = 'interndrive_atomic_local'


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
