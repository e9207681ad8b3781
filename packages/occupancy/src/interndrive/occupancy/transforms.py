"""Multi-view data transforms of the occupancy pipeline (mmcv/mmengine `BaseTransform`s, registered in
mmdet3d's TRANSFORMS registry; this is OpenMMLab glue, the arithmetic is plain numpy/cv2).

Pipeline of the reference config (REFERENCE.md Part 1 §3.4): OccLoadMultiViewImages → LoadOccupancyGT →
OccPhotoMetricDistortionMultiView (train) → OccNormalizeMultiViewImage → OccPadMultiViewImage(32) → PackOccInputs.
`OccScaleMultiViewImage` is the tiny-config addition (small images on CPU); it rescales the intrinsics.

Results keys: `img_filename` (6 paths) → `img` (list of H×W×3 float32 BGR), `lidar2img` / `cam2img`
(lists of 4×4), `img_shape` / `ori_shape` / `pad_shape` (lists of (H, W)), `occ_gt_path` →
`voxel_semantics`, `mask_lidar`, `mask_camera` ((200, 200, 16) uint8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS

from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.formats import load_labels


@TRANSFORMS.register_module()
class OccLoadMultiViewImages(BaseTransform):
    """Reads the camera images listed in `img_filename` (BGR, as mmcv does).

    Args:
        to_float32: Convert to float32 (the reference pipeline does).
    """

    def __init__(self, to_float32: bool = True) -> None:
        self.to_float32 = to_float32

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        images = []
        for path in results['img_filename']:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise OccupancyDataError(f'camera image {str(path)!r} is missing or not an image')
            images.append(image.astype(np.float32) if self.to_float32 else image)
        results['img'] = images
        shapes = [image.shape[:2] for image in images]
        results['img_shape'] = list(shapes)
        results['ori_shape'] = list(shapes)
        results['pad_shape'] = list(shapes)
        return results


@TRANSFORMS.register_module()
class LoadOccupancyGT(BaseTransform):
    """Loads the Occ3D `labels.npz` at `occ_gt_path` into voxel_semantics / mask_lidar / mask_camera."""

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        path = results.get('occ_gt_path')
        if not path:
            raise OccupancyDataError(
                f'sample {results.get("token")}: no occ_gt_path (test split?); drop LoadOccupancyGT'
            )
        labels = load_labels(path)
        results['voxel_semantics'] = labels.semantics
        results['mask_lidar'] = labels.mask_lidar
        results['mask_camera'] = labels.mask_camera
        return results


@TRANSFORMS.register_module()
class OccScaleMultiViewImage(BaseTransform):
    """Resizes every image by `scale` and scales the intrinsics (`cam2img`, `lidar2img`) to match.

    Args:
        scale: Resize factor (e.g. 0.1 for 160×90 from 1600×900).
    """

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError(f'OccScaleMultiViewImage: scale must be positive, got {scale}')
        self.scale = scale

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        resized = []
        for image in results['img']:
            height, width = image.shape[:2]
            size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
            resized.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        results['img'] = resized
        # Pixel coordinates scale with the image: u' = s·u, v' = s·v (exact up to the size rounding).
        scaling = np.diag([self.scale, self.scale, 1.0, 1.0])
        for key in ('lidar2img', 'cam2img'):
            if key in results:
                results[key] = [scaling @ np.asarray(matrix) for matrix in results[key]]
        shapes = [image.shape[:2] for image in resized]
        results['img_shape'] = list(shapes)
        results['ori_shape'] = list(shapes)
        results['pad_shape'] = list(shapes)
        return results


@TRANSFORMS.register_module()
class OccPhotoMetricDistortionMultiView(BaseTransform):
    """Independent photometric distortion of every camera image (float32 BGR in [0, 255]).

    Each step happens with probability 0.5, in mmdet's order: brightness (±`brightness_delta`),
    contrast (before or after the HSV steps), saturation, hue (±`hue_delta` degrees), channel swap.

    Args:
        brightness_delta: Maximum added brightness.
        contrast_range: Range of the contrast factor.
        saturation_range: Range of the saturation factor.
        hue_delta: Maximum hue shift in degrees.
        seed: Optional seed for reproducible tests; None draws from numpy's global generator.
    """

    def __init__(
        self,
        brightness_delta: int = 32,
        contrast_range: Sequence[float] = (0.5, 1.5),
        saturation_range: Sequence[float] = (0.5, 1.5),
        hue_delta: int = 18,
        seed: int | None = None,
    ) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_range = tuple(contrast_range)
        self.saturation_range = tuple(saturation_range)
        self.hue_delta = hue_delta
        self.rng = np.random.default_rng(seed) if seed is not None else np.random

    def _distort(self, image: np.ndarray) -> np.ndarray:
        if image.dtype != np.float32:
            raise OccupancyDataError(
                'OccPhotoMetricDistortionMultiView needs float32 images (to_float32=True)'
            )
        rng = self.rng
        image = image.copy()
        if rng.uniform() < 0.5:
            image += rng.uniform(-self.brightness_delta, self.brightness_delta)
        contrast_first = rng.uniform() < 0.5
        if contrast_first and rng.uniform() < 0.5:
            image *= rng.uniform(*self.contrast_range)
        saturate, shift_hue = rng.uniform() < 0.5, rng.uniform() < 0.5
        if saturate or shift_hue:
            hsv = cv2.cvtColor(
                np.clip(image, 0, 255), cv2.COLOR_BGR2HSV
            )  # H in degrees for float32
            if saturate:
                hsv[..., 1] *= rng.uniform(*self.saturation_range)
            if shift_hue:
                hsv[..., 0] = np.mod(
                    hsv[..., 0] + rng.uniform(-self.hue_delta, self.hue_delta), 360.0
                )
            image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        if not contrast_first and rng.uniform() < 0.5:
            image *= rng.uniform(*self.contrast_range)
        if rng.uniform() < 0.5:
            image = np.ascontiguousarray(image[..., rng.permutation(3)])
        return image

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        results['img'] = [self._distort(image) for image in results['img']]
        return results


@TRANSFORMS.register_module()
class OccNormalizeMultiViewImage(BaseTransform):
    """(img − mean) / std per channel, optionally BGR → RGB first; records `img_norm_cfg`.

    Args:
        mean: Per-channel mean (in the output channel order).
        std: Per-channel standard deviation.
        to_rgb: Convert the BGR images to RGB before normalising.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_rgb: bool = True) -> None:
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.to_rgb = to_rgb

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        images = []
        for image in results['img']:
            image = image[..., ::-1] if self.to_rgb else image
            images.append(((image - self.mean) / self.std).astype(np.float32))
        results['img'] = images
        results['img_norm_cfg'] = dict(mean=self.mean, std=self.std, to_rgb=self.to_rgb)
        return results


@TRANSFORMS.register_module()
class OccPadMultiViewImage(BaseTransform):
    """Zero-pads every image at the bottom/right to a multiple of `size_divisor`.

    Sets `pad_shape` and `img_shape` to the padded size (the encoder normalises projected points by
    `img_shape`, as upstream does) and keeps the unpadded size in `ori_shape`.
    """

    def __init__(self, size_divisor: int = 32) -> None:
        self.size_divisor = size_divisor

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        padded = []
        for image in results['img']:
            height, width = image.shape[:2]
            pad_h = -height % self.size_divisor
            pad_w = -width % self.size_divisor
            padded.append(np.pad(image, ((0, pad_h), (0, pad_w), (0, 0))))
        results['ori_shape'] = [image.shape[:2] for image in results['img']]
        results['img'] = padded
        results['pad_shape'] = [image.shape[:2] for image in padded]
        results['img_shape'] = list(results['pad_shape'])
        return results


@TRANSFORMS.register_module()
class PackOccInputs(BaseTransform):
    """Packs one frame as `{'inputs': {'img': (N_cam, 3, H, W) float tensor}, 'data_samples':
    Det3DDataSample}`; the sample carries `meta_keys` as metainfo and, when loaded, the ground truth as
    `voxel_semantics`, `mask_lidar`, `mask_camera` uint8 tensors of shape (200, 200, 16).
    """

    META_KEYS = (
        'sample_idx', 'token', 'scene_token', 'frame_idx', 'timestamp', 'img_filename', 'ori_shape',
        'img_shape', 'pad_shape', 'lidar2img', 'cam2img', 'lidar2cam', 'ego2lidar', 'lidar2ego',
        'can_bus', 'img_norm_cfg', 'prev_bev_exists', 'occ_gt_path',
    )  # fmt: skip
    GT_KEYS = ('voxel_semantics', 'mask_lidar', 'mask_camera')

    def __init__(self, meta_keys: Sequence[str] = META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict[str, Any]) -> dict[str, Any]:
        import torch
        from mmdet3d.structures import Det3DDataSample

        images = np.stack([image.transpose(2, 0, 1) for image in results['img']])
        sample = Det3DDataSample()
        sample.set_metainfo({key: results[key] for key in self.meta_keys if key in results})
        for key in self.GT_KEYS:
            if key in results:
                sample.set_field(torch.from_numpy(np.ascontiguousarray(results[key])), key)
        return {
            'inputs': {'img': torch.from_numpy(np.ascontiguousarray(images))},
            'data_samples': sample,
        }
