"""Imports everything the OpenLane-V2 configs name, so the OpenMMLab registries know it.

`custom_imports=dict(imports=['interndrive.openlane.registration'])` in the configs, and
`TASK.register_modules` (called by the `interndrive` CLI before a config is built), both land here.
"""

from __future__ import annotations

import mmdet.models  # noqa: F401  FPN, ResNet, losses, HungarianAssigner for 'mmdet.*' types

import interndrive.common.bev
import interndrive.common.engine.registration
import interndrive.common.openmmlab
import interndrive.openlane.datasets
import interndrive.openlane.evaluator
import interndrive.openlane.models.assigners
import interndrive.openlane.models.detector
import interndrive.openlane.models.lane_head
import interndrive.openlane.models.relationship_head
import interndrive.openlane.models.te_head  # noqa: F401


def register_modules() -> None:
    """No-op: importing this module registered everything (kept callable for `Task`)."""
