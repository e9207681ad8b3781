"""Imports every module that registers into the OpenMMLab registries (`TASK.register_modules`)."""

from __future__ import annotations


def register_modules() -> None:
    import interndrive.common.openmmlab  # noqa: F401  (InternImage backbone, layer-decay constructor)

    from . import (
        models,  # noqa: F401
        openmmlab_metric,  # noqa: F401
    )
    from .data import dataset, pack, transforms  # noqa: F401
