"""Optimizer helpers. The pure parameter-group logic imports torch only; the mmengine constructor
is imported on demand (``interndrive.common.optim.layer_decay_constructor``)."""

from .layer_decay import get_layer_id, layer_decay_param_groups

__all__ = ['get_layer_id', 'layer_decay_param_groups']
