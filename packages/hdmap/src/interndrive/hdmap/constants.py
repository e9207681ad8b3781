"""Fixed facts of the Argoverse 2 online HD map challenge (CVPR 2023) that every module shares."""

from __future__ import annotations

# Class names and the integer labels used in submissions (challenge `CAT2ID`).
CLASSES: tuple[str, ...] = ('ped_crossing', 'divider', 'boundary')
CAT2ID: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}

# Ego-frame region of interest in metres: x in [-30, 30] (forward), y in [-15, 15] (left).
ROI_SIZE: tuple[float, float] = (60.0, 30.0)

# The 7 ring cameras, in the order the annotation files list them (and the model stacks them).
CAMERAS: tuple[str, ...] = (
    'ring_front_center',
    'ring_front_left',
    'ring_front_right',
    'ring_side_left',
    'ring_side_right',
    'ring_rear_left',
    'ring_rear_right',
)

# Chamfer-AP evaluation constants (challenge `vector_eval.py`).
SAMPLE_DIST: float = 0.3  # metres between resampled points
THRESHOLDS: tuple[float, ...] = (0.5, 1.0, 1.5)  # Chamfer distance thresholds in metres

# Default `meta` block of a submission (challenge format; method details are filled by the user).
DEFAULT_META: dict[str, object] = {
    'use_lidar': False,
    'use_camera': True,
    'use_external': False,
    'output_format': 'vector',
    'method': 'VectorMapNet (InternImage-S)',
    'authors': [],
    'e-mail': '',
    'institution / company': '',
    'country / region': '',
}
