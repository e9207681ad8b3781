"""Upstream OpenLane-V2 baseline checkpoints (`ROAD_BEVFormer`) → `RoadBEVFormer` state dicts.

Upstream (`OpenGVLab/InternImage/autonomous_driving/openlane-v2/plugin/mmdet3d/baseline`, mmcv 1.x /
mmdet 2.x, REFERENCE.md Part 1 §5.2) and our model compute the same function; the state dicts differ
only in names. Every difference is one entry of `RENAMES`, with the reason next to it:

* image backbone (`img_backbone.`: InternImage, or mmdet ResNet-50 in `baseline_large`) and neck
  (`img_neck.`: mmdet FPN, the same module names in mmdet 2 and 3) keep their names; the backbone is
  taken with `interndrive.common.checkpoint.extract_backbone_state_dict`, the BEV constructer
  (`bev_constructor.`, identical names below it) with
  `interndrive.common.bev.extract_bev_constructor_state_dict(sd, 'openlane')`.
* lane head: upstream `pts_bbox_head` (`LCDeformableDETRHead`) keeps its reference-point Linear and
  decoder inside a `PerceptionTransformer` (`pts_bbox_head.transformer.{reference_points,decoder}`);
  ours is `lane_head` without that level.
* traffic-element head: upstream `bbox_head` (`TEDeformableDETRHead`) keeps `level_embeds`,
  `reference_points`, encoder and decoder inside mmdet 2's `DeformableDetrTransformer`
  (`bbox_head.transformer.*`); ours is `te_head` without that level. Its classification branch
  is a bare `Linear` per layer upstream and a one-layer `nn.Sequential` here (`cls_branches.i.0`).
* transformer layers: mmcv 1.x `BaseTransformerLayer` lists its attentions and FFNs
  (`attentions.0` = self-attention, `attentions.1` = deformable cross-attention, `ffns.0`); mmdet 3's
  layers name them (`self_attn`, `cross_attn`, `ffn`). The TE encoder layer has only
  `attentions.0` (deformable self-attention) → `self_attn`.
* topology heads: upstream `RelationshipHead` holds `MLP_o1`, `MLP_o2`, `classifier`, each an `MLP`
  with a `layers` ModuleList of 3 Linear layers (ReLU applied in forward); ours are `nn.Sequential`s
  with the ReLUs as modules, so Linear i is at index 2·i (`mlp_o1`, `mlp_o2`, `classifier`).

No tensor needs a reshape: mmcv 1.x and mmcv 2.x `MultiheadAttention` both wrap an
`nn.MultiheadAttention` (`attn.in_proj_weight` packed q/k/v, `attn.out_proj`), and every deformable
attention keeps mmcv's `sampling_offsets` / `attention_weights` / `value_proj` / `output_proj`
layout (heads × levels × points × 2). The query embeddings are split (positional part first) the
same way in both. Upstream's `RelationshipHead.classifier` is hard-wired to 256 hidden channels and
ours uses the embedding width, which is 256 in both reference configs.

One upstream tensor has no counterpart (`NOT_LOADED`): `pts_bbox_head.code_weights`, a frozen
`nn.Parameter` holding the 15 per-coordinate weights of the training L1 loss (all 1.0 in every
upstream config, which is what our unweighted L1 computes). It never reaches a prediction and is
returned as an unused key with that reason, never silently dropped.

To *run* converted weights as upstream did, the front view must be stretched as upstream's
pipeline did (`UPSTREAM_RUN_OPTIONS`, README "Released upstream checkpoints").
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from interndrive.common import task_checkpoint
from interndrive.common.engine.checks import InterndriveError, MissingPathError

_LANE_DEC = r'pts_bbox_head\.transformer\.decoder\.layers\.(\d+)\.'
_TE_ENC = r'bbox_head\.transformer\.encoder\.layers\.(\d+)\.'
_TE_DEC = r'bbox_head\.transformer\.decoder\.layers\.(\d+)\.'
_LINEAR = r'(weight|bias)'
_DEFORM = r'(sampling_offsets|attention_weights|value_proj|output_proj)'


def _decoder_layer(upstream: str, ours: str) -> list[tuple[str, str]]:
    """mmcv 1.x `CustomDetrTransformerDecoderLayer` → mmdet 3 `DeformableDetrTransformerDecoderLayer`
    (operation order self_attn, norm, cross_attn, norm, ffn, norm in both)."""
    return [
        # nn.MultiheadAttention inside mmcv's MultiheadAttention (`attn`) in both: no repacking
        (upstream + r'attentions\.0\.attn\.(in_proj_weight|in_proj_bias)', ours + r'.\1.self_attn.attn.\2'),
        (upstream + r'attentions\.0\.attn\.out_proj\.' + _LINEAR, ours + r'.\1.self_attn.attn.out_proj.\2'),
        (upstream + r'attentions\.1\.' + _DEFORM + r'\.' + _LINEAR, ours + r'.\1.cross_attn.\2.\3'),
        # mmcv FFN: layers.0 = Sequential(Linear, ReLU, Dropout), layers.1 = Linear, in both
        (upstream + r'ffns\.0\.layers\.(0\.0|1)\.' + _LINEAR, ours + r'.\1.ffn.layers.\2.\3'),
        (upstream + r'norms\.([012])\.' + _LINEAR, ours + r'.\1.norms.\2.\3'),
    ]  # fmt: skip


def _relationship(head: str) -> list[tuple[str, str]]:
    """Upstream `MLP.layers[i]` (ReLU in forward) → our `nn.Sequential` index 2·i (ReLU modules)."""
    out = []
    for upstream, ours in (
        ('MLP_o1', 'mlp_o1'),
        ('MLP_o2', 'mlp_o2'),
        ('classifier', 'classifier'),
    ):
        for i in range(3):
            out.append(
                (rf'{head}\.{upstream}\.layers\.{i}\.' + _LINEAR, rf'{head}.{ours}.{2 * i}.\1')
            )
    return out


# (upstream key regex, our key template). Backbone, neck and BEV constructer are handled by the
# `interndrive.common` helpers (identical names, see module doc). The first full match wins.
RENAMES: list[tuple[str, str]] = [
    (r'img_neck\.(.+)', r'img_neck.\1'),
    # Lane head: PerceptionTransformer level removed.
    (r'pts_bbox_head\.query_embedding\.weight', r'lane_head.query_embedding.weight'),
    (r'pts_bbox_head\.transformer\.reference_points\.' + _LINEAR, r'lane_head.reference_points.\1'),
    *_decoder_layer(_LANE_DEC, 'lane_head.decoder.layers'),
    # cls: 2 × [Linear, LayerNorm, ReLU] + Linear; reg: 2 × [Linear, ReLU] + Linear (same indices)
    (r'pts_bbox_head\.(cls|reg)_branches\.(\d+)\.(\d+)\.' + _LINEAR, r'lane_head.\1_branches.\2.\3.\4'),
    # Traffic-element head: mmdet 2's DeformableDetrTransformer level removed.
    (r'bbox_head\.query_embedding\.weight', r'te_head.query_embedding.weight'),
    (r'bbox_head\.transformer\.level_embeds', r'te_head.level_embeds'),
    (r'bbox_head\.transformer\.reference_points\.' + _LINEAR, r'te_head.reference_points.\1'),
    (_TE_ENC + r'attentions\.0\.' + _DEFORM + r'\.' + _LINEAR, r'te_head.encoder.layers.\1.self_attn.\2.\3'),
    (_TE_ENC + r'ffns\.0\.layers\.(0\.0|1)\.' + _LINEAR, r'te_head.encoder.layers.\1.ffn.layers.\2.\3'),
    (_TE_ENC + r'norms\.([01])\.' + _LINEAR, r'te_head.encoder.layers.\1.norms.\2.\3'),
    *_decoder_layer(_TE_DEC, 'te_head.decoder.layers'),
    # a bare Linear per decoder layer upstream, a one-Linear nn.Sequential here
    (r'bbox_head\.cls_branches\.(\d+)\.' + _LINEAR, r'te_head.cls_branches.\1.0.\2'),
    (r'bbox_head\.reg_branches\.(\d+)\.(\d+)\.' + _LINEAR, r'te_head.reg_branches.\1.\2.\3'),
    # Topology heads.
    *_relationship('lclc_head'),
    *_relationship('lcte_head'),
]  # fmt: skip

# Upstream keys that are deliberately not loaded, with the reason (regex → reason).
NOT_LOADED: dict[str, str] = {
    r'pts_bbox_head\.code_weights': (
        "frozen per-coordinate weights of upstream's training L1 loss (all 1.0 in every upstream "
        'config, as our unweighted L1); never used for a prediction'
    ),
}

# Parts every complete upstream OpenLane-V2 baseline checkpoint has (one upstream key prefix each).
REQUIRED_PARTS: dict[str, str] = {
    'img_backbone.': 'image backbone',
    'img_neck.': 'FPN neck',
    'bev_constructor.encoder.': 'BEV constructer encoder',
    'pts_bbox_head.transformer.decoder.': 'lane head decoder',
    'pts_bbox_head.cls_branches.': 'lane head branches',
    'bbox_head.transformer.encoder.': 'traffic-element head encoder',
    'bbox_head.transformer.decoder.': 'traffic-element head decoder',
    'bbox_head.cls_branches.': 'traffic-element head branches',
    'lclc_head.': 'lane-lane topology head',
    'lcte_head.': 'lane-traffic-element topology head',
}
# Our own top-level names: a checkpoint with these is already converted.
_OURS = ('lane_head.', 'te_head.')
# Wrapper prefix that training frameworks put in front of the model's keys (DDP).
_WRAPPERS = ('module.',)

# `--cfg-options` that run converted weights on the inputs they were trained with: upstream's
# `ResizeFrontView` stretched the portrait front image to 2048 × 1550 (README "Front view").
# Index 1 of the reference configs' val/test pipelines is `OLV2ResizeFrontView`.
UPSTREAM_RUN_OPTIONS: dict[str, object] = {
    'test_dataloader.dataset.pipeline.1.upstream_swap': True,
    'val_dataloader.dataset.pipeline.1.upstream_swap': True,
}


class UpstreamCheckpointError(InterndriveError, ValueError):
    """An upstream checkpoint that is not a complete OpenLane-V2 baseline (one-line CLI error)."""


def upstream_run_options() -> str:
    """`UPSTREAM_RUN_OPTIONS` as command-line `--cfg-options` arguments."""
    return task_checkpoint.format_cfg_options(UPSTREAM_RUN_OPTIONS)


def not_loaded_reason(key: str) -> str:
    """Why an upstream key is not loaded (for the CLI listing and the output's meta)."""
    return task_checkpoint.not_loaded_reason(
        key,
        NOT_LOADED,
        'unknown to the converter (not part of the released OpenLane-V2 baseline configs)',
    )


def convert_upstream_state_dict(
    checkpoint: Mapping[str, Any], source: str = '<state dict>'
) -> tuple[dict[str, Tensor], list[str]]:
    """Renames an upstream `ROAD_BEVFormer` checkpoint's keys to `RoadBEVFormer`'s.

    Args:
        checkpoint: The loaded upstream checkpoint (`{'state_dict': ...}`, possibly with `module.`
            prefixes) or its state dict.
        source: Name used in error messages (e.g. the file path).

    Returns:
        (converted state dict, upstream keys that were not loaded, sorted; `not_loaded_reason` says
        why). The tensors are the upstream ones (not copied).

    Raises:
        UpstreamCheckpointError: naming the missing parts when the checkpoint is not a complete
            upstream OpenLane-V2 baseline checkpoint (a backbone-only file, an occupancy or HD-map
            checkpoint, or one that is already converted).
    """
    from interndrive.common.checkpoint import extract_backbone_state_dict

    state = task_checkpoint.unwrap_state_dict(
        checkpoint, source, UpstreamCheckpointError, _WRAPPERS
    )
    hint = ''
    if any(key.startswith(_OURS) for key in state):
        hint = ' (it has lane_head.*/te_head.* keys: already converted? load it directly)'
    task_checkpoint.require_parts(
        state,
        REQUIRED_PARTS,
        source=source,
        model='OpenLane-V2 baseline',
        error=UpstreamCheckpointError,
        hint=hint,
    )
    # Backbone: upstream's names are ours (also renames HuggingFace-style layer_scale keys).
    backbone, _, prefix = extract_backbone_state_dict(
        {'state_dict': state}, prefix='img_backbone.', source=source
    )
    out = {f'img_backbone.{key}': value for key, value in backbone.items()}
    # BEV constructer: upstream keeps it whole under `bev_constructor.`.
    bev, bev_keys = task_checkpoint.take_bev_constructor(state, 'openlane')
    out.update(bev)
    taken = bev_keys | {key for key in state if key.startswith(prefix)}
    out, unused = task_checkpoint.rename_state_dict(
        state, RENAMES, source=source, error=UpstreamCheckpointError, out=out, skip=taken
    )
    _warn_about_code_weights(state.get('pts_bbox_head.code_weights'), source)
    return out, unused


def _warn_about_code_weights(weights: Tensor | None, source: str) -> None:
    """Our lane L1 loss is unweighted, i.e. upstream's with `code_weights` all 1.0 (every upstream
    config). Other values change only fine-tuning, never a prediction: say so instead of failing."""
    if weights is None or weights.is_meta or bool((weights == 1).all()):
        return
    warnings.warn(
        f'{source}: pts_bbox_head.code_weights are {weights.tolist()}, not all 1.0; predictions '
        'are unaffected, but fine-tuning here uses an unweighted L1 loss',
        stacklevel=3,
    )


def convert_upstream_checkpoint(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    weights_only: bool | None = None,
    reason: Callable[[str], str] = not_loaded_reason,
) -> dict[str, Any]:
    """Reads an upstream OpenLane-V2 `.pth` and writes `{'state_dict', 'meta'}` for `interndrive test`.

    Args:
        src: Upstream checkpoint (e.g. the released InternImage-S OpenLane-V2 weights).
        dst: Output `.pth`, written atomically.
        weights_only: See `interndrive.common.checkpoint.read_checkpoint` (None: safe load first,
            full unpickling of trusted upstream files as fallback).
        reason: Explains an unused key (stored in the output's meta).

    Returns:
        {'num_tensors', 'unused_keys'}.
    """
    return task_checkpoint.convert_checkpoint_file(
        src,
        dst,
        convert_upstream_state_dict,
        source_format='upstream ROAD_BEVFormer (InternImage autonomous_driving/openlane-v2)',
        error=UpstreamCheckpointError,
        missing_error=MissingPathError,
        reason=reason,
        extra_meta={'upstream_run_options': dict(UPSTREAM_RUN_OPTIONS)},
        weights_only=weights_only,
    )


__all__ = [
    'NOT_LOADED',
    'RENAMES',
    'REQUIRED_PARTS',
    'UPSTREAM_RUN_OPTIONS',
    'UpstreamCheckpointError',
    'convert_upstream_checkpoint',
    'convert_upstream_state_dict',
    'not_loaded_reason',
    'upstream_run_options',
]
