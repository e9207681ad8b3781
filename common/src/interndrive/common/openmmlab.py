"""The one OpenMMLab adapter of the backbone: registers InternImage and the layer-decay constructor.

Importing this module registers

* ``InternImage`` (:class:`interndrive.common.backbones.InternImage`) into the ``MODELS`` registries of
  mmengine (root), mmdet and mmdet3d — whichever are installed — so upstream configs'
  ``backbone=dict(type='InternImage', core_op='DCNv3', channels=80, …, init_cfg=dict(type='Pretrained',
  checkpoint=…))`` build unchanged under any default scope;
* ``CustomLayerDecayOptimizerConstructor`` (upstream name) and ``LayerDecayOptimWrapperConstructor``
  into mmengine's ``OPTIM_WRAPPER_CONSTRUCTORS`` (scoped registries inherit from it).

Use ``custom_imports=dict(imports=['interndrive.common.openmmlab'])`` in a config, or import it.
The backbone core modules never import this file, so they work without mmcv/mmdet.
"""

from __future__ import annotations

import importlib

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, Registry

from .backbones import InternImage
from .optim.layer_decay_constructor import LayerDecayOptimWrapperConstructor

__all__ = ['InternImage', 'LayerDecayOptimWrapperConstructor', 'register_all']


def _register(registry: Registry, name: str, cls: type) -> None:
    existing = registry.module_dict.get(name)
    if existing is cls:
        return
    if existing is not None:
        raise KeyError(
            f'{name!r} is already registered in the {registry.scope}::{registry.name} registry by '
            f'{existing.__module__}.{existing.__qualname__}; remove the other plugin (e.g. an upstream '
            'InternImage copy) from custom_imports'
        )
    registry.register_module(name=name, module=cls)


def _optional_models_registry(package: str) -> Registry | None:
    try:
        return importlib.import_module(f'{package}.registry').MODELS
    except ModuleNotFoundError as err:
        if err.name in (package, f'{package}.registry'):
            return None  # not installed: nothing to register into
        raise  # installed but broken (e.g. mmcv missing): say so instead of silently skipping


def register_all() -> list[str]:
    """Register everything (idempotent). Returns the scopes whose MODELS registry now has InternImage."""
    scopes = []
    for registry in (
        MMENGINE_MODELS,
        _optional_models_registry('mmdet'),
        _optional_models_registry('mmdet3d'),
    ):
        if registry is not None:
            _register(registry, 'InternImage', InternImage)
            scopes.append(registry.scope)
    for name in ('CustomLayerDecayOptimizerConstructor', 'LayerDecayOptimWrapperConstructor'):
        _register(OPTIM_WRAPPER_CONSTRUCTORS, name, LayerDecayOptimWrapperConstructor)
    return scopes


REGISTERED_SCOPES = register_all()
