"""The published InternImage variants (T, S, B, L, XL, H) and their builder functions.

Hyperparameters from upstream ``classification/configs/*.yaml`` (REFERENCE.md Part 1 §1.1). G is not
offered: no AD task uses it and its 3B parameters do not fit the CPU targets of this project.
"""

from __future__ import annotations

from typing import Any

import torch

from .internimage import InternImage

__all__ = [
    'AD_INTERNIMAGE_S',
    'VARIANTS',
    'count_parameters',
    'create_internimage',
    'internimage_b',
    'internimage_h',
    'internimage_l',
    'internimage_s',
    'internimage_t',
    'internimage_xl',
    'list_internimage_variants',
]

_COMMON: dict[str, Any] = dict(
    core_op='DCNv3', mlp_ratio=4.0, act_layer='GELU', norm_layer='LN', cls_scale=1.5
)

#: Constructor arguments of each ImageNet variant (drop_path_rate is the IN-1K training value).
VARIANTS: dict[str, dict[str, Any]] = {
    'internimage_t': dict(
        channels=64, depths=(4, 4, 18, 4), groups=(4, 8, 16, 32),
        layer_scale=None, offset_scale=1.0, post_norm=False, drop_path_rate=0.1,
    ),
    'internimage_s': dict(
        channels=80, depths=(4, 4, 21, 4), groups=(5, 10, 20, 40),
        layer_scale=1e-5, offset_scale=1.0, post_norm=True, drop_path_rate=0.4,
    ),
    'internimage_b': dict(
        channels=112, depths=(4, 4, 21, 4), groups=(7, 14, 28, 56),
        layer_scale=1e-5, offset_scale=1.0, post_norm=True, drop_path_rate=0.5,
    ),
    'internimage_l': dict(
        channels=160, depths=(5, 5, 22, 5), groups=(10, 20, 40, 80),
        layer_scale=1e-5, offset_scale=2.0, post_norm=True, drop_path_rate=0.1,
    ),
    'internimage_xl': dict(
        channels=192, depths=(5, 5, 24, 5), groups=(12, 24, 48, 96),
        layer_scale=1e-5, offset_scale=2.0, post_norm=True, drop_path_rate=0.2,
    ),
    'internimage_h': dict(
        channels=320, depths=(6, 6, 32, 6), groups=(10, 20, 40, 80),
        layer_scale=None, offset_scale=1.0, post_norm=False, drop_path_rate=0.2,
        res_post_norm=True, dw_kernel_size=5, level2_post_norm=True,
        level2_post_norm_block_ids=(5, 11, 17, 23, 29), center_feature_scale=True,
        use_clip_projector=True,
    ),
}  # fmt: skip

#: The InternImage-S backbone exactly as the three AD configs use it (layer_scale 1.0, drop_path 0.3).
AD_INTERNIMAGE_S: dict[str, Any] = dict(
    VARIANTS['internimage_s'],
    layer_scale=1.0,
    drop_path_rate=0.3,
    num_classes=0,
    out_indices=(0, 1, 2, 3),
)


def list_internimage_variants() -> list[str]:
    """Names accepted by :func:`create_internimage`."""
    return list(VARIANTS)


def _variant_kwargs(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    key = name.lower().replace('-', '_')
    if not key.startswith('internimage_'):
        key = f'internimage_{key}'
    if key not in VARIANTS:
        raise ValueError(
            f'create_internimage: unknown variant {name!r}; expected one of {list(VARIANTS)}'
        )
    kwargs = {**_COMMON, 'num_classes': 1000, **VARIANTS[key], **overrides}
    return kwargs


def create_internimage(name: str, pretrained: str | None = None, **overrides: Any) -> InternImage:
    """Build an InternImage variant by name, optionally loading weights.

    Args:
        name: ``'internimage_t'`` … ``'internimage_h'`` (also ``'t'``, ``'S'``, ``'internimage-b'``).
        pretrained: path or URL of a checkpoint in any supported format (classification, mmdet,
            HuggingFace, interndrive); loaded non-strictly, head keys are dropped when
            ``num_classes=0``.
        **overrides: any :class:`InternImage` argument, e.g. ``num_classes=0, out_indices=(1, 2, 3)``,
            ``core_op='DCNv3_pytorch'``, ``with_cp=True``, ``drop_path_rate=0.3``. The default is
            ``num_classes=1000`` (the ImageNet head) as in timm.

    Returns:
        The model, in train mode, on the current default device.
    """
    model = InternImage(**_variant_kwargs(name, overrides))
    if pretrained is not None:
        from ..checkpoint import load_internimage_checkpoint

        load_internimage_checkpoint(model, pretrained, strict=False)
    return model


def count_parameters(name: str, **overrides: Any) -> int:
    """Number of parameters of a variant, counted on the ``meta`` device (no memory, ~1 s for H).

    Args:
        name: variant name as for :func:`create_internimage`.
        **overrides: InternImage arguments (default ``num_classes=1000``, as the published counts).
    """
    with torch.device('meta'):
        model = InternImage(**_variant_kwargs(name, overrides))
    return sum(p.numel() for p in model.parameters())


def internimage_t(pretrained: str | None = None, **overrides: Any) -> InternImage:
    """InternImage-T: C=64, depths (4,4,18,4), groups (4,8,16,32), pre-norm, no layer scale; 29.92M params.

    Args:
        pretrained: checkpoint path/URL (any supported format), or None for random init.
        **overrides: InternImage arguments replacing the variant's values (e.g. ``num_classes=0``).
    """
    return create_internimage('internimage_t', pretrained, **overrides)


def internimage_s(pretrained: str | None = None, **overrides: Any) -> InternImage:
    """InternImage-S: C=80, depths (4,4,21,4), groups (5,10,20,40), post-norm, layer scale 1e-5; 50.08M.

    The AD configs use this with ``layer_scale=1.0, drop_path_rate=0.3`` (see ``AD_INTERNIMAGE_S``).

    Args:
        pretrained: checkpoint path/URL (any supported format), or None for random init.
        **overrides: InternImage arguments replacing the variant's values.
    """
    return create_internimage('internimage_s', pretrained, **overrides)


def internimage_b(pretrained: str | None = None, **overrides: Any) -> InternImage:
    """InternImage-B: C=112, depths (4,4,21,4), groups (7,14,28,56), post-norm, layer scale; 97.46M.

    Args:
        pretrained: checkpoint path/URL (any supported format), or None for random init.
        **overrides: InternImage arguments replacing the variant's values.
    """
    return create_internimage('internimage_b', pretrained, **overrides)


def internimage_l(pretrained: str | None = None, **overrides: Any) -> InternImage:
    """InternImage-L: C=160, depths (5,5,22,5), groups (10,20,40,80), offset_scale 2; 223.33M.

    Args:
        pretrained: checkpoint path/URL (any supported format), or None for random init.
        **overrides: InternImage arguments replacing the variant's values.
    """
    return create_internimage('internimage_l', pretrained, **overrides)


def internimage_xl(pretrained: str | None = None, **overrides: Any) -> InternImage:
    """InternImage-XL: C=192, depths (5,5,24,5), groups (12,24,48,96), offset_scale 2; 334.82M.

    Args:
        pretrained: checkpoint path/URL (any supported format), or None for random init.
        **overrides: InternImage arguments replacing the variant's values.
    """
    return create_internimage('internimage_xl', pretrained, **overrides)


def internimage_h(pretrained: str | None = None, **overrides: Any) -> InternImage:
    """InternImage-H: C=320, depths (6,6,32,6), groups (10,20,40,80) (32 ch/group), res-post-norm,
    dw kernel 5, stage-2 post norms after blocks 5,11,17,23,29, center feature scale, CLIP-projector
    head; 1089.64M params with the head.

    Args:
        pretrained: checkpoint path/URL (any supported format), or None for random init.
        **overrides: InternImage arguments replacing the variant's values.
    """
    return create_internimage('internimage_h', pretrained, **overrides)
