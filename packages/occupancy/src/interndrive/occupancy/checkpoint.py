"""Upstream BEVFormer-Occ checkpoints → `BEVFormerOcc` state dicts (a key rename, no tensor changes).

Upstream (`OCC/projects/mmdet3d_plugin`, REFERENCE.md Part 1 §3.3) keeps the backbone and neck under
the same names as ours (`img_backbone.`, `img_neck.`: InternImage and mmdet FPN), spreads the BEV
constructor over the head (`pts_bbox_head.bev_embedding`, `.positional_encoding`) and `TransformerOcc`
(`pts_bbox_head.transformer.{level_embeds, cams_embeds, can_bus_mlp, encoder}`), and keeps the voxel
decoder in `TransformerOcc` too (`pts_bbox_head.transformer.decoder` = two Conv3d-BN3d-ReLU
`ConvModule`s with submodules `conv`/`bn`, `.predicter` = Linear-Softplus-Linear). Below those prefixes
the names are identical to ours, so `convert_upstream_state_dict` only renames prefixes.

To *run* a converted upstream checkpoint as upstream does, also set the upstream BEV flags
(README "Running the released checkpoint"): the converted weights were trained with them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from interndrive.occupancy.errors import OccupancyDataError

# upstream prefix -> ours, outside the BEV constructor (handled by interndrive.common.bev).
UPSTREAM_PREFIXES: dict[str, str] = {
    'img_backbone.': 'img_backbone.',
    'img_neck.': 'img_neck.',
    'pts_bbox_head.transformer.decoder.': 'occ_head.decoder.',
    'pts_bbox_head.transformer.predicter.': 'occ_head.predicter.',
}
# Wrappers that training frameworks put in front of the model's keys.
_WRAPPERS = ('module.', 'model.')
# Parts every complete upstream occupancy checkpoint has (one key prefix each).
REQUIRED_PARTS = {
    'img_backbone.': 'image backbone',
    'img_neck.': 'FPN neck',
    'pts_bbox_head.transformer.encoder.': 'BEV encoder',
    'pts_bbox_head.transformer.decoder.': 'voxel decoder (Conv3d)',
    'pts_bbox_head.transformer.predicter.': 'class predicter (MLP)',
}


def convert_upstream_state_dict(
    checkpoint: Mapping[str, Any], source: str = '<state dict>'
) -> tuple[dict[str, Any], list[str]]:
    """Renames an upstream BEVFormer-Occ checkpoint's keys to `BEVFormerOcc`'s.

    Args:
        checkpoint: The loaded upstream checkpoint (`{'state_dict': ...}`, possibly with `module.`
            prefixes) or its state dict.
        source: Name used in error messages (e.g. the file path).

    Returns:
        (converted state dict, upstream keys that have no place in `BEVFormerOcc`, sorted).

    Raises:
        OccupancyDataError: naming the missing parts when the checkpoint is not a complete upstream
            occupancy checkpoint (e.g. a backbone-only or an OpenLane-V2 checkpoint).
    """
    from interndrive.common.task_checkpoint import (
        prefix_renames,
        rename_state_dict,
        require_parts,
        take_bev_constructor,
        unwrap_state_dict,
    )

    state = unwrap_state_dict(checkpoint, source, OccupancyDataError, _WRAPPERS)
    require_parts(
        state, REQUIRED_PARTS, source=source, model='BEVFormer-Occ', error=OccupancyDataError
    )
    bev, bev_keys = take_bev_constructor(state, 'occupancy')
    return rename_state_dict(
        state,
        prefix_renames(UPSTREAM_PREFIXES),
        source=source,
        error=OccupancyDataError,
        out=bev,
        skip=bev_keys,
    )


def convert_upstream_checkpoint(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], weights_only: bool | None = None
) -> dict[str, Any]:
    """Reads an upstream checkpoint file and writes `{'state_dict', 'meta'}` for `interndrive test`.

    Args:
        src: Upstream `.pth` (e.g. the released `bevformer_intern-s_occ` weights).
        dst: Output `.pth`, written atomically.
        weights_only: See `interndrive.common.checkpoint.read_checkpoint` (None: safe load first,
            full unpickling of trusted upstream files as fallback).

    Returns:
        {'num_tensors', 'unused_keys'}.

    Raises:
        OccupancyDataError: `src` is missing, not a readable PyTorch checkpoint, or not a complete
            upstream BEVFormer-Occ checkpoint.
    """
    from interndrive.common.task_checkpoint import convert_checkpoint_file

    return convert_checkpoint_file(
        src,
        dst,
        convert_upstream_state_dict,
        source_format='upstream BEVFormer-Occ',
        error=OccupancyDataError,
        missing_error=OccupancyDataError,
        weights_only=weights_only,
    )
