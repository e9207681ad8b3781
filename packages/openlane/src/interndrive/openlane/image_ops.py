"""Multi-view image operations of the OpenLane-V2 pipeline (pure numpy/OpenCV, no mmcv).

The 7 ring images differ in shape: the front-center camera is portrait (1550 × 2048, W × H), the
six others landscape (2048 × 1550). Upstream's `ResizeFrontView` calls `mmcv.imresize(img, (h, w))`,
which takes (w, h): the front image is stretched to 2048 × 1550 (×1.32 horizontally, ×0.76
vertically). Here the front view is resized **uniformly** to the height of the other views
(1173 × 1550) and then padded like every view; `upstream_swap=True` reproduces the stretch (only for
running the released weights, which were trained with it). Intrinsics and traffic-element boxes
are scaled with the image in both modes.

Photometric distortion runs on 0–255 pixel values **before** normalisation (upstream applies it
after normalisation, where ±32 brightness and HSV conversion make no sense).
"""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN_RGB = np.array([123.675, 116.28, 103.53], dtype=np.float32)
IMAGENET_STD_RGB = np.array([58.395, 57.12, 57.375], dtype=np.float32)


def resize_front_view(
    img: np.ndarray,
    intrinsic: np.ndarray,
    boxes: np.ndarray | None,
    target_height: int,
    upstream_swap: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple[float, float]]:
    """Resizes the portrait front image; returns (image, scaled K, scaled boxes, (sx, sy)).

    Args:
        img: (H, W, 3) image.
        intrinsic: (3, 3) camera matrix of `img`.
        boxes: (T, 4) xyxy traffic-element boxes in `img` pixels, or None.
        target_height: Height of the other views (uniform mode: the front view gets this height).
        upstream_swap: Reproduce upstream: output (W, H) = (H_in, W_in), a non-uniform stretch.
    """
    import cv2

    h, w = img.shape[:2]
    if upstream_swap:
        new_w, new_h = h, w
    else:
        scale = target_height / h
        new_w, new_h = round(w * scale), target_height
    sx, sy = new_w / w, new_h / h
    out = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    k = np.asarray(intrinsic, dtype=np.float64).copy()
    k[0] *= sx
    k[1] *= sy
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float32) * np.array([sx, sy, sx, sy], dtype=np.float32)
    return out, k, boxes, (sx, sy)


def scale_view(
    img: np.ndarray, intrinsic: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Resizes one view by `scale` (sizes rounded); returns (image, scaled K, exact (sx, sy)).

    Used to run the pipeline on real images at a fraction of their 2048×1550 size (a CPU model
    such as the tiny config is meant for 1/16); the projection stays exact because K is scaled by
    the per-axis factor of the rounded size.
    """
    import cv2

    h, w = img.shape[:2]
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    sx, sy = new_w / w, new_h / h
    # INTER_AREA averages the source pixels when shrinking (no aliasing); linear when enlarging.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.resize(img, (new_w, new_h), interpolation=interpolation)
    k = np.asarray(intrinsic, dtype=np.float64).copy()
    k[0] *= sx
    k[1] *= sy
    return out, k, (sx, sy)


def photometric_distortion(
    img: np.ndarray,
    rng: np.random.Generator,
    brightness_delta: float = 32,
    contrast_range: tuple[float, float] = (0.5, 1.5),
    saturation_range: tuple[float, float] = (0.5, 1.5),
    hue_delta: float = 18,
) -> np.ndarray:
    """mmdet's PhotoMetricDistortion on an RGB image with values in [0, 255] (float32 out).

    Each of brightness, contrast (before or after the HSV steps), saturation and hue is applied
    with probability 0.5, like mmdet; values are clipped to [0, 255] after each step.
    """
    import cv2

    out = np.asarray(img, dtype=np.float32).copy()
    if rng.random() < 0.5:
        out = np.clip(out + rng.uniform(-brightness_delta, brightness_delta), 0, 255)
    contrast_first = rng.random() < 0.5

    def contrast(x: np.ndarray) -> np.ndarray:
        if rng.random() < 0.5:
            x = np.clip(x * rng.uniform(*contrast_range), 0, 255)
        return x

    if contrast_first:
        out = contrast(out)
    hsv = cv2.cvtColor(out / 255.0, cv2.COLOR_RGB2HSV)  # H in [0, 360), S, V in [0, 1]
    if rng.random() < 0.5:
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*saturation_range), 0, 1)
    if rng.random() < 0.5:
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue_delta, hue_delta) * 2) % 360
    out = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0, 0, 255)
    if not contrast_first:
        out = contrast(out)
    return out.astype(np.float32)


def normalize(
    img: np.ndarray, mean: np.ndarray = IMAGENET_MEAN_RGB, std: np.ndarray = IMAGENET_STD_RGB
) -> np.ndarray:
    """(img - mean) / std per channel, float32 (RGB input, ImageNet statistics by default)."""
    return ((np.asarray(img, dtype=np.float32) - mean) / std).astype(np.float32)


def pad_views(imgs: list[np.ndarray], size_divisor: int = 32) -> tuple[np.ndarray, tuple[int, int]]:
    """Pads every view at the bottom/right to the largest H and W, rounded up to `size_divisor`;
    returns the (V, H, W, C) stack and the padded (H, W). Intrinsics need no change."""
    h = max(i.shape[0] for i in imgs)
    w = max(i.shape[1] for i in imgs)
    h, w = -(-h // size_divisor) * size_divisor, -(-w // size_divisor) * size_divisor
    out = np.zeros((len(imgs), h, w, imgs[0].shape[2]), dtype=imgs[0].dtype)
    for k, img in enumerate(imgs):
        out[k, : img.shape[0], : img.shape[1]] = img
    return out, (h, w)


def lidar2img(intrinsic: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4×4 ego→pixel projection from K and the camera→ego extrinsic (rotation, translation)."""
    rot = np.asarray(rotation, dtype=np.float64)
    ego2cam = np.eye(4)
    ego2cam[:3, :3] = rot.T
    ego2cam[:3, 3] = -rot.T @ np.asarray(translation, dtype=np.float64)
    k = np.eye(4)
    k[:3, :3] = intrinsic
    return k @ ego2cam
