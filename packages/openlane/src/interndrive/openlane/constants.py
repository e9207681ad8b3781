"""Fixed facts of OpenLane-V2 subset_A (OpenLane Topology, CVPR 2023) shared by every module."""

from __future__ import annotations

# Traffic-element attribute names in label order (devkit `TRAFFIC_ELEMENT_ATTRIBUTE`).
TRAFFIC_ELEMENT_ATTRIBUTES: tuple[str, ...] = (
    'unknown',
    'red',
    'green',
    'yellow',
    'go_straight',
    'turn_left',
    'turn_right',
    'no_left_turn',
    'no_right_turn',
    'u_turn',
    'no_u_turn',
    'slight_left',
    'slight_right',
)
NUM_ATTRIBUTES: int = len(TRAFFIC_ELEMENT_ATTRIBUTES)

# Traffic-element categories: attributes 1-3 are lights, 4-12 are signs (0 is either).
TRAFFIC_ELEMENT_CATEGORIES: dict[int, str] = {1: 'traffic_light', 2: 'road_sign'}

# The 7 Argoverse 2 ring cameras; the front-center camera is first and is a portrait image.
CAMERAS: tuple[str, ...] = (
    'ring_front_center',
    'ring_front_left',
    'ring_front_right',
    'ring_rear_left',
    'ring_rear_right',
    'ring_side_left',
    'ring_side_right',
)
FRONT_CAMERA: str = CAMERAS[0]
# (width, height) of the images on disk.
LANDSCAPE_IMAGE_SIZE: tuple[int, int] = (2048, 1550)
PORTRAIT_IMAGE_SIZE: tuple[int, int] = (1550, 2048)

# Lane-point subsampling applied by the official preprocessing (`preprocess.py`): GT lanes have
# 201 points; val/test keep every 20th point (11 points), train keeps all.
POINT_INTERVAL: dict[str, int] = {'train': 1, 'val': 20, 'test': 20}

# Metric constants (devkit `evaluate.py`).
THRESHOLDS_FRECHET: tuple[float, ...] = (1.0, 2.0, 3.0)
THRESHOLDS_IOU: tuple[float, ...] = (0.75,)
THRESHOLD_RELATIONSHIP_CONFIDENCE: float = 0.5
# Distance stored for lane pairs that fail the Chamfer pre-filter (and initial value of every matrix).
FAR_DISTANCE: float = 1024.0
METRIC_VERSIONS: tuple[str, ...] = ('1.0', '1.1')

# Bird's-eye range of the annotations in metres (x forward, y left).
BEV_RANGE: tuple[float, float, float, float] = (-50.0, -25.0, 50.0, 25.0)
