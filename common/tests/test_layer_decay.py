"""Layer-wise lr decay groups (pure function and the mmengine optimizer-wrapper constructor)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip('dcnv3', reason='the dcnv3 package (dcnv3/src) is not importable')

from interndrive.common.backbones import InternImage
from interndrive.common.optim import get_layer_id, layer_decay_param_groups

DEPTHS = [4, 4, 21, 4]  # InternImage-S, as the occupancy config
NUM_LAYERS = 33


class Detector(nn.Module):
    """Shape of a BEVFormer model: ``img_backbone`` + neck + head with level_embeds/sampling_offsets."""

    def __init__(self) -> None:
        super().__init__()
        self.img_backbone = InternImage(
            core_op='DCNv3_pytorch', channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8),
            layer_scale=1.0, post_norm=True,
        )  # fmt: skip
        self.img_neck = nn.Conv2d(128, 8, 1)
        self.head = nn.Module()
        self.head.level_embeds = nn.Parameter(torch.zeros(4, 8))
        self.head.sampling_offsets = nn.Linear(8, 16)
        self.head.cls = nn.Linear(8, 3)


@pytest.mark.parametrize(
    ('name', 'layer_id'),
    [
        ('img_backbone.patch_embed.conv1.weight', 0),
        ('pts_bbox_head.transformer.level_embeds', 0),
        ('img_backbone.levels.0.blocks.0.dcn.offset.weight', 1),
        ('img_backbone.levels.0.blocks.3.mlp.fc1.weight', 4),
        ('img_backbone.levels.0.downsample.conv.weight', 5),
        ('img_backbone.levels.1.blocks.0.norm1.0.weight', 5),  # = stage-0 downsample, as upstream
        ('img_backbone.levels.2.blocks.20.gamma1', 1 + 4 + 4 + 20),
        ('img_backbone.levels.2.downsample.norm.1.weight', 30),
        ('img_backbone.levels.3.blocks.3.gamma2', 33),
        ('img_backbone.levels.3.norm.0.weight', 30),  # upstream caps the last stage at stage-2 end
        ('module.img_backbone.levels.1.blocks.2.dcn.mask.bias', 7),
        ('img_neck.fpn_convs.0.conv.weight', 34),
        ('pts_bbox_head.cls_branches.0.weight', 34),
    ],
)
def test_layer_ids_match_upstream_table(name: str, layer_id: int) -> None:
    assert get_layer_id(name, NUM_LAYERS + 2, DEPTHS) == layer_id


def test_backbone_prefix_is_configurable() -> None:
    assert (
        get_layer_id(
            'backbone.levels.0.blocks.1.mlp.fc1.weight', 35, DEPTHS, backbone_prefix='backbone'
        )
        == 2
    )
    assert get_layer_id('backbone.levels.0.blocks.1.mlp.fc1.weight', 35, DEPTHS) == 34


def _groups(rate: float, **kw) -> list[dict]:
    return layer_decay_param_groups(
        Detector(),
        base_lr=2e-4,
        weight_decay=0.05,
        num_layers=5,
        layer_decay_rate=rate,
        depths=[1, 1, 2, 1],
        **kw,
    )


def test_decay_one_gives_identical_lr_everywhere() -> None:
    groups = _groups(1.0)
    assert {g['lr'] for g in groups} == {2e-4}
    assert {g['lr_scale'] for g in groups} == {1.0}
    names = [n for g in groups for n in g['param_names']]
    assert sorted(names) == sorted(n for n, _ in Detector().named_parameters())  # each param once


def test_decay_scales_and_weight_decay_rules() -> None:
    by_name = {n: g for g in _groups(0.5) for n in g['param_names']}
    num_max = 5 + 2
    assert by_name['img_neck.weight']['lr_scale'] == 1.0
    assert by_name['img_backbone.levels.3.blocks.0.mlp.fc1.weight']['lr_scale'] == 0.5 ** (
        num_max - 5 - 1
    )
    assert by_name['img_backbone.patch_embed.conv1.weight']['lr_scale'] == 0.5 ** (num_max - 1)
    assert by_name['head.level_embeds']['lr_scale'] == 0.5 ** (num_max - 1)
    # no weight decay: 1-D, bias, norm, sampling_offsets
    for n in ('img_backbone.levels.0.blocks.0.gamma1', 'img_neck.bias',
              'img_backbone.levels.0.blocks.0.dcn.dw_conv.1.1.weight', 'head.sampling_offsets.weight'):  # fmt: skip
        assert by_name[n]['weight_decay'] == 0.0, n
    assert by_name['img_backbone.levels.0.blocks.0.dcn.offset.weight']['weight_decay'] == 0.05
    # lr ordering: deeper backbone blocks learn faster
    lrs = [by_name[f'img_backbone.levels.2.blocks.{j}.mlp.fc1.weight']['lr'] for j in (0, 1)]
    assert lrs[0] < lrs[1]


def test_offset_scale_and_frozen_params() -> None:
    det = Detector()
    det.img_backbone.patch_embed.requires_grad_(False)
    groups = layer_decay_param_groups(
        det,
        base_lr=1.0,
        weight_decay=0.0,
        num_layers=5,
        layer_decay_rate=1.0,
        depths=[1, 1, 2, 1],
        offset_lr_scale=0.1,
    )
    by_name = {n: g for g in groups for n in g['param_names']}
    assert not any(n.startswith('img_backbone.patch_embed') for n in by_name)
    assert by_name['head.sampling_offsets.weight']['lr'] == pytest.approx(0.1)
    assert by_name['head.sampling_offsets.weight']['group_name'].endswith('offset_lr_scale')


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match='num_layers=3 is smaller than sum'):
        layer_decay_param_groups(
            Detector(), 1.0, 0.0, num_layers=3, layer_decay_rate=1.0, depths=[1, 1, 2, 1]
        )
    with pytest.raises(ValueError, match='layer_decay_rate must be in'):
        _groups(1.5)


def test_mmengine_constructor_builds_adamw_with_groups() -> None:
    pytest.importorskip('mmengine')
    from mmengine.optim import build_optim_wrapper

    import interndrive.common.openmmlab  # noqa: F401  (registers the constructor)

    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05),
        constructor='CustomLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(num_layers=5, layer_decay_rate=0.9, depths=[1, 1, 2, 1]),
        clip_grad=dict(max_norm=35, norm_type=2),
    )
    det = Detector()
    wrapper = build_optim_wrapper(det, cfg)
    groups = wrapper.optimizer.param_groups
    assert isinstance(wrapper.optimizer, torch.optim.AdamW)
    assert sum(len(g['params']) for g in groups) == len(list(det.parameters()))
    lr = {n: g['lr'] for g in groups for n in g['param_names']}
    assert lr['img_neck.weight'] == pytest.approx(2e-4)
    assert lr['img_backbone.patch_embed.conv1.weight'] == pytest.approx(2e-4 * 0.9**6)
    # decay 1.0 (the occupancy config): every group at the base lr
    cfg['paramwise_cfg']['layer_decay_rate'] = 1.0
    assert {g['lr'] for g in build_optim_wrapper(det, cfg).optimizer.param_groups} == {2e-4}
    cfg['paramwise_cfg'] = dict(num_layers=5)
    with pytest.raises(ValueError, match=r"lacks \['layer_decay_rate', 'depths'\]"):
        build_optim_wrapper(det, cfg)


def test_classification_lr_decay_keywords_match_upstream_rule() -> None:
    """``InternImage.lr_decay_keywords`` (CLS fine-tuning): last block 1.0, decaying backwards."""
    model = Detector().img_backbone  # depths (1, 1, 2, 1)
    ratios = model.lr_decay_keywords(decay_ratio=0.5)
    assert ratios['levels.3.blocks.0.'] == 1.0
    assert ratios['levels.2.blocks.1.'] == 0.5
    assert ratios['levels.2.blocks.0.'] == 0.25
    assert ratios['levels.0.blocks.0.'] == 0.5**4
    assert ratios['patch_embed'] == ratios['levels.0.blocks.0.']
    assert ratios['levels.1.downsample'] == ratios['levels.1.norm'] == ratios['levels.2.blocks.0.']
    assert 'levels.3.downsample' not in ratios
