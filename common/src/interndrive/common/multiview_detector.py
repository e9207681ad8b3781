"""What the multi-camera BEVFormer detectors share outside the BEV constructor.

`interndrive.occupancy`'s `BEVFormerOcc` and `interndrive.openlane`'s `RoadBEVFormer` both take
`inputs['img']` as `(B, N_cam, 3, H, W)` (or the list of `(N_cam, 3, H, W)` that mmengine collates),
run every camera through one image backbone + FPN as a single batch, read each data sample's
metainfo, and report their size per top-level part. Pure PyTorch (the mmengine models stay in the
task packages); duck-typed on data samples so that plain dicts work in tests and demos.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ['count_parameters_per_part', 'multiview_features', 'sample_metainfo', 'stack_images']


def sample_metainfo(sample: Any) -> Mapping[str, Any]:
    """A data sample's `metainfo` (mmengine `BaseDataElement`), or the sample itself (a dict).

    Args:
        sample: An mmengine data sample or a plain metainfo mapping.
    """
    return sample.metainfo if hasattr(sample, 'metainfo') else sample


def stack_images(inputs: Mapping[str, Any], owner: str) -> Tensor:
    """`inputs['img']` as one tensor: a list of per-sample tensors (mmengine's collate) is stacked.

    Args:
        inputs: The model's `inputs` dict.
        owner: Model name that starts the error messages (e.g. `'RoadBEVFormer'`).

    Returns:
        `(B, ...)`: the batch, with the sample shape checked by the caller (it differs per mode).

    Raises:
        KeyError: `inputs` has no `'img'`.
        ValueError: The samples' images differ in size (the pipeline must pad them to one size).
    """
    if 'img' not in inputs:
        raise KeyError(f"{owner}: inputs has no 'img' (keys: {sorted(inputs)})")
    images = inputs['img']
    if isinstance(images, Tensor):
        return images
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) != 1:
        raise ValueError(
            f'{owner}: the images of one batch must share one padded size, got {sorted(shapes)}'
        )
    return torch.stack(list(images))


def multiview_features(
    images: Tensor,
    backbone: nn.Module,
    neck: nn.Module,
    augment: Callable[[Tensor], Tensor] | None = None,
) -> list[Tensor]:
    """Backbone + neck features of every camera, computed as one batch of `B·N` images.

    Args:
        images: `(B, N, 3, H, W)`.
        backbone: Image backbone (a list/tuple of feature maps out).
        neck: Neck (FPN) over the backbone's outputs.
        augment: Applied to the `(B·N, 3, H, W)` images first (e.g. GridMask in training).

    Returns:
        The neck's levels, each `(B, N, C, h, w)`.
    """
    batch, cameras = images.shape[:2]
    flat = images.flatten(0, 1)
    if augment is not None:
        flat = augment(flat)
    return [f.reshape(batch, cameras, *f.shape[1:]) for f in neck(backbone(flat))]


def count_parameters_per_part(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level child module of `model` (parameter-free ones left out) and `total`.

    Args:
        model: A detector (e.g. `BEVFormerOcc`, `RoadBEVFormer`).
    """
    counts = {
        name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()
    }
    counts['total'] = sum(p.numel() for p in model.parameters())
    return {k: v for k, v in counts.items() if v or k == 'total'}
