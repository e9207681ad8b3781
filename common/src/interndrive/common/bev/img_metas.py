"""Reading the per-sample metadata the BEV encoder needs, with errors that say what is wrong.

Metadata interface (one dict per sample, as upstream BEVFormer and mmdet3d `metainfo`):

* `lidar2img`: `(num_cams, 4, 4)` array (or list of `num_cams` 4×4 arrays) mapping points of the
  BEV frame to homogeneous pixels `(u·d, v·d, d, 1)` of each camera.
* `ego2lidar` (optional): `(4, 4)`; when present, points are mapped with `lidar2img @ ego2lidar`
  (the BEV grid then lives in the ego frame, as for Occ3D).
* `img_shape` / `pad_shape`: `(h, w)` or `(h, w, c)` shared by all cameras, or one such tuple per
  camera. Which one normalises the projection is the `image_size_key` of the encoder.
* `can_bus`: `(18,)` array: `[0:3]` ego translation (delta to the previous frame when temporal),
  `[-2]` ego yaw in radians, `[-1]` yaw (delta) in degrees. Only read when it is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

CAN_BUS_DIMS = 18
IMAGE_SIZE_KEYS = ('pad_shape', 'img_shape')


def _as_array(value: Any, where: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().double().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{where} must be numeric, got {type(value).__name__}: {err}') from None


def _check_metas(img_metas: Sequence[Mapping[str, Any]], batch_size: int | None) -> None:
    if isinstance(img_metas, Mapping) or not isinstance(img_metas, Sequence):
        raise TypeError(
            f'img_metas must be a list with one dict per sample, got {type(img_metas).__name__}'
        )
    if batch_size is not None and len(img_metas) != batch_size:
        raise ValueError(
            f'img_metas has {len(img_metas)} entries but the batch has {batch_size} samples'
        )


def _require(meta: Mapping[str, Any], key: str, index: int) -> Any:
    if not isinstance(meta, Mapping):
        raise TypeError(f'img_metas[{index}] must be a dict, got {type(meta).__name__}')
    if key not in meta:
        raise KeyError(f'img_metas[{index}] has no {key!r} (keys: {sorted(meta)})')
    return meta[key]


def lidar2img_from_metas(
    img_metas: Sequence[Mapping[str, Any]],
    num_cams: int,
    device: torch.device | str | None = None,
) -> Tensor:
    """Stacks `lidar2img` (times `ego2lidar` when given) of every sample.

    Args:
        img_metas: One metadata dict per sample (see the module docstring).
        num_cams: Number of cameras the model was built for.
        device: Device of the result.

    Returns:
        `(B, num_cams, 4, 4)` float32 tensor.
    """
    _check_metas(img_metas, None)
    mats = []
    for index, meta in enumerate(img_metas):
        where = f'img_metas[{index}][{"lidar2img"!r}]'
        lidar2img = _as_array(_require(meta, 'lidar2img', index), where)
        if lidar2img.shape != (num_cams, 4, 4):
            raise ValueError(f'{where} must have shape ({num_cams}, 4, 4), got {lidar2img.shape}')
        ego2lidar = meta.get('ego2lidar')
        if ego2lidar is not None:
            where_e = f'img_metas[{index}][{"ego2lidar"!r}]'
            ego2lidar = _as_array(ego2lidar, where_e)
            if ego2lidar.shape != (4, 4):
                raise ValueError(f'{where_e} must have shape (4, 4), got {ego2lidar.shape}')
            lidar2img = lidar2img @ ego2lidar
        if not np.isfinite(lidar2img).all():
            raise ValueError(f'{where} contains NaN or inf')
        mats.append(lidar2img)
    return torch.as_tensor(np.stack(mats), dtype=torch.float32, device=device)


def _parse_image_size(value: Any, num_cams: int, where: str) -> np.ndarray:
    arr = _as_array(value, where)
    if arr.ndim == 1 and arr.shape[0] in (2, 3):
        return np.broadcast_to(arr[:2], (num_cams, 2)).copy()
    if arr.ndim == 2 and arr.shape[0] == num_cams and arr.shape[1] in (2, 3):
        return arr[:, :2].copy()
    raise ValueError(
        f'{where} must be (h, w[, c]) or one such entry per camera ({num_cams}), got shape {arr.shape}'
    )


def image_size_from_metas(
    img_metas: Sequence[Mapping[str, Any]],
    num_cams: int,
    key: str = 'pad_shape',
    device: torch.device | str | None = None,
) -> Tensor:
    """Image `(height, width)` that normalises projected pixels, per sample and camera.

    Args:
        img_metas: One metadata dict per sample.
        num_cams: Number of cameras.
        key: `'pad_shape'` (the size the features were computed on; falls back to `img_shape` for
            a sample without padding information) or `'img_shape'` (strict; upstream OpenLane-V2
            normalises by the unpadded size).
        device: Device of the result.

    Returns:
        `(B, num_cams, 2)` float32 tensor of `(h, w)`.
    """
    if key not in IMAGE_SIZE_KEYS:
        raise ValueError(f'image_size_key must be one of {IMAGE_SIZE_KEYS}, got {key!r}')
    _check_metas(img_metas, None)
    sizes = []
    for index, meta in enumerate(img_metas):
        use_key = key
        if key == 'pad_shape' and isinstance(meta, Mapping) and 'pad_shape' not in meta:
            use_key = 'img_shape'  # no padding recorded: the padded size is the image size
        where = f'img_metas[{index}][{use_key!r}]'
        size = _parse_image_size(_require(meta, use_key, index), num_cams, where)
        if (size <= 0).any():
            raise ValueError(f'{where} must be positive, got {size.tolist()}')
        sizes.append(size)
    return torch.as_tensor(np.stack(sizes), dtype=torch.float32, device=device)


def can_bus_from_metas(img_metas: Sequence[Mapping[str, Any]]) -> Tensor:
    """Stacks the 18-d CAN-bus vectors of every sample as a float64 CPU tensor `(B, 18)`.

    It stays on the CPU in float64 (poses are global coordinates of thousands of metres, and some
    devices have no float64); callers move what they need.
    """
    _check_metas(img_metas, None)
    rows = []
    for index, meta in enumerate(img_metas):
        where = f'img_metas[{index}][{"can_bus"!r}]'
        can_bus = _as_array(_require(meta, 'can_bus', index), where).reshape(-1)
        if can_bus.shape != (CAN_BUS_DIMS,):
            raise ValueError(f'{where} must have {CAN_BUS_DIMS} values, got {can_bus.shape[0]}')
        if not np.isfinite(can_bus).all():
            raise ValueError(f'{where} contains NaN or inf')
        rows.append(can_bus)
    return torch.as_tensor(np.stack(rows), dtype=torch.float64)
