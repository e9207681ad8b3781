"""mmcv transforms of the HD map pipeline, registered in mmdet3d's TRANSFORMS (OpenMMLab adapter).

Class names carry an `HDMap` prefix: the registry is shared with the other task packages.
The maths lives in `multiview.py` and `map_targets.py`; these classes only move keys in the results dict.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS

from ..constants import ROI_SIZE
from ..errors import HDMapInputError, MissingPathError
from .map_targets import map_targets, vectorize_map
from .multiview import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, normalize_views, pad_views, resize_views


@TRANSFORMS.register_module()
class HDMapLoadMultiViewImages(BaseTransform):
    """Reads the 7 images (uint8 BGR, like OpenCV) into `img` (list) and sets `img_shape`/`ori_shape`."""

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        imgs = []
        for path in results['img_filenames']:
            if not os.path.isfile(path):
                raise MissingPathError(
                    f'image {path} of frame {results.get("token")} does not exist'
                )
            img = mmcv.imread(path, 'color')
            if img is None:
                raise HDMapInputError(
                    f'image {path} of frame {results.get("token")} could not be decoded'
                )
            imgs.append(img)
        results['img'] = imgs
        results['ori_shape'] = [i.shape[:2] for i in imgs]
        results['img_shape'] = [i.shape[:2] for i in imgs]
        return results


@TRANSFORMS.register_module()
class HDMapResizeMultiViewImages(BaseTransform):
    """Resizes every view to `size` (h, w) and rescales `cam_intrinsics` and `ego2img` accordingly."""

    def __init__(self, size: Sequence[int] = (256, 455)) -> None:
        self.size = (int(size[0]), int(size[1]))

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        imgs, k, scales = resize_views(results['img'], self.size, results['cam_intrinsics'])
        _, e2i, _ = resize_views(results['img'], self.size, results['ego2img'])
        results.update(img=imgs, cam_intrinsics=k, ego2img=e2i, scale_factor=scales)
        results['img_shape'] = [i.shape[:2] for i in imgs]
        return results


@TRANSFORMS.register_module()
class HDMapNormalizeMultiViewImages(BaseTransform):
    def __init__(self, mean=IMAGENET_MEAN_RGB, std=IMAGENET_STD_RGB, to_rgb: bool = True) -> None:
        self.mean, self.std, self.to_rgb = mean, std, to_rgb

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        results['img'] = normalize_views(results['img'], self.mean, self.std, self.to_rgb)
        results['img_norm_cfg'] = {'mean': self.mean, 'std': self.std, 'to_rgb': self.to_rgb}
        return results


@TRANSFORMS.register_module()
class HDMapPadMultiViewImages(BaseTransform):
    """Pads to a multiple of `size_divisor`. Camera matrices are unchanged (padding moves no pixel);
    `upstream_pad_rescale=True` reproduces upstream's rescaling, only for running its weights."""

    def __init__(self, size_divisor: int = 32, upstream_pad_rescale: bool = False) -> None:
        self.size_divisor = size_divisor
        self.upstream_pad_rescale = upstream_pad_rescale

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        imgs, k, pad_hw = pad_views(
            results['img'], self.size_divisor, results['cam_intrinsics'], self.upstream_pad_rescale
        )
        _, e2i, _ = pad_views(
            results['img'], self.size_divisor, results['ego2img'], self.upstream_pad_rescale
        )
        results.update(img=imgs, cam_intrinsics=k, ego2img=e2i, pad_shape=pad_hw)
        return results


@TRANSFORMS.register_module()
class HDMapVectorizeMap(BaseTransform):
    """`map_geoms` (label → ego polylines) → `vectors` (label → simplified, normalised 2-D polylines)."""

    def __init__(
        self, roi_size=ROI_SIZE, simplify_tolerance: float = 0.2, normalize: bool = True
    ) -> None:
        self.roi_size, self.simplify_tolerance, self.normalize = (
            tuple(roi_size),
            simplify_tolerance,
            normalize,
        )

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        results['vectors'] = vectorize_map(
            results['map_geoms'], self.roi_size, self.simplify_tolerance, self.normalize
        )
        return results


@TRANSFORMS.register_module()
class HDMapPolygonizeLocalMapBbox(BaseTransform):
    """`vectors` → `polys`: keypoint bboxes, labels and vertex token sequences (None without lines)."""

    def __init__(self, canvas_size=(200, 100), min_bbox_size: float = 4 / 200) -> None:
        self.canvas_size, self.min_bbox_size = tuple(canvas_size), min_bbox_size

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        results['polys'] = map_targets(results['vectors'], self.canvas_size, self.min_bbox_size)
        return results


def stack_views(results: dict[str, Any]) -> np.ndarray:
    """(7, C, H, W) float32 array of the padded views (what the model's data preprocessor batches)."""
    return np.stack([np.ascontiguousarray(i.transpose(2, 0, 1)) for i in results['img']])
