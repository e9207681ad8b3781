"""Upstream VectorMapNet checkpoints (`Online-HD-Map-Construction-CVPR2023/src/models`) → `VectorMapNet`.

Upstream's module tree (mmcv 1.x / mmdet 2.x, REFERENCE.md §4.3) and ours compute the same function
but name and pack some tensors differently. Every difference is one entry of `RENAMES` (a key
rename) or one of the few tensor rewrites below, each with the reason it exists:

* mmcv-1.x transformer bricks: `BaseTransformerLayer.attentions.0.attn` (an `nn.MultiheadAttention`),
  `attentions.1` (`MultiScaleDeformableAttention`), `ffns.0.layers.{0.0,1}` (mmcv `FFN`), `norms.i`.
* upstream's generator layer subclasses `nn.TransformerDecoderLayer`: one packed `in_proj_weight`
  (3·D, D) per attention; ours has `q_proj/k_proj/v_proj` so keys/values can be cached separately
  (split in three, q, k, v in that order as `nn.MultiheadAttention` packs them), and three (1,)
  ReZero gates `res_weight1..3` that we keep as one (3,) parameter (concatenated).
* upstream's detector puts the *same* prediction-branch modules into a `ModuleList` once per
  decoder layer (`iterative=False`), so its state dict holds identical copies under
  `pre_branches.{cls,reg}.<layer>`; we hold one module. The copies must be equal (an
  `iterative=True` checkpoint, with per-layer branches, cannot be represented and is refused).
* both heads embed a `[-1, 1]²` grid with `img_coord_embed = Linear(2, D)`; upstream stacks the grid as
  (y, x) (`meshgrid(Hs, Ws)`), ours as (x, y), so the two weight columns are swapped.

Everything else already matches because our model was made layer-for-layer upstream's (no final
LayerNorm in the detector or generator, bias in the upsampling convs but not in the BEV neck's Conv1×1,
upstream's channel order c·P + p into the IPM fusion conv): no other tensor needs rewriting.

Some upstream tensors have no counterpart (`NOT_LOADED`): buffers recomputed from the config, and
three learned tensors that upstream creates but never uses in `forward` (so they cannot change a
prediction). They are returned as unused keys, with the reason, never silently dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
from torch import Tensor

from interndrive.common import task_checkpoint
from interndrive.hdmap.errors import HDMapInputError, MissingPathError

_DEC = r'head\.det_net\.transformer\.decoder\.layers\.(\d+)\.'
_GEN = r'head\.gen_net\.decoder\.layers\.(\d+)\.'

# (upstream key regex, our key template). The first full match wins; `\N` are the regex groups.
RENAMES: list[tuple[str, str]] = [
    # IPM encoder: image backbone (InternImage / mmdet ResNet) and mmdet FPN keep their names.
    (r'backbone\.(img_backbone|img_neck)\.(.+)', r'backbone.\1.\2'),
    # `Upsample.fscale[level][block]` is our `MultiLevelUpsample.levels[level][block]`; upstream's
    # UpsampleBlock names its GroupNorm `gn`.
    (r'backbone\.upsample\.fscale\.(\d+)\.(\d+)\.conv\.(weight|bias)', r'backbone.upsample.levels.\1.\2.conv.\3'),
    (r'backbone\.upsample\.fscale\.(\d+)\.(\d+)\.gn\.(weight|bias)', r'backbone.upsample.levels.\1.\2.norm.\3'),
    (r'backbone\.outconvs\.(weight|bias)', r'backbone.outconv.\1'),
    # BEV neck: upstream's nn.Sequential(conv7x7, BN, ReLU, MaxPool, resnet18.layer1, conv1x1).
    (r'neck\.0\.weight', r'neck.stem.0.weight'),
    (r'neck\.1\.(weight|bias|running_mean|running_var|num_batches_tracked)', r'neck.stem.1.\1'),
    (r'neck\.4\.(\d+)\.(.+)', r'neck.layer1.\1.\2'),
    (r'neck\.5\.weight', r'neck.proj.weight'),
    # Detector: the DeformableDetrTransformer_ wrapper is flattened into MapElementDetector.
    (r'head\.det_net\.(input_proj|img_coord_embed)\.(weight|bias)', r'head.det_net.\1.\2'),
    (r'head\.det_net\.(query_embedding|bbox_embedding)\.weight', r'head.det_net.\1.weight'),
    (r'head\.det_net\.transformer\.reference_points_embed\.(weight|bias)', r'head.det_net.reference_points_embed.\1'),
    (_DEC + r'attentions\.0\.attn\.(in_proj_weight|in_proj_bias)', r'head.det_net.layers.\1.self_attn.\2'),
    (_DEC + r'attentions\.0\.attn\.out_proj\.(weight|bias)', r'head.det_net.layers.\1.self_attn.out_proj.\2'),
    (_DEC + r'attentions\.1\.(sampling_offsets|attention_weights|value_proj|output_proj)\.(weight|bias)',
     r'head.det_net.layers.\1.cross_attn.\2.\3'),
    (_DEC + r'ffns\.0\.layers\.0\.0\.(weight|bias)', r'head.det_net.layers.\1.ffn.0.\2'),
    (_DEC + r'ffns\.0\.layers\.1\.(weight|bias)', r'head.det_net.layers.\1.ffn.3.\2'),
    (_DEC + r'norms\.([012])\.(weight|bias)', r'head.det_net.layers.\1.norms.\2.\3'),
    # shared across decoder layers upstream (one copy per layer in the state dict, see module doc)
    (r'head\.det_net\.pre_branches\.cls\.\d+\.(weight|bias)', r'head.det_net.cls_branch.\1'),
    (r'head\.det_net\.pre_branches\.reg\.\d+\.(\d+)\.(weight|bias)', r'head.det_net.reg_branch.\1.\2'),
    # Generator: embeddings keep their names, the decoder layers lose the `decoder.` level.
    (r'head\.gen_net\.(input_proj|img_coord_embed)\.(weight|bias)', r'head.gen_net.\1.\2'),
    (r'head\.gen_net\.(label_embed|vertex_embed|bbox_context_embed|coord_embed|pos_embeddings)\.weight',
     r'head.gen_net.\1.weight'),
    (r'head\.gen_net\._project_to_logits\.(weight|bias)', r'head.gen_net.logits_head.\1'),
    (_GEN + r'self_attn\.out_proj\.(weight|bias)', r'head.gen_net.layers.\1.self_attn.out_proj.\2'),
    (_GEN + r'multihead_attn\.out_proj\.(weight|bias)', r'head.gen_net.layers.\1.cross_attn.out_proj.\2'),
    (_GEN + r'linear1\.(weight|bias)', r'head.gen_net.layers.\1.ffn.0.\2'),
    (_GEN + r'linear2\.(weight|bias)', r'head.gen_net.layers.\1.ffn.3.\2'),
    (_GEN + r'(norm[123])\.(weight|bias)', r'head.gen_net.layers.\1.\2.\3'),
]  # fmt: skip

# Packed q/k/v projections of the generator's nn.MultiheadAttention → our three Linear layers.
_IN_PROJ = re.compile(_GEN + r'(self_attn|multihead_attn)\.in_proj_(weight|bias)')
_GEN_ATTN = {'self_attn': 'self_attn', 'multihead_attn': 'cross_attn'}
# ReZero gates res_weight1..3 (shape (1,)) → our (3,) `res_weights`.
_REZERO = re.compile(_GEN + r'res_weight([123])')
# Linear(2, D) of the (y, x) grid upstream, (x, y) here.
_COORD_EMBED = re.compile(r'head\.(det_net|gen_net)\.img_coord_embed\.weight')

# Upstream keys that are deliberately not loaded, with the reason (regex → reason).
NOT_LOADED: dict[str, str] = {
    r'backbone\.bev_planes': 'buffer of the IPM plane grid, recomputed from xbound/ybound/heights',
    r'head\.(det_net|gen_net)\.canvas_size': 'buffer holding the config canvas size',
    r'head\.augmentation\.(canvas_size|shift_scale|scaling_size)': (
        "buffer of upstream's training-time noise augmentation (NoiseSythesis), config constants"
    ),
    r'backbone\.masked_embeds\.weight': 'created by upstream IPMEncoder but never used in forward',
    r'head\.det_net\.label_embed\.weight': 'created by upstream MapElementDetector but never used',
    r'head\.det_net\.transformer\.level_embeds': (
        "only feeds upstream's skipped (PlaceHolderEncoder) encoder; never reaches an output"
    ),
}

# `--cfg-options` that run converted weights as upstream ran them (they were trained with these
# conventions; the defaults are the ones for new training, see README "Released upstream checkpoints").
UPSTREAM_RUN_OPTIONS: dict[str, object] = {
    # generator conditioned on upstream's bbox tokens (GT without +1, round(box) at test)
    'model.head_cfg.upstream_bbox_tokens': True,
    # upstream may stop a line after 0 or 1 vertex (such lines are dropped from the submission)
    'model.head_cfg.gen_net_cfg.min_vertices': 0,
    # camera matrices rescaled by padded/unpadded size as upstream's pipeline did (REFERENCE §7.22);
    # index 3 of the reference configs' test pipeline is HDMapPadMultiViewImages
    'test_dataloader.dataset.pipeline.3.upstream_pad_rescale': True,
}


def upstream_run_options() -> str:
    """`UPSTREAM_RUN_OPTIONS` as command-line `--cfg-options` arguments."""
    return task_checkpoint.format_cfg_options(UPSTREAM_RUN_OPTIONS)


# Parts every complete upstream VectorMapNet checkpoint has (one upstream key prefix each).
REQUIRED_PARTS: dict[str, str] = {
    'backbone.img_backbone.': 'image backbone',
    'backbone.img_neck.': 'FPN',
    'backbone.upsample.fscale.': 'multi-level upsampling',
    'backbone.outconvs.': 'IPM fusion conv',
    'neck.4.': 'BEV neck (resnet18 layer1)',
    'head.det_net.transformer.decoder.': 'detector decoder',
    'head.det_net.pre_branches.': 'detector prediction branches',
    'head.gen_net.decoder.': 'generator decoder',
    'head.gen_net._project_to_logits.': 'generator logits layer',
}
# Wrapper prefix that training frameworks put in front of the model's keys (DDP, mmengine EMA).
_WRAPPERS = ('module.',)


def not_loaded_reason(key: str) -> str:
    """Why an upstream key is not loaded (for the CLI listing)."""
    return task_checkpoint.not_loaded_reason(
        key, NOT_LOADED, 'unknown to the converter (not part of the released VectorMapNet configs)'
    )


def _special(
    key: str, value: Tensor, out: dict[str, Tensor], gates: dict[str, dict[int, Tensor]]
) -> bool:
    """Tensor rewrites (see module doc). Returns False when `key` is not one of them."""
    match = _IN_PROJ.fullmatch(key)
    if match:
        layer, attn, kind = match.groups()
        if value.shape[0] % 3:
            raise HDMapInputError(f'{key}: packed q/k/v of shape {tuple(value.shape)} is not 3·D')
        prefix = f'head.gen_net.layers.{layer}.{_GEN_ATTN[attn]}'
        for name, part in zip(('q_proj', 'k_proj', 'v_proj'), value.chunk(3, dim=0), strict=True):
            out[f'{prefix}.{name}.{kind}'] = part.clone()
        return True
    match = _REZERO.fullmatch(key)
    if match:
        layer, index = match.groups()
        gates.setdefault(f'head.gen_net.layers.{layer}.res_weights', {})[int(index)] = value
        return True
    match = _COORD_EMBED.fullmatch(key)
    if match:
        out[f'head.{match.group(1)}.img_coord_embed.weight'] = value.flip(-1).clone()
        return True
    return False


def convert_upstream_state_dict(
    checkpoint: Mapping[str, Any], source: str = '<state dict>'
) -> tuple[dict[str, Tensor], list[str]]:
    """Converts an upstream VectorMapNet checkpoint to `VectorMapNet`'s key names and layouts.

    Args:
        checkpoint: The loaded upstream checkpoint (`{'state_dict': ...}`, possibly with `module.`
            prefixes) or its state dict.
        source: Name used in error messages (e.g. the file path).

    Returns:
        (converted state dict, upstream keys that were not loaded, sorted; `not_loaded_reason` says why).

    Raises:
        HDMapInputError: naming the missing parts when the checkpoint is not a complete upstream
            VectorMapNet checkpoint (e.g. a backbone-only file, or one already converted), or when it
            cannot be represented (per-layer detector branches, incomplete ReZero gates).
    """
    state = task_checkpoint.unwrap_state_dict(checkpoint, source, HDMapInputError, _WRAPPERS)
    task_checkpoint.require_parts(
        state, REQUIRED_PARTS, source=source, model='VectorMapNet', error=HDMapInputError
    )
    gates: dict[str, dict[int, Tensor]] = {}
    out, unused = task_checkpoint.rename_state_dict(
        state,
        RENAMES,
        source=source,
        error=HDMapInputError,
        rewrite=partial(_special, gates=gates),
        # only the shared prediction branches map several upstream keys to one of ours
        conflict=(
            "{source}: {upstream} differs from the other decoder layers' copy of {ours}; "
            'per-layer prediction branches (upstream iterative=True) are not supported'
        ),
    )
    for ours, parts in gates.items():
        if sorted(parts) != [1, 2, 3]:
            raise HDMapInputError(
                f'{source}: {ours}: upstream has res_weight{sorted(parts)}, expected res_weight1..3'
            )
        out[ours] = torch.cat([parts[i].reshape(-1) for i in (1, 2, 3)])
    return out, unused


def convert_upstream_checkpoint(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    weights_only: bool | None = None,
    reason: Callable[[str], str] = not_loaded_reason,
) -> dict[str, Any]:
    """Reads an upstream VectorMapNet `.pth` and writes `{'state_dict', 'meta'}` for `interndrive test`.

    Args:
        src: Upstream checkpoint (e.g. the released `vectormapnet_internimage.pth`).
        dst: Output `.pth`, written atomically.
        weights_only: See `interndrive.common.checkpoint.read_checkpoint` (None: safe load first,
            full unpickling of trusted upstream files as fallback).
        reason: Explains an unused key (stored in the output's meta).

    Returns:
        {'num_tensors', 'unused_keys'}.

    Raises:
        MissingPathError: `src` does not exist.
        HDMapInputError: `src` is not a readable PyTorch checkpoint, or not a convertible upstream
            VectorMapNet checkpoint (see `convert_upstream_state_dict`).
    """
    return task_checkpoint.convert_checkpoint_file(
        src,
        dst,
        convert_upstream_state_dict,
        source_format='upstream VectorMapNet (Online-HD-Map-Construction-CVPR2023)',
        error=HDMapInputError,
        missing_error=MissingPathError,
        reason=reason,
        weights_only=weights_only,
    )
