"""Test-time BEV history of a video (upstream `BEVFormerOcc.forward_test`'s `prev_frame_info`).

The dataset stores the absolute pose in the CAN bus (`[0:3]` global translation, `[-2]` yaw in
radians, `[-1]` yaw in degrees). Temporal self-attention needs the motion since the previous
frame instead: `[0:3]` and `[-1]` become deltas, `[-2]` stays the current yaw (it orients the
shift). Without history both deltas are zero. Training-time queues do the same per sample in the
dataset (upstream `union2one`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from .img_metas import CAN_BUS_DIMS


def relative_can_bus(
    can_bus: np.ndarray, prev_pos: np.ndarray | None, prev_angle: float | None
) -> np.ndarray:
    """CAN bus with `[0:3]` and `[-1]` relative to the previous frame (zeros without one).

    Args:
        can_bus: `(18,)` absolute CAN bus of the current frame.
        prev_pos: `(3,)` global translation of the previous frame, or None.
        prev_angle: Yaw of the previous frame in degrees (CAN bus `[-1]`), or None.

    Returns:
        A new `(18,)` float64 array.
    """
    out = np.array(can_bus, dtype=np.float64).reshape(-1)
    if out.shape != (CAN_BUS_DIMS,):
        raise ValueError(f'can_bus must have {CAN_BUS_DIMS} values, got {out.shape[0]}')
    if prev_pos is None or prev_angle is None:
        out[:3] = 0.0
        out[-1] = 0.0
    else:
        out[:3] -= np.asarray(prev_pos, dtype=np.float64)
        out[-1] -= float(prev_angle)
    return out


class BEVHistory:
    """Keeps the previous frame's BEV between test-time calls of a temporal model.

    Usage in a detector's test step::

        metas, prev_bev = self.history.prepare(img_metas)
        bev = self.bev_constructor(feats, metas, prev_bev=prev_bev)
        self.history.update(bev)

    History is dropped when a sample's `scene_token` changes (a new video), when the batch size
    changes, or always with `video_test_mode=False`. Deltas are per sample.

    Args:
        video_test_mode: Use the previous frame's BEV at test time (upstream config: True).
    """

    def __init__(self, video_test_mode: bool = True) -> None:
        self.video_test_mode = video_test_mode
        self.reset()

    def reset(self) -> None:
        """Forgets everything (call between evaluation runs)."""
        self.prev_bev: Tensor | None = None
        self.scene_tokens: list[Any] | None = None
        self.prev_pos: list[np.ndarray] | None = None
        self.prev_angle: list[float] | None = None

    def prepare(self, img_metas: Sequence[Mapping[str, Any]]) -> tuple[list[dict], Tensor | None]:
        """Returns copies of `img_metas` with relative CAN buses, and the usable previous BEV.

        Args:
            img_metas: One dict per sample with `can_bus` `(18,)` and `scene_token`.

        Returns:
            The metadata to pass to the constructor and `prev_bev` (None when there is no usable
            history).
        """
        tokens = []
        for index, meta in enumerate(img_metas):
            for key in ('can_bus', 'scene_token'):
                if key not in meta:
                    raise KeyError(
                        f'img_metas[{index}] has no {key!r}, needed for temporal inference'
                    )
            tokens.append(meta['scene_token'])
        same_video = (
            self.video_test_mode
            and self.prev_bev is not None
            and self.scene_tokens is not None
            and tokens == self.scene_tokens
        )
        metas: list[dict] = []
        positions, angles = [], []
        for index, meta in enumerate(img_metas):
            can_bus = np.asarray(meta['can_bus'], dtype=np.float64).reshape(-1)
            positions.append(can_bus[:3].copy())
            angles.append(float(can_bus[-1]))
            prev_pos = self.prev_pos[index] if same_video else None
            prev_angle = self.prev_angle[index] if same_video else None
            out = copy.copy(dict(meta))
            out['can_bus'] = relative_can_bus(can_bus, prev_pos, prev_angle)
            metas.append(out)
        self.scene_tokens = tokens
        self.prev_pos, self.prev_angle = positions, angles
        return metas, (self.prev_bev if same_video else None)

    def update(self, bev: Tensor) -> None:
        """Stores this frame's BEV `(B, bev_h * bev_w, C)` (detached) for the next call."""
        if self.scene_tokens is None:
            raise RuntimeError('BEVHistory.update() called before prepare()')
        if bev.shape[0] != len(self.scene_tokens):
            raise ValueError(
                f'bev has batch size {bev.shape[0]}, prepare() saw {len(self.scene_tokens)} samples'
            )
        self.prev_bev = bev.detach()
