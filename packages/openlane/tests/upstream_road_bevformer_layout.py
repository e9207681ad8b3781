"""Writes one of our `RoadBEVFormer` state dicts in upstream's checkpoint layout (test helper).

The inverse of `interndrive.openlane.checkpoint`, written out separately from upstream's module code
(`OpenGVLab/InternImage/autonomous_driving/openlane-v2/plugin/mmdet3d/baseline/models`, mmcv 1.x /
mmdet 2.x) so that the converter is tested against an independent statement of upstream's key names
and tensor shapes:

* `detectors/road_bev.py` (`ROAD_BEVFormer(MVXTwoStageDetector)`): `img_backbone`, `img_neck`,
  `bev_constructor`, `pts_bbox_head` (lanes), `bbox_head` (traffic elements), `lclc_head`,
  `lcte_head`; nothing else holds tensors (no voxel/point branches in the configs).
* `heads/lc_deformable_detr_head.py` (`LCDeformableDETRHead`): `query_embedding` Embedding(Q, 2·C),
  `cls_branches.i` = [Linear, LayerNorm, ReLU] × 2 + Linear(C, 1), `reg_branches.i` = [Linear, ReLU] × 2
  + Linear(C, 15), `code_weights` (a frozen nn.Parameter of 15 ones), `transformer`
  (`modules/transformer.py: PerceptionTransformer`: `reference_points` Linear(C, 3), `decoder`).
* `modules/decoder.py`: `LaneDetectionTransformerDecoder.layers.i` = `CustomDetrTransformerDecoderLayer`
  (mmcv `BaseTransformerLayer`: `attentions.0.attn` nn.MultiheadAttention, `attentions.1`
  `CustomMSDeformableAttention` with mmcv's sampling_offsets/attention_weights/value_proj/output_proj,
  `ffns.0.layers.{0.0,1}`, `norms.{0,1,2}`).
* `heads/te_deformable_detr_head.py` (`TEDeformableDETRHead(DETRHead)`, `_init_layers` overridden):
  `cls_branches.i` a bare Linear(C, 13), `reg_branches.i` = [Linear, ReLU] × 2 + Linear(C, 4),
  `query_embedding`; mmdet 2's `DeformableDetrTransformer`: `level_embeds` (4, C), `reference_points`
  Linear(C, 2), `encoder.layers.i` (`attentions.0` MultiScaleDeformableAttention, `ffns.0`,
  `norms.{0,1}`), `decoder.layers.i` as above.
* `heads/relationship_head.py` (`RelationshipHead`): `MLP_o1`, `MLP_o2` = MLP(C, C, 128, 3),
  `classifier` = MLP(256, 256, 1, 3), each `layers` = ModuleList of 3 Linear (ReLU in forward).
  The classifier's hidden width is 256 whatever C is; ours uses C (equal in the reference configs,
  so the tiny config's "upstream" layout is upstream's code at our tiny widths).
* `modules/bevformer_constructer.py` and the backbone/neck: the same names as ours.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

_DEC = r'\.decoder\.layers\.(\d+)\.'

# our key regex -> upstream key template
TO_UPSTREAM: list[tuple[str, str]] = [
    (r'(img_backbone|img_neck|bev_constructor)\.(.+)', r'\1.\2'),
    (r'lane_head\.query_embedding\.(.+)', r'pts_bbox_head.query_embedding.\1'),
    (r'lane_head\.reference_points\.(.+)', r'pts_bbox_head.transformer.reference_points.\1'),
    (r'lane_head\.(cls|reg)_branches\.(.+)', r'pts_bbox_head.\1_branches.\2'),
    (r'lane_head' + _DEC + r'self_attn\.attn\.(.+)', r'pts_bbox_head.transformer.decoder.layers.\1.attentions.0.attn.\2'),
    (r'lane_head' + _DEC + r'cross_attn\.(.+)', r'pts_bbox_head.transformer.decoder.layers.\1.attentions.1.\2'),
    (r'lane_head' + _DEC + r'ffn\.(.+)', r'pts_bbox_head.transformer.decoder.layers.\1.ffns.0.\2'),
    (r'lane_head' + _DEC + r'norms\.(.+)', r'pts_bbox_head.transformer.decoder.layers.\1.norms.\2'),
    (r'te_head\.query_embedding\.(.+)', r'bbox_head.query_embedding.\1'),
    (r'te_head\.level_embeds', r'bbox_head.transformer.level_embeds'),
    (r'te_head\.reference_points\.(.+)', r'bbox_head.transformer.reference_points.\1'),
    (r'te_head\.cls_branches\.(\d+)\.0\.(.+)', r'bbox_head.cls_branches.\1.\2'),
    (r'te_head\.reg_branches\.(.+)', r'bbox_head.reg_branches.\1'),
    (r'te_head\.encoder\.layers\.(\d+)\.self_attn\.(.+)', r'bbox_head.transformer.encoder.layers.\1.attentions.0.\2'),
    (r'te_head\.encoder\.layers\.(\d+)\.ffn\.(.+)', r'bbox_head.transformer.encoder.layers.\1.ffns.0.\2'),
    (r'te_head\.encoder\.layers\.(\d+)\.norms\.(.+)', r'bbox_head.transformer.encoder.layers.\1.norms.\2'),
    (r'te_head' + _DEC + r'self_attn\.attn\.(.+)', r'bbox_head.transformer.decoder.layers.\1.attentions.0.attn.\2'),
    (r'te_head' + _DEC + r'cross_attn\.(.+)', r'bbox_head.transformer.decoder.layers.\1.attentions.1.\2'),
    (r'te_head' + _DEC + r'ffn\.(.+)', r'bbox_head.transformer.decoder.layers.\1.ffns.0.\2'),
    (r'te_head' + _DEC + r'norms\.(.+)', r'bbox_head.transformer.decoder.layers.\1.norms.\2'),
    # nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) here, MLP.layers = [Linear] × 3 upstream
    (r'(lclc|lcte)_head\.mlp_o([12])\.0\.(.+)', r'\1_head.MLP_o\2.layers.0.\3'),
    (r'(lclc|lcte)_head\.mlp_o([12])\.2\.(.+)', r'\1_head.MLP_o\2.layers.1.\3'),
    (r'(lclc|lcte)_head\.mlp_o([12])\.4\.(.+)', r'\1_head.MLP_o\2.layers.2.\3'),
    (r'(lclc|lcte)_head\.classifier\.0\.(.+)', r'\1_head.classifier.layers.0.\2'),
    (r'(lclc|lcte)_head\.classifier\.2\.(.+)', r'\1_head.classifier.layers.1.\2'),
    (r'(lclc|lcte)_head\.classifier\.4\.(.+)', r'\1_head.classifier.layers.2.\2'),
]  # fmt: skip

# upstream tensors without a counterpart in our model (the converter must report them as unused)
UPSTREAM_ONLY = ('pts_bbox_head.code_weights',)


def _upstream_name(key: str) -> str:
    for pattern, template in TO_UPSTREAM:
        match = re.fullmatch(pattern, key)
        if match:
            return match.expand(template)
    raise KeyError(f'no upstream name written down for {key}')


def to_upstream_state_dict(model: torch.nn.Module, prefix: str = '') -> dict[str, Tensor]:
    """`model.state_dict()` in upstream's layout (key names and shapes), `prefix` in front.

    Args:
        model: Our `RoadBEVFormer` (any config, also on the meta device).
        prefix: e.g. `'module.'` for a DDP-wrapped upstream training checkpoint.
    """
    state = model.state_dict()
    out = {_upstream_name(key): value.clone() for key, value in state.items()}
    ref = next(iter(state.values()))
    # LCDeformableDETRHead(code_weights=[1.0] * 15): an nn.Parameter, so it is saved
    out['pts_bbox_head.code_weights'] = torch.ones(model.lane_head.code_size, device=ref.device)
    return {prefix + k: v for k, v in out.items()}


def upstream_shapes(
    *,
    embed_dims: int = 256,
    ffn_dims: int = 512,
    num_heads: int = 8,
    lane_queries: int = 100,
    te_queries: int = 100,
    te_classes: int = 13,
    code_size: int = 15,
    levels: int = 4,
    points: int = 4,
    bev_points: int = 8,
    bev_h: int = 100,
    bev_w: int = 200,
    cams: int = 7,
) -> dict[str, tuple[int, ...]]:
    """Shapes of representative upstream keys, computed from upstream's constructors (defaults:
    the hyperparameters of upstream's `internimage-s.py` / `baseline_large.py`)."""
    c, last = embed_dims, 5  # 6 decoder layers in both heads
    lane = f'pts_bbox_head.transformer.decoder.layers.{last}.'
    te_enc = f'bbox_head.transformer.encoder.layers.{last}.'
    te_dec = f'bbox_head.transformer.decoder.layers.{last}.'
    bev = 'bev_constructor.encoder.layers.2.'
    return {
        'pts_bbox_head.query_embedding.weight': (lane_queries, 2 * c),
        'pts_bbox_head.code_weights': (code_size,),
        'pts_bbox_head.transformer.reference_points.weight': (3, c),
        lane + 'attentions.0.attn.in_proj_weight': (3 * c, c),
        lane + 'attentions.0.attn.out_proj.weight': (c, c),
        # CustomMSDeformableAttention(num_levels=1, num_points=4): heads·levels·points·2
        lane + 'attentions.1.sampling_offsets.weight': (num_heads * 1 * points * 2, c),
        lane + 'attentions.1.attention_weights.weight': (num_heads * 1 * points, c),
        lane + 'ffns.0.layers.0.0.weight': (ffn_dims, c),
        lane + 'ffns.0.layers.1.weight': (c, ffn_dims),
        lane + 'norms.2.weight': (c,),
        f'pts_bbox_head.cls_branches.{last}.1.weight': (c,),  # LayerNorm
        f'pts_bbox_head.cls_branches.{last}.6.weight': (1, c),
        f'pts_bbox_head.reg_branches.{last}.4.weight': (code_size, c),
        'bbox_head.query_embedding.weight': (te_queries, 2 * c),
        'bbox_head.transformer.level_embeds': (levels, c),
        'bbox_head.transformer.reference_points.weight': (2, c),
        te_enc + 'attentions.0.sampling_offsets.weight': (num_heads * levels * points * 2, c),
        te_enc + 'attentions.0.attention_weights.weight': (num_heads * levels * points, c),
        te_enc + 'ffns.0.layers.1.weight': (c, ffn_dims),
        te_enc + 'norms.1.weight': (c,),
        te_dec + 'attentions.0.attn.in_proj_bias': (3 * c,),
        te_dec + 'attentions.1.sampling_offsets.weight': (num_heads * levels * points * 2, c),
        te_dec + 'attentions.1.value_proj.weight': (c, c),
        te_dec + 'norms.2.bias': (c,),
        f'bbox_head.cls_branches.{last}.weight': (te_classes, c),
        f'bbox_head.reg_branches.{last}.4.weight': (4, c),
        'lclc_head.MLP_o1.layers.0.weight': (c, c),
        'lclc_head.MLP_o1.layers.2.weight': (128, c),
        'lcte_head.MLP_o2.layers.1.weight': (c, c),
        'lcte_head.classifier.layers.0.weight': (256, 256),
        'lcte_head.classifier.layers.1.weight': (256, 256),
        'lcte_head.classifier.layers.2.weight': (1, 256),
        'bev_constructor.bev_embedding.weight': (bev_h * bev_w, c),
        'bev_constructor.positional_encoding.row_embed.weight': (bev_h, c // 2),
        'bev_constructor.positional_encoding.col_embed.weight': (bev_w, c // 2),
        'bev_constructor.level_embeds': (levels, c),
        'bev_constructor.cams_embeds': (cams, c),
        'bev_constructor.can_bus_mlp.0.weight': (c // 2, 18),
        'bev_constructor.can_bus_mlp.norm.weight': (c,),
        # TemporalSelfAttention over the [prev, current] queue: 2·C inputs, 2 queue items
        bev + 'attentions.0.sampling_offsets.weight': (2 * num_heads * 1 * points * 2, 2 * c),
        bev + 'attentions.1.deformable_attention.sampling_offsets.weight': (
            num_heads * levels * bev_points * 2,
            c,
        ),
        bev + 'attentions.1.output_proj.weight': (c, c),
        'img_neck.fpn_convs.3.conv.weight': (
            c,
            c,
            3,
            3,
        ),  # extra level, add_extra_convs='on_output'
    }
