"""Checks that a checkpoint fits the model built from a config, before testing with it.

`load_checkpoint(strict=False)` in mmengine only logs missing/unexpected keys, and a test run then
silently evaluates randomly initialised layers. `check_checkpoint_matches` raises a one-line
CheckpointMismatchError instead, naming the first few missing, unexpected and wrongly shaped keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from .checkpoint_loading import load_checkpoint_file
from .checks import CheckpointMismatchError, require_file

_SHOWN = 3


def extract_state_dict(checkpoint: Mapping) -> Mapping[str, torch.Tensor]:
    """The weights inside an mmengine (`state_dict`) or upstream (`model`) checkpoint, without `module.`."""
    state = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint, Mapping) and key in checkpoint:
            state = checkpoint[key]
            break
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError('checkpoint holds no state dict (expected a dict of tensors)')
    return {k.removeprefix('module.'): v for k, v in state.items()}


def _listing(names: list[str]) -> str:
    shown = ', '.join(names[:_SHOWN])
    return shown + (f', … ({len(names) - _SHOWN} more)' if len(names) > _SHOWN else '')


def describe_mismatch(
    model_state: Mapping[str, torch.Tensor], ckpt_state: Mapping[str, torch.Tensor]
) -> str | None:
    """A one-line description of how two state dicts differ, or None when they fit."""
    missing = sorted(set(model_state) - set(ckpt_state))
    unexpected = sorted(set(ckpt_state) - set(model_state))
    shapes = sorted(
        f'{k} {tuple(ckpt_state[k].shape)} vs model {tuple(model_state[k].shape)}'
        for k in set(model_state) & set(ckpt_state)
        if hasattr(ckpt_state[k], 'shape')
        and tuple(ckpt_state[k].shape) != tuple(model_state[k].shape)
    )
    parts = []
    if missing:
        parts.append(f'{len(missing)} missing keys ({_listing(missing)})')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected keys ({_listing(unexpected)})')
    if shapes:
        parts.append(f'{len(shapes)} shape mismatches ({_listing(shapes)})')
    return '; '.join(parts) or None


def check_checkpoint_matches(
    model: nn.Module,
    checkpoint_path: str | os.PathLike[str],
    config_name: str = 'the config',
    task_name: str | None = None,
) -> None:
    """Raises CheckpointMismatchError unless the checkpoint's weights fit `model` exactly.

    Args:
        model: The built model (a DDP wrapper is unwrapped).
        checkpoint_path: The checkpoint file.
        config_name: How the error names the config.
        task_name: The task, so the error can name its whole-model converter
            (`interndrive <task> convert-checkpoint`) for released upstream weights.
    """
    path = require_file(checkpoint_path, 'checkpoint')
    try:
        checkpoint = load_checkpoint_file(str(path), map_location='cpu')
    except CheckpointMismatchError:
        raise
    except Exception as e:  # a truncated or foreign file: say which file and why
        raise CheckpointMismatchError(f'cannot read checkpoint {str(path)!r}: {e}') from e
    module = getattr(model, 'module', model)
    problem = describe_mismatch(module.state_dict(), extract_state_dict(checkpoint))
    if problem:
        raise CheckpointMismatchError(
            f'checkpoint {str(path)!r} does not match the model of {config_name}: {problem} '
            f'(trained with another config? released upstream {task_name or "task"} weights need '
            f'`interndrive {task_name or "<task>"} convert-checkpoint` first)'
        )
