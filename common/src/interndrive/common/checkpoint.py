"""Read, recognise, remap and write InternImage checkpoints in every format upstream produced.

Formats (REFERENCE.md Part 1 §1.3–1.4):

``classification``  ``{'model': sd[, 'model_ema': sd, 'optimizer': …]}`` (InternImage ``classification/``)
``mmdet``           ``{'state_dict': {'backbone.<key>': …}, 'meta': …}`` (detection/segmentation/AD)
``huggingface``     flat ``{'model.<key>': …}`` with ``gamma1/2`` renamed ``layer_scale1/2``
                    (``pytorch_model.bin`` / ``model.safetensors`` of the remote-code models)
``interndrive``     ``{'state_dict': sd, 'meta': {'format': 'interndrive', …}}`` (ours; keys = upstream)

Our module names equal upstream's, so loading is a matter of finding the right sub-dict and prefix:
the backbone is located by its stem key ``…patch_embed.conv1.weight``, which also finds it inside
whole task checkpoints (``img_backbone.`` in BEVFormer, ``backbone.`` in mmdet, ``model.`` in HF).
Pure PyTorch (safetensors optional): no mmcv/mmengine.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from .engine.atomic_files import atomic_write, atomic_write_bytes
from .engine.checks import CheckpointMismatchError  # one class for every checkpoint/model mismatch

__all__ = [
    'FORMATS',
    'HEAD_PREFIXES',
    'CheckpointFormatError',
    'CheckpointMismatchError',
    'LoadReport',
    'atomic_torch_save',
    'detect_format',
    'extract_backbone_state_dict',
    'load_internimage_checkpoint',
    'read_checkpoint',
    'to_format',
]

logger = logging.getLogger(__name__)

FORMATS = ('interndrive', 'classification', 'mmdet', 'huggingface')
FORMAT_VERSION = 1
STEM_KEY = 'patch_embed.conv1.weight'
#: Parameters of the classification heads (T–XL conv head, H/G CLIP projector); absent in backbones.
HEAD_PREFIXES = (
    'conv_head.',
    'head.',
    'dcnv3_head_x4.',
    'dcnv3_head_x3.',
    'clip_projector.',
    'fc_norm.',
)
# Prefixes that wrap a whole model: DataParallel/DDP and distillation students (CLS/utils.py).
_WRAPPER_PREFIXES = ('module.', 'student.')
_HF_RENAMES = (('.layer_scale1', '.gamma1'), ('.layer_scale2', '.gamma2'))


class CheckpointFormatError(ValueError):
    """The file is not a checkpoint we understand (names the file and what was expected)."""


@dataclass
class LoadReport:
    """What :func:`load_internimage_checkpoint` did.

    Attributes:
        source: path/URL (or ``'<dict>'``).
        source_format: one of :data:`FORMATS`, or ``'state_dict'`` for a bare dict.
        prefix: the prefix stripped to reach the backbone keys (``''`` if none).
        loaded: keys copied into the model.
        missing: model keys the checkpoint lacks.
        unexpected: checkpoint keys the model lacks.
        mismatched: ``(key, checkpoint_shape, model_shape)`` for keys with different shapes.
        ignored_head: head keys dropped because the model was built without a head.
    """

    source: str
    source_format: str
    prefix: str = ''
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    ignored_head: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every model key was loaded and nothing unexpected was found."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit: int = 20) -> str:
        """Human-readable account, listing up to ``limit`` keys per category."""

        def listing(title: str, items: list[Any]) -> str:
            if not items:
                return ''
            shown = '\n'.join(f'    {item}' for item in items[:limit])
            more = f'\n    … and {len(items) - limit} more' if len(items) > limit else ''
            return f'\n  {title} ({len(items)}):\n{shown}{more}'

        return (
            f'{self.source} [{self.source_format}, prefix {self.prefix!r}]: loaded {len(self.loaded)} tensors'
            + listing('missing in checkpoint', self.missing)
            + listing('unexpected in checkpoint', self.unexpected)
            + listing('shape mismatch (checkpoint vs model)', self.mismatched)
            + (
                f'\n  ignored {len(self.ignored_head)} head tensors (model has no head)'
                if self.ignored_head
                else ''
            )
        )


# ---------------------------------------------------------------------------------------- reading
def _is_url(path: str) -> bool:
    return urlparse(path).scheme in ('http', 'https')


def _download(url: str) -> Path:
    cache = Path(torch.hub.get_dir()) / 'checkpoints'
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / os.path.basename(urlparse(url).path)
    if not target.exists():
        torch.hub.download_url_to_file(url, str(target), progress=True)
    return target


def _resolve_file(path: Path) -> Path:
    if path.is_dir():  # a HuggingFace model directory
        for name in ('model.safetensors', 'pytorch_model.bin'):
            if (path / name).is_file():
                return path / name
        raise CheckpointFormatError(
            f'{path}: directory without model.safetensors or pytorch_model.bin'
        )
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    return path


def read_checkpoint(
    path_or_url: str | os.PathLike[str],
    map_location: str | torch.device = 'cpu',
    weights_only: bool | None = None,
) -> dict[str, Any]:
    """Load a checkpoint file, URL (cached in ``torch.hub.get_dir()``) or HuggingFace model directory.

    Args:
        path_or_url: ``.pth``/``.bin``/``.safetensors`` file, a directory holding one, or an http(s) URL.
        map_location: device for the tensors.
        weights_only: ``True`` only unpickles tensors and plain containers; ``False`` unpickles
            anything (only for files you trust); ``None`` tries the safe way first and falls back to
            full unpickling with a warning, because upstream training checkpoints pickle config objects.
    """
    src = str(path_or_url)
    path = _download(src) if _is_url(src) else _resolve_file(Path(src))
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file

        return load_file(str(path), device=str(map_location))
    try:
        obj = torch.load(path, map_location=map_location, weights_only=weights_only is not False)
    except pickle.UnpicklingError as err:
        if weights_only:
            raise CheckpointFormatError(
                f'{path}: contains pickled objects other than tensors; pass weights_only=False if you trust it ({err})'
            ) from err
        warnings.warn(
            f'{path}: not loadable with weights_only=True (it pickles non-tensor objects); '
            'loading with full unpickling — only do this for files you trust.',
            stacklevel=2,
        )
        obj = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(obj, Mapping):
        raise CheckpointFormatError(f'{path}: expected a dict checkpoint, got {type(obj).__name__}')
    return dict(obj)


# ------------------------------------------------------------------------------------- recognising
def detect_format(ckpt: Mapping[str, Any]) -> str:
    """Name the container format of a loaded checkpoint (see module docstring).

    Returns ``'state_dict'`` for a bare tensor dict that is not HuggingFace-style.
    """
    meta = ckpt.get('meta')
    if isinstance(meta, Mapping) and meta.get('format') == 'interndrive':
        return 'interndrive'
    if isinstance(ckpt.get('model'), Mapping) or isinstance(ckpt.get('model_ema'), Mapping):
        return 'classification'
    if isinstance(ckpt.get('state_dict'), Mapping):
        return 'mmdet'
    tensors = [k for k, v in ckpt.items() if isinstance(v, torch.Tensor)]
    if tensors and all(k.startswith('model.') for k in tensors):
        return 'huggingface'
    if tensors:
        return 'state_dict'
    raise CheckpointFormatError(
        f"not a checkpoint: expected 'model', 'model_ema' or 'state_dict' entries or a tensor dict, got keys {sorted(ckpt)[:10]}"
    )


def strip_prefixes(key: str, prefixes: Sequence[str]) -> str:
    """Removes any run of `prefixes` from the front of `key` (`module.module.x` -> `x`).

    Args:
        key: A state-dict key.
        prefixes: Wrapper prefixes, each ending in `.` (e.g. `('module.',)` for DDP).
    """
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def _strip_wrappers(key: str) -> str:
    return strip_prefixes(key, _WRAPPER_PREFIXES)


def extract_backbone_state_dict(
    ckpt: Mapping[str, Any],
    prefix: str | None = None,
    use_ema: bool = False,
    source: str = '<dict>',
) -> tuple[dict[str, torch.Tensor], str, str]:
    """Find the InternImage weights in a checkpoint and return them under our (= upstream) key names.

    Args:
        ckpt: loaded checkpoint (any format).
        prefix: prefix in front of the backbone keys after wrapper prefixes (``module.``,
            ``student.``) are removed; ``None`` finds it from the stem key
            (``backbone.``, ``img_backbone.``, ``model.``, …). Use it when a checkpoint holds two backbones.
        use_ema: take ``model_ema`` from a classification checkpoint.
        source: name used in error messages.

    Returns:
        ``(state_dict, format, prefix)``.
    """
    fmt = detect_format(ckpt)
    if fmt == 'classification':
        key = 'model_ema' if use_ema or 'model' not in ckpt else 'model'
        if key not in ckpt:
            raise CheckpointFormatError(
                f"{source}: use_ema=True but the checkpoint has no 'model_ema'"
            )
        sd = ckpt[key]
    elif fmt in ('mmdet', 'interndrive'):
        sd = ckpt['state_dict']
    else:
        sd = ckpt
    sd = {_strip_wrappers(k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if prefix is None:
        stems = sorted(
            k[: -len(STEM_KEY)]
            for k in sd
            if k.endswith(STEM_KEY) and (k == STEM_KEY or k[: -len(STEM_KEY)].endswith('.'))
        )
        if not stems:
            raise CheckpointFormatError(
                f'{source}: no InternImage weights found (no key ending in {STEM_KEY!r}); '
                f'first keys: {sorted(sd)[:5]}'
            )
        if len(stems) > 1:
            raise CheckpointFormatError(
                f'{source}: several InternImage backbones found under prefixes {stems}; pass prefix= to choose'
            )
        prefix = stems[0]
    out = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    if not out:
        raise CheckpointFormatError(f'{source}: no keys start with prefix {prefix!r}')
    if fmt == 'huggingface' or any(k.endswith(('.layer_scale1', '.layer_scale2')) for k in out):
        renamed = {}
        for k, v in out.items():
            for old, new in _HF_RENAMES:
                if k.endswith(old):
                    k = k[: -len(old)] + new
            renamed[k] = v
        out = renamed
    return out, fmt, prefix


# ----------------------------------------------------------------------------------------- loading
def load_internimage_checkpoint(
    model: nn.Module,
    path_or_url: str | os.PathLike[str] | Mapping[str, Any],
    strict: bool = False,
    map_location: str | torch.device = 'cpu',
    prefix: str | None = None,
    use_ema: bool = False,
    weights_only: bool | None = None,
) -> LoadReport:
    """Load InternImage weights from any supported checkpoint format into ``model``.

    Args:
        model: an :class:`~interndrive.common.backbones.InternImage` (or a module with the same keys).
        path_or_url: file, HF directory, http(s) URL, or an already loaded checkpoint dict.
        strict: raise :class:`CheckpointMismatchError` listing missing / unexpected / mismatched keys
            instead of loading what matches. Head keys of a classification checkpoint loaded into a
            headless backbone are not an error (``report.ignored_head``).
        map_location: device to load tensors to before copying.
        prefix: see :func:`extract_backbone_state_dict`.
        use_ema: load ``model_ema`` of a classification training checkpoint.
        weights_only: see :func:`read_checkpoint`.

    Returns:
        A :class:`LoadReport`; also logged at INFO (WARNING when incomplete).
    """
    if isinstance(path_or_url, Mapping):
        source, ckpt = '<dict>', dict(path_or_url)
    else:
        source = str(path_or_url)
        ckpt = read_checkpoint(path_or_url, map_location=map_location, weights_only=weights_only)
    sd, fmt, found_prefix = extract_backbone_state_dict(
        ckpt, prefix=prefix, use_ema=use_ema, source=source
    )
    report = LoadReport(source=source, source_format=fmt, prefix=found_prefix)

    own = model.state_dict()
    has_head = any(k.startswith(HEAD_PREFIXES) for k in own)
    to_load: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key not in own:
            if not has_head and key.startswith(HEAD_PREFIXES):
                report.ignored_head.append(key)
            else:
                report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            to_load[key] = value
    report.missing = [k for k in own if k not in sd]
    if strict and not report.complete:
        raise CheckpointMismatchError(f'strict loading failed for {report.summary(limit=50)}')
    model.load_state_dict(to_load, strict=False)
    report.loaded = list(to_load)
    logger.log(logging.INFO if report.complete else logging.WARNING, '%s', report.summary())
    return report


# ----------------------------------------------------------------------------------------- writing
def to_format(
    state_dict: Mapping[str, torch.Tensor],
    target_format: str,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Wrap backbone weights (our = upstream key names) in one of :data:`FORMATS`.

    Args:
        state_dict: InternImage weights without prefixes.
        target_format: ``'interndrive'``, ``'classification'``, ``'mmdet'`` or ``'huggingface'``.
        meta: extra metadata for the formats that carry it (interndrive, mmdet).
    """
    sd = {k: v for k, v in state_dict.items()}
    meta = dict(meta or {})
    if target_format == 'interndrive':
        return {
            'state_dict': sd,
            'meta': {**meta, 'format': 'interndrive', 'format_version': FORMAT_VERSION},
        }
    if target_format == 'classification':
        return {'model': sd}
    if target_format == 'mmdet':
        return {'state_dict': {f'backbone.{k}': v for k, v in sd.items()}, 'meta': meta}
    if target_format == 'huggingface':
        out = {}
        for k, v in sd.items():
            for new, old in _HF_RENAMES:  # gamma1 -> layer_scale1, as CLS/huggingface/convert.py
                if k.endswith(old):
                    k = k[: -len(old)] + new
            out[f'model.{k}'] = v
        return out
    raise ValueError(f'target_format must be one of {FORMATS}, got {target_format!r}')


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` (or safetensors for ``*.safetensors``), written atomically (``engine.atomic_files``)."""
    path = Path(path)
    if path.suffix != '.safetensors':
        atomic_write(path, lambda f: torch.save(obj, f))
        return
    from safetensors.torch import save

    if not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f'{path}: safetensors can only store a flat tensor dict (use the huggingface format)'
        )
    atomic_write_bytes(
        path, save({k: v.contiguous() for k, v in obj.items()}, metadata={'format': 'pt'})
    )
