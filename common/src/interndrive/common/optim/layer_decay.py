"""BEiT-style layer-wise learning-rate decay parameter groups for models with an InternImage backbone.

Semantics of upstream ``CustomLayerDecayOptimizerConstructor`` (OCC ``bevformer/backbones/``,
REFERENCE.md Part 1 §3.2), as a pure function so it can be tested without mmengine:

* layer id 0: ``<backbone>.patch_embed.*`` and any ``level_embeds``;
* ``<backbone>.levels.i.blocks.j.*``: ``1 + depths[:i].sum() + j``;
* ``<backbone>.levels.i.{downsample,norm,post_norms}.*``: ``1 + depths[:i+1].sum()`` (capped at the
  stage-2 end for i = 3, as upstream);
* everything else (neck, heads, BEV encoder): ``num_layers + 1``;
* lr scale = ``decay ** (num_layers + 1 - layer_id)`` → the head trains at full lr and
  ``decay = 1.0`` gives every group the same lr;
* no weight decay for 1-D tensors, biases and names containing ``norm``, ``relative_position`` or
  ``sampling_offsets``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

__all__ = ['get_layer_id', 'layer_decay_param_groups']

_NO_DECAY_WORDS = ('relative_position', 'norm', 'sampling_offsets')


def get_layer_id(
    name: str, num_max_layer: int, depths: Sequence[int], backbone_prefix: str = 'img_backbone'
) -> int:
    """Layer id of parameter ``name`` (0 = stem … ``num_max_layer - 1`` = not in the backbone).

    Args:
        name: parameter name as in ``model.named_parameters()``.
        num_max_layer: ``num_layers + 2`` (stem + blocks + everything after the backbone).
        depths: blocks per backbone stage.
        backbone_prefix: attribute path of the backbone in the model (``img_backbone`` in BEVFormer,
            ``backbone`` in mmdet detectors).
    """
    if name.startswith('module.'):
        name = name[len('module.') :]
    prefix = backbone_prefix.rstrip('.') + '.'
    if name.startswith(prefix + 'patch_embed') or 'level_embeds' in name:
        return 0
    if name.startswith((prefix + 'levels.', prefix + 'layers.')):
        parts = name[len(prefix) :].split('.')
        stage = int(parts[1])
        if parts[2] == 'blocks':
            return 1 + sum(depths[:stage]) + int(parts[3])
        # downsample / stage norm / post_norms sit between stage i and i+1. Upstream caps the last
        # stage at the end of stage 2 (its table has no entry for 3); kept for identical groups.
        return 1 + sum(depths[: min(stage, len(depths) - 2) + 1])
    return num_max_layer - 1


def layer_decay_param_groups(
    model: nn.Module,
    base_lr: float,
    weight_decay: float,
    num_layers: int,
    layer_decay_rate: float,
    depths: Sequence[int],
    backbone_prefix: str = 'img_backbone',
    offset_lr_scale: float = 1.0,
    backbone_small_lr: bool = False,
    dino_head: bool = False,
) -> list[dict[str, Any]]:
    """Parameter groups with layer-wise lr decay (one group per layer id × decay/no-decay).

    Args:
        model: the full model (a DDP wrapper's ``module.`` prefix is ignored).
        base_lr: optimizer lr; each group gets ``lr = lr_scale * base_lr``.
        weight_decay: weight decay of the ``decay`` groups.
        num_layers: number of backbone blocks (33 for InternImage-S = sum of depths).
        layer_decay_rate: decay per layer; 1.0 disables decay.
        depths: blocks per backbone stage.
        backbone_prefix: attribute path of the backbone in ``model``.
        offset_lr_scale: extra scale for ``sampling_offsets``/``reference_points`` parameters.
        backbone_small_lr: multiply decayed (scale < 1) groups by a further 0.1.
        dino_head: non-backbone ``sampling_offsets``/``reference_points`` at 0.1× (DINO recipe).

    Returns:
        A list of dicts with ``params``, ``param_names``, ``lr``, ``lr_scale``, ``weight_decay``
        and ``group_name`` (extra keys are kept by torch optimizers and useful in logs).
    """
    if num_layers < sum(depths):
        raise ValueError(
            f'layer decay: num_layers={num_layers} is smaller than sum(depths)={sum(depths)}'
        )
    if not 0.0 < layer_decay_rate <= 1.0:
        raise ValueError(f'layer decay: layer_decay_rate must be in (0, 1], got {layer_decay_rate}')
    num_max_layer = num_layers + 2
    groups: dict[str, dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim == 1 or name.endswith('.bias') or any(w in name for w in _NO_DECAY_WORDS):
            kind, wd = 'no_decay', 0.0
        else:
            kind, wd = 'decay', weight_decay
        layer_id = get_layer_id(name, num_max_layer, depths, backbone_prefix)
        is_offset = 'sampling_offsets' in name or 'reference_points' in name
        if is_offset and dino_head and layer_id == num_max_layer - 1:
            group_name = f'layer_{layer_id}_{kind}_0.1x'
        elif is_offset:
            group_name = f'layer_{layer_id}_{kind}_offset_lr_scale'
        else:
            group_name = f'layer_{layer_id}_{kind}'
        if group_name not in groups:
            scale = layer_decay_rate ** (num_max_layer - layer_id - 1)
            if scale < 1 and backbone_small_lr:
                scale *= 0.1
            if group_name.endswith('_0.1x'):
                scale *= 0.1
            elif group_name.endswith('_offset_lr_scale'):
                scale *= offset_lr_scale
            groups[group_name] = dict(
                params=[],
                param_names=[],
                lr_scale=scale,
                lr=scale * base_lr,
                weight_decay=wd,
                group_name=group_name,
            )
        groups[group_name]['params'].append(param)
        groups[group_name]['param_names'].append(name)
    return list(groups.values())
