"""The 7-camera image steps with their camera-matrix bookkeeping (pure numpy + OpenCV).

Resizing scales pixel coordinates, so intrinsics (and ego→image matrices) are left-multiplied by
diag(sx, sy, 1). Padding at the right/bottom adds pixels without moving any, so the camera matrices stay
as they are. Upstream rescales them on padding as if the image had been stretched (a ~5 % horizontal
misregistration for 455 → 480); `upstream_pad_rescale=True` reproduces that only to run its weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGENET_STD_RGB = (58.395, 57.12, 57.375)


def scale_matrix(sx: float, sy: float, size: int = 3) -> np.ndarray:
    m = np.eye(size)
    m[0, 0], m[1, 1] = sx, sy
    return m


def resize_views(
    images: Sequence[np.ndarray], size_hw: tuple[int, int], matrices: Sequence[np.ndarray] = ()
) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[float, float]]]:
    """Resizes every view to `size_hw` (bilinear) and updates 3×3 or 4×4 camera matrices.

    Args:
        images: H×W×C images (views may differ in size, e.g. AV2's portrait front camera).
        size_hw: Target (height, width), e.g. (256, 455).
        matrices: Per view, a 3×3 intrinsic or a 4×4 ego→image matrix (may be empty).

    Returns:
        (resized images, updated matrices, per-view (sx, sy) scale factors).
    """
    h, w = size_hw
    out_imgs, out_mats, scales = [], [], []
    for i, img in enumerate(images):
        sy, sx = h / img.shape[0], w / img.shape[1]
        out_imgs.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR))
        scales.append((sx, sy))
        if matrices:
            m = np.asarray(matrices[i], dtype=np.float64)
            out_mats.append(scale_matrix(sx, sy, m.shape[0]) @ m)
    return out_imgs, out_mats, scales


def pad_views(
    images: Sequence[np.ndarray],
    size_divisor: int = 32,
    matrices: Sequence[np.ndarray] = (),
    upstream_pad_rescale: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray], tuple[int, int]]:
    """Zero-pads every view at the right/bottom to a common size divisible by `size_divisor`.

    Returns:
        (padded images, camera matrices (unchanged unless `upstream_pad_rescale`), padded (h, w)).
    """
    hmax = max(img.shape[0] for img in images)
    wmax = max(img.shape[1] for img in images)
    ph = -(-hmax // size_divisor) * size_divisor
    pw = -(-wmax // size_divisor) * size_divisor
    out_imgs, out_mats = [], []
    for i, img in enumerate(images):
        pad = np.zeros((ph, pw, *img.shape[2:]), dtype=img.dtype)
        pad[: img.shape[0], : img.shape[1]] = img
        out_imgs.append(pad)
        if matrices:
            m = np.asarray(matrices[i], dtype=np.float64)
            if upstream_pad_rescale:
                m = scale_matrix(pw / img.shape[1], ph / img.shape[0], m.shape[0]) @ m
            out_mats.append(m)
    return out_imgs, out_mats, (ph, pw)


def normalize_views(
    images: Sequence[np.ndarray],
    mean: Sequence[float] = IMAGENET_MEAN_RGB,
    std: Sequence[float] = IMAGENET_STD_RGB,
    to_rgb: bool = True,
) -> list[np.ndarray]:
    """float32 (img − mean) / std per channel; `to_rgb` converts BGR input (OpenCV decoding) first."""
    mean_a, std_a = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    out = []
    for img in images:
        x = img[..., ::-1] if to_rgb else img
        out.append((x.astype(np.float32) - mean_a) / std_a)
    return out


def ego2img(intrinsic: np.ndarray, extrinsic: np.ndarray) -> np.ndarray:
    """4×4 ego→image matrix: [K 0; 0 1] @ ego→camera."""
    k4 = np.eye(4)
    k4[:3, :3] = np.asarray(intrinsic, dtype=np.float64)
    return k4 @ np.asarray(extrinsic, dtype=np.float64)
