"""Backbones shared by the interndrive tasks (pure PyTorch; OpenMMLab glue is in ``..openmmlab``)."""

from .internimage import InternImage, InternImageBlock, InternImageLayer, resolve_core_op
from .layers import DropPath, build_norm_layer
from .variants import (
    AD_INTERNIMAGE_S,
    VARIANTS,
    count_parameters,
    create_internimage,
    internimage_b,
    internimage_h,
    internimage_l,
    internimage_s,
    internimage_t,
    internimage_xl,
    list_internimage_variants,
)

__all__ = [
    'AD_INTERNIMAGE_S',
    'VARIANTS',
    'DropPath',
    'InternImage',
    'InternImageBlock',
    'InternImageLayer',
    'build_norm_layer',
    'count_parameters',
    'create_internimage',
    'internimage_b',
    'internimage_h',
    'internimage_l',
    'internimage_s',
    'internimage_t',
    'internimage_xl',
    'list_internimage_variants',
    'resolve_core_op',
]
