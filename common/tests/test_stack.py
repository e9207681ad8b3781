"""The pinned OpenMMLab 2.0 stack imports together, with mmcv's compiled ops, on this interpreter."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch


def _version(module: str) -> tuple[int, ...]:
    mod = importlib.import_module(module)
    return tuple(int(p) for p in mod.__version__.split('+')[0].split('.')[:2])


@pytest.mark.parametrize(
    ('module', 'major_minor'),
    [('mmengine', (0, 10)), ('mmcv', (2, 1)), ('mmdet', (3, 3)), ('mmdet3d', (1, 4))],
)
def test_declared_openmmlab_versions(module: str, major_minor: tuple[int, int]) -> None:
    assert _version(module) == major_minor


def test_numpy_stays_below_2() -> None:
    # nuscenes-devkit and the mmcv build need numpy 1.x (see ci/constraints.txt).
    assert int(np.__version__.split('.')[0]) == 1


def test_mmcv_has_compiled_ops() -> None:
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    from mmcv.utils import ext_loader

    ext = ext_loader.load_ext('_ext', ['ms_deform_attn_forward', 'nms'])
    assert hasattr(ext, 'ms_deform_attn_forward')

    # mmcv's CPU fallback of deformable attention runs and is differentiable.
    value = torch.randn(1, 6, 2, 4, requires_grad=True)  # (bs, num_keys, heads, dims)
    shapes = torch.tensor([[2, 3]])
    locations = torch.rand(1, 5, 2, 1, 3, 2)  # (bs, queries, heads, levels, points, 2)
    weights = torch.softmax(torch.randn(1, 5, 2, 1, 3), -1)
    out = multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
    assert out.shape == (1, 5, 8)
    out.sum().backward()
    assert value.grad is not None and torch.isfinite(value.grad).all()


@pytest.mark.parametrize(
    'module',
    [
        'mmdet.models',
        'mmdet3d.models',
        'mmdet3d.datasets',
        'mmdet3d.structures',
        'mmdet3d.evaluation',
    ],
)
def test_mmdet3d_imports_without_its_optional_dependencies(module: str) -> None:
    # mmdet3d is installed --no-deps (its declared open3d/waymo deps are never used): the parts we use
    # must import with only ci/base_env.MMDET3D_RUNTIME installed.
    importlib.import_module(module)
