"""Shared machinery of the upstream whole-model checkpoint converters of the task packages.

Each task package (`interndrive.<task>.checkpoint`) converts the detector checkpoints that upstream
released for its challenge into its own model's state dict. What differs between tasks is data: a
table of key renames (`RENAMES`: `(upstream regex, our template)`, the first full match wins), the
keys deliberately not loaded (`NOT_LOADED`: `regex -> reason`), the parts a complete checkpoint must
have (`REQUIRED_PARTS`: `upstream prefix -> name`) and a few tensor rewrites. What is the same lives
here, once:

* `unwrap_state_dict`: `checkpoint['state_dict']` (or the dict itself) without wrapper prefixes;
* `require_parts`: refuse an incomplete or foreign checkpoint, naming every missing part;
* `rename_state_dict`: apply a rename table, collect the keys it does not cover, and refuse two
  upstream keys that map to one of ours with different values;
* `take_bev_constructor`: the BEV constructor, through `interndrive.common.bev`;
* `convert_checkpoint_file`: read the upstream file, convert, write `{'state_dict', 'meta'}`
  atomically (reading and writing are `interndrive.common.checkpoint`'s).

Every error is raised as the task's own error type (passed in), so each task's CLI reports it in one
line. Pure PyTorch: no mmcv/mmengine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interndrive.common.checkpoint import (
    CheckpointFormatError,
    atomic_torch_save,
    read_checkpoint,
    strip_prefixes,  # re-exported: the task converters use it with their own prefixes
)

__all__ = [
    'convert_checkpoint_file',
    'format_cfg_options',
    'missing_parts',
    'not_loaded_reason',
    'prefix_renames',
    'rename_key',
    'rename_state_dict',
    'require_parts',
    'strip_prefixes',
    'take_bev_constructor',
    'unwrap_state_dict',
]

#: A converter: (loaded upstream checkpoint, source name) -> (our state dict, unused upstream keys).
StateDictConverter = Callable[[Mapping[str, Any], str], tuple[dict[str, Tensor], list[str]]]


def unwrap_state_dict(
    checkpoint: Mapping[str, Any],
    source: str,
    error: type[Exception] = ValueError,
    wrappers: Sequence[str] = ('module.',),
) -> dict[str, Tensor]:
    """The tensors of an upstream checkpoint, under its model's own key names.

    Args:
        checkpoint: A loaded checkpoint `{'state_dict': ..., 'meta': ...}` or a bare state dict.
        source: Name used in error messages (e.g. the file path).
        error: Exception type raised for a checkpoint without a state dict (the task's own).
        wrappers: Prefixes that training frameworks put in front of the model's keys (DDP's
            `module.`); removed wherever they stack.

    Returns:
        `{key: tensor}` without the wrapper prefixes; non-tensor entries are left out.

    Raises:
        error: When there is no (non-empty) state dict.
    """
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, Mapping) or not state:
        raise error(f'{source}: expected a state dict (or a dict with "state_dict")')
    return {
        strip_prefixes(key, wrappers): value
        for key, value in state.items()
        if isinstance(value, Tensor)
    }


def missing_parts(state: Collection[str], required: Mapping[str, str]) -> list[str]:
    """`'<name> (<prefix>*)'` for every required part that no key of `state` starts with.

    Args:
        state: The (unwrapped) upstream keys.
        required: `{upstream key prefix: human-readable part name}`, in the order to report them.
    """
    return [
        f'{name} ({prefix}*)'
        for prefix, name in required.items()
        if not any(key.startswith(prefix) for key in state)
    ]


def require_parts(
    state: Collection[str],
    required: Mapping[str, str],
    *,
    source: str,
    model: str,
    error: type[Exception] = ValueError,
    hint: str = '',
) -> None:
    """Refuses a checkpoint that lacks a required part, naming all missing parts in one message.

    Args:
        state: The (unwrapped) upstream keys.
        required: `{upstream key prefix: part name}` (the task's `REQUIRED_PARTS`).
        source: Name used in the message (e.g. the file path).
        model: What a complete checkpoint is, e.g. `'BEVFormer-Occ'` (-> "not an upstream
            BEVFormer-Occ checkpoint").
        error: Exception type to raise (the task's own).
        hint: Appended to the message when parts are missing (e.g. "already converted?").

    Raises:
        error: `'<source>: not an upstream <model> checkpoint, no keys for <parts><hint>'`.
    """
    missing = missing_parts(state, required)
    if missing:
        raise error(
            f'{source}: not an upstream {model} checkpoint, no keys for {", ".join(missing)}{hint}'
        )


def prefix_renames(prefixes: Mapping[str, str]) -> list[tuple[str, str]]:
    """A rename table (see `rename_key`) that swaps one key prefix for another.

    Args:
        prefixes: `{upstream prefix: our prefix}`.
    """
    return [
        (re.escape(upstream) + r'(.*)', ours.replace('\\', r'\\') + r'\1')
        for upstream, ours in prefixes.items()
    ]


def rename_key(key: str, renames: Sequence[tuple[str, str]]) -> str | None:
    """Our name for an upstream key: the template of the first regex that matches all of `key`.

    Args:
        key: An upstream key (unwrapped).
        renames: `(upstream regex, our template)` pairs; `\\N` in a template is group N.

    Returns:
        Our key, or None when no entry matches.
    """
    for pattern, template in renames:
        match = re.fullmatch(pattern, key)
        if match:
            return match.expand(template)
    return None


def not_loaded_reason(key: str, not_loaded: Mapping[str, str], default: str) -> str:
    """Why an upstream key is not loaded: the reason of the first `not_loaded` regex matching it.

    Args:
        key: An unused upstream key.
        not_loaded: `{regex: reason}` (the task's `NOT_LOADED`).
        default: Reason for a key that no entry matches.
    """
    for pattern, reason in not_loaded.items():
        if re.fullmatch(pattern, key):
            return reason
    return default


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    if a.shape != b.shape:
        return False
    # meta tensors (key/shape checks without memory) carry no values to compare
    return a.is_meta or b.is_meta or torch.equal(a, b)


def rename_state_dict(
    state: Mapping[str, Tensor],
    renames: Sequence[tuple[str, str]],
    *,
    source: str,
    error: type[Exception] = ValueError,
    out: dict[str, Tensor] | None = None,
    skip: Collection[str] = (),
    rewrite: Callable[[str, Tensor, dict[str, Tensor]], bool] | None = None,
    conflict: str = '{source}: {upstream} differs from the other upstream copy of {ours}',
) -> tuple[dict[str, Tensor], list[str]]:
    """Moves every upstream tensor to its key of ours; the keys no rule covers are returned.

    Several upstream keys may map to one of ours only when their tensors are equal: upstream
    modules that are shared between layers appear once per layer in its state dict.

    Args:
        state: Unwrapped upstream state dict.
        renames: The task's `RENAMES` table (see `rename_key`).
        source: Name used in error messages.
        error: Exception type raised on a conflict (the task's own).
        out: Dict to add to (e.g. already holding the backbone); a new one when None.
        skip: Upstream keys already converted elsewhere (neither renamed nor reported unused).
        rewrite: Task-specific tensor rewrites, tried before `renames`:
            `rewrite(key, tensor, out)` stores what it makes of `key` in `out` and returns True,
            or returns False when `key` is not one it rewrites.
        conflict: Message for two upstream keys with different tensors for one of ours; may use
            `{source}`, `{upstream}` (the later key) and `{ours}`.

    Returns:
        `(out, sorted upstream keys that no rule covers)`.

    Raises:
        error: On a conflict (message from `conflict`).
    """
    out = {} if out is None else out
    unused: list[str] = []
    for key, value in state.items():
        if key in skip or (rewrite is not None and rewrite(key, value, out)):
            continue
        ours = rename_key(key, renames)
        if ours is None:
            unused.append(key)
        elif ours not in out:
            out[ours] = value
        elif not _same_tensor(out[ours], value):
            raise error(conflict.format(source=source, upstream=key, ours=ours))
    return out, sorted(unused)


def take_bev_constructor(
    state: Mapping[str, Tensor], layout: str
) -> tuple[dict[str, Tensor], set[str]]:
    """The BEV constructor's tensors under our `bev_constructor.` prefix, and the keys they used.

    Args:
        state: Unwrapped upstream state dict.
        layout: Upstream layout, a key of `interndrive.common.bev.checkpoint_keys.UPSTREAM_BEV_PREFIXES`
            (`'occupancy'` or `'openlane'`).

    Returns:
        `({'bev_constructor.<key>': tensor}, {upstream keys taken})`.
    """
    from interndrive.common.bev.checkpoint_keys import (
        UPSTREAM_BEV_PREFIXES,
        extract_bev_constructor_state_dict,
    )

    prefixes = tuple(UPSTREAM_BEV_PREFIXES[layout])
    taken = {key: value for key, value in state.items() if key.startswith(prefixes)}
    bev = extract_bev_constructor_state_dict(taken, layout)
    return {f'bev_constructor.{key}': value for key, value in bev.items()}, set(taken)


def format_cfg_options(options: Mapping[str, object]) -> str:
    """`{'a.b': 1}` -> `'a.b=1'`: `--cfg-options` arguments, space separated.

    Args:
        options: Config overrides (the task's `UPSTREAM_RUN_OPTIONS`).
    """
    return ' '.join(f'{key}={value}' for key, value in options.items())


def convert_checkpoint_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    convert: StateDictConverter,
    *,
    source_format: str,
    error: type[Exception] = ValueError,
    missing_error: type[Exception] = FileNotFoundError,
    reason: Callable[[str], str] | None = None,
    extra_meta: Mapping[str, Any] | None = None,
    weights_only: bool | None = None,
) -> dict[str, Any]:
    """Reads an upstream checkpoint file, converts it, writes `{'state_dict', 'meta'}` atomically.

    Args:
        src: Upstream `.pth`.
        dst: Output `.pth` (temp file in the same folder, then `os.replace`: never half written).
        convert: The task's `convert_upstream_state_dict(checkpoint, source)`.
        source_format: Stored as `meta['source_format']` (e.g. `'upstream BEVFormer-Occ'`).
        error: Exception type for a file that is not a readable PyTorch checkpoint (the task's own).
        missing_error: Exception type for a missing `src`.
        reason: Explains an unused key; `meta['unused']` is then `{key: reason}`, else a list.
        extra_meta: More `meta` entries (e.g. the run options the weights need).
        weights_only: See `interndrive.common.checkpoint.read_checkpoint` (None: safe load first,
            full unpickling of trusted upstream files as fallback, with a warning).

    Returns:
        `{'num_tensors': int, 'unused_keys': sorted list}`.
    """
    src_path = Path(src)
    if not src_path.is_file():
        raise missing_error(f'upstream checkpoint {str(src_path)!r} does not exist')
    try:
        checkpoint = read_checkpoint(src_path, weights_only=weights_only)
    except CheckpointFormatError as err:
        raise error(str(err)) from err
    except Exception as err:  # torch.load on a file that is not a checkpoint at all
        raise error(
            f'{src_path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})'
        ) from err
    converted, unused = convert(checkpoint, str(src_path))
    meta = {
        'source': src_path.name,
        'source_format': source_format,
        'unused': {key: reason(key) for key in unused} if reason is not None else unused,
        **(extra_meta or {}),
    }
    atomic_torch_save({'state_dict': converted, 'meta': meta}, dst)
    return {'num_tensors': len(converted), 'unused_keys': unused}
