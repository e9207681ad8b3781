"""Chamfer-distance AP of the Argoverse 2 online HD map challenge.

`vectorized.chamfer_ap` is the fast implementation used everywhere; `reference` holds a
straightforward transcription of the official algorithm that the tests compare it with.
Both are pure numpy/shapely/scipy: offline scoring needs neither torch nor OpenMMLab.
"""

from .types import FramePrediction, GroundTruth, Predictions, metric_keys
from .vectorized import (
    average_precision,
    chamfer_ap,
    chamfer_distance_matrix,
    resample_polylines,
)

__all__ = [
    'FramePrediction',
    'GroundTruth',
    'Predictions',
    'average_precision',
    'chamfer_ap',
    'chamfer_distance_matrix',
    'metric_keys',
    'resample_polylines',
]
