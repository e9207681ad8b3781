"""Imports everything the occupancy configs name, so the OpenMMLab registries know it.

`custom_imports=dict(imports=['interndrive.occupancy.registration'])` in the configs, and
`TASK.register_modules` (called by the `interndrive` CLI before a config is built), both land here.
"""

from __future__ import annotations

import mmdet.models  # noqa: F401  FPN, ResNet for 'mmdet.*' types

import interndrive.common.bev
import interndrive.common.engine.registration
import interndrive.common.openmmlab
import interndrive.occupancy.dataset
import interndrive.occupancy.evaluation
import interndrive.occupancy.models.detector
import interndrive.occupancy.transforms  # noqa: F401


def register_modules() -> None:
    """No-op: importing this module registered everything (kept callable for `Task`)."""
