"""Upstream BEVFormer-Occ checkpoint keys → BEVFormerOcc (tiny config; no real weights reachable)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmdet3d')

from mmengine.config import Config
from mmengine.registry import init_default_scope

import interndrive.occupancy.registration  # noqa: F401
from interndrive.occupancy.checkpoint import convert_upstream_state_dict
from interndrive.occupancy.errors import OccupancyDataError
from interndrive.occupancy.task import TASK

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'

# Our prefix -> the upstream one, written out from REFERENCE.md §3.3 (BEVFormerOccHead holds
# bev_embedding / positional_encoding; TransformerOcc holds the rest, decoder and predicter included).
TO_UPSTREAM = {
    'img_backbone.': 'img_backbone.',
    'img_neck.': 'img_neck.',
    'bev_constructor.bev_embedding.': 'pts_bbox_head.bev_embedding.',
    'bev_constructor.positional_encoding.': 'pts_bbox_head.positional_encoding.',
    'bev_constructor.level_embeds': 'pts_bbox_head.transformer.level_embeds',
    'bev_constructor.cams_embeds': 'pts_bbox_head.transformer.cams_embeds',
    'bev_constructor.can_bus_mlp.': 'pts_bbox_head.transformer.can_bus_mlp.',
    'bev_constructor.encoder.': 'pts_bbox_head.transformer.encoder.',
    'occ_head.decoder.': 'pts_bbox_head.transformer.decoder.',
    'occ_head.predicter.': 'pts_bbox_head.transformer.predicter.',
}


def _build():
    from mmdet3d.registry import MODELS

    init_default_scope('mmdet3d')
    cfg = Config.fromfile(str(CONFIGS / 'bevformer_tiny_occ_cpu.py'))
    cfg.model.img_backbone.pop('init_cfg', None)
    return MODELS.build(cfg.model)


def _upstream_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        prefix = next(p for p in TO_UPSTREAM if key.startswith(p))  # StopIteration = unmapped key
        out['module.' + TO_UPSTREAM[prefix] + key[len(prefix) :]] = value
    return out


@pytest.fixture(scope='module')
def upstream():
    torch.manual_seed(0)
    model = _build()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return state, _upstream_layout(state)


def test_upstream_keys_load_strictly_and_exactly(upstream) -> None:
    state, upstream_state = upstream
    assert 'module.pts_bbox_head.transformer.decoder.0.conv.weight' in upstream_state
    assert 'module.pts_bbox_head.transformer.decoder.1.bn.running_var' in upstream_state
    extra = dict(upstream_state, **{'pts_bbox_head.loss_occ.extra': torch.zeros(1)})
    converted, unused = convert_upstream_state_dict({'state_dict': extra, 'meta': {}})
    assert unused == ['pts_bbox_head.loss_occ.extra']
    torch.manual_seed(1)  # different initial weights: loading must overwrite every tensor
    fresh = _build()
    result = fresh.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_incomplete_checkpoints_are_named(upstream) -> None:
    _, upstream_state = upstream
    backbone_only = {k: v for k, v in upstream_state.items() if '.img_backbone.' in k}
    with pytest.raises(OccupancyDataError, match=r'backbone\.pth: .*voxel decoder \(Conv3d\)'):
        convert_upstream_state_dict(backbone_only, 'backbone.pth')
    with pytest.raises(OccupancyDataError, match='expected a state dict'):
        convert_upstream_state_dict({'state_dict': {}}, 'empty.pth')


def test_convert_checkpoint_command(upstream, tmp_path, capsys) -> None:
    state, upstream_state = upstream
    torch.save({'state_dict': upstream_state}, tmp_path / 'upstream.pth')
    parser = argparse.ArgumentParser()
    TASK.add_commands(parser.add_subparsers(dest='command', required=True))
    args = parser.parse_args(
        ['convert-checkpoint', str(tmp_path / 'upstream.pth'), str(tmp_path / 'ours.pth')]
    )
    assert args.func(args) == 0
    written = torch.load(tmp_path / 'ours.pth', weights_only=True)['state_dict']
    assert written.keys() == state.keys()
    out = capsys.readouterr().out
    assert f'{len(state)} tensors' in out
    assert 'bev_axes=right_forward' in out and '--legacy-can-bus' in out
    args = parser.parse_args(['convert-checkpoint', str(tmp_path / 'nope.pth'), 'x.pth'])
    with pytest.raises(
        OccupancyDataError, match=r"upstream checkpoint '.*nope\.pth' does not exist"
    ):
        args.func(args)


def test_upstream_flags_of_the_readme_build() -> None:
    from mmdet3d.registry import MODELS

    init_default_scope('mmdet3d')
    cfg = Config.fromfile(str(CONFIGS / 'bevformer_tiny_occ_cpu.py'))
    cfg.model.img_backbone.pop('init_cfg', None)
    cfg.merge_from_dict(
        {
            'model.bev_constructor.bev_axes': 'right_forward',
            'model.bev_constructor.rotate_center': [100, 100],
            'model.bev_constructor.encoder.reproduce_shift_ref_2d_bug': True,
        }
    )
    model = MODELS.build(cfg.model)
    assert model.bev_constructor.bev_axes == 'right_forward'
