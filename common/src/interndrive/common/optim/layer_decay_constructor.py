"""mmengine optimizer-wrapper constructor applying :func:`layer_decay_param_groups`.

Registered as ``CustomLayerDecayOptimizerConstructor`` (the upstream name, so configs keep working)
and ``LayerDecayOptimWrapperConstructor`` by :mod:`interndrive.common.openmmlab`. Config::

    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05),
        constructor='CustomLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(num_layers=33, layer_decay_rate=1.0, depths=[4, 4, 21, 4]),
        clip_grad=dict(max_norm=35, norm_type=2))

Optional ``paramwise_cfg`` keys: ``backbone_prefix`` (default ``'img_backbone'``),
``offset_lr_scale``, ``backbone_small_lr``, ``dino_head``. Imports mmengine only (no mmcv/mmdet).
"""

from __future__ import annotations

import json
import logging

from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from .layer_decay import layer_decay_param_groups

__all__ = ['LayerDecayOptimWrapperConstructor']

_REQUIRED = ('num_layers', 'layer_decay_rate', 'depths')


class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay for InternImage backbones (BEiT recipe), see :mod:`.layer_decay`."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        missing = [k for k in _REQUIRED if k not in (paramwise_cfg or {})]
        if missing:
            raise ValueError(
                f'CustomLayerDecayOptimizerConstructor: paramwise_cfg lacks {missing} '
                f'(expected e.g. dict(num_layers=33, layer_decay_rate=1.0, depths=[4, 4, 21, 4]))'
            )
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(
        self, params: list[dict], module: nn.Module, prefix: str = '', is_dcn_module=None
    ) -> None:
        cfg = self.paramwise_cfg
        groups = layer_decay_param_groups(
            module,
            base_lr=self.base_lr,
            weight_decay=self.base_wd or 0.0,
            num_layers=cfg['num_layers'],
            layer_decay_rate=cfg['layer_decay_rate'],
            depths=cfg['depths'],
            backbone_prefix=cfg.get('backbone_prefix', 'img_backbone'),
            offset_lr_scale=cfg.get('offset_lr_scale', 1.0),
            backbone_small_lr=cfg.get('backbone_small_lr', False),
            dino_head=cfg.get('dino_head', False),
        )
        if get_rank() == 0:
            summary = {
                g['group_name']: dict(
                    lr_scale=g['lr_scale'],
                    lr=g['lr'],
                    weight_decay=g['weight_decay'],
                    num_params=len(g['params']),
                )
                for g in groups
            }
            print_log(
                f'layer-decay param groups = {json.dumps(summary, indent=1)}',
                logger='current',
                level=logging.INFO,
            )
        params.extend(groups)
