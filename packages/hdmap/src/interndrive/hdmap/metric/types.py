"""The in-memory inputs and the output keys shared by both metric implementations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from ..constants import CLASSES, THRESHOLDS

# token -> class name -> list of (N, >=2) polylines in metres (only x, y are scored).
GroundTruth = Mapping[str, Mapping[str, Sequence[Any]]]


class FramePrediction(TypedDict):
    """One frame of a submission: parallel lists, label i in {0, 1, 2} indexes `CLASSES`."""

    vectors: Sequence[Any]
    scores: Sequence[float]
    labels: Sequence[int]


# token -> predictions of that frame. Tokens missing here count as frames without predictions.
Predictions = Mapping[str, FramePrediction]


def metric_keys(thresholds: Sequence[float] = THRESHOLDS) -> list[str]:
    """Names of the values `chamfer_ap` returns, in table order.

    `mAP` and `AP_<class>` are the challenge numbers (fractions in [0, 1]); `AP_<class>@<thr>` are the
    per-threshold APs; `num_gts_<class>` / `num_preds_<class>` are counts.
    """
    keys = ['mAP'] + [f'AP_{c}' for c in CLASSES]
    for c in CLASSES:
        keys += [f'AP_{c}@{thr}' for thr in thresholds]
    keys += [f'num_gts_{c}' for c in CLASSES] + [f'num_preds_{c}' for c in CLASSES]
    return keys


def empty_frame() -> FramePrediction:
    return {'vectors': [], 'scores': [], 'labels': []}


def as_xy(vector: Any) -> np.ndarray:
    """First two columns of a polyline as a float64 (N, 2) array (z and visibility are not scored)."""
    return np.asarray(vector, dtype=np.float64)[:, :2]
