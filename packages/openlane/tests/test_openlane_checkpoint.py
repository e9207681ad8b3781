"""Upstream ROAD_BEVFormer checkpoints → our RoadBEVFormer (no released weights are reachable here).

The upstream layout comes from `upstream_road_bevformer_layout.py` (inverse mapping written from
upstream's module code); `test_upstream_layer_names_match_the_real_mmcv_modules` checks its
transformer layer names against mmcv `BaseTransformerLayer`s built with upstream's layer configs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

pytest.importorskip('mmdet3d.models', reason='mmdet3d 1.4 (with mmcv ops) is not installed')

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from openlane_model_inputs import make_batch
from upstream_road_bevformer_layout import UPSTREAM_ONLY, to_upstream_state_dict, upstream_shapes

import interndrive.openlane.registration  # noqa: F401
from interndrive.common.engine.checks import MissingPathError
from interndrive.openlane.checkpoint import (
    UPSTREAM_RUN_OPTIONS,
    UpstreamCheckpointError,
    convert_upstream_state_dict,
    not_loaded_reason,
)
from interndrive.openlane.task import TASK


def _config(name: str) -> Config:
    cfg = Config.fromfile(TASK.config_dir / name)
    cfg.model.img_backbone.pop('init_cfg', None)
    return cfg


def _build(name: str = 'olv2_tiny_cpu.py', seed: int = 0, device: str = 'cpu'):
    from mmdet3d.registry import MODELS

    cfg = _config(name)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(seed)
    with torch.device(device):
        model = MODELS.build(cfg.model)
    if device == 'meta':
        return model
    # distinct values everywhere (LayerNorms, biases and BN statistics start as constants), so
    # that a swapped or misplaced tensor cannot go unnoticed
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                noise = 0.02 * torch.randn_like(value)
                value.copy_(value.abs() + 0.5 if 'running_var' in key else value + noise)
    return model.eval()


@pytest.fixture(scope='module')
def tiny():
    model = _build()
    return model, to_upstream_state_dict(model, prefix='module.')


def _outputs(model) -> dict[str, torch.Tensor]:
    inputs, samples = make_batch(batch=1, height=32, width=64, seed=3)
    with torch.no_grad():
        lane, te, lclc, lcte = model(inputs, samples, mode='tensor')
    return {
        'lane_cls': lane['cls'],
        'lanes': lane['lanes'],
        'te_cls': te['cls'],
        'te_boxes': te['boxes'],
        'lclc': lclc,
        'lcte': lcte,
    }


def test_upstream_checkpoint_loads_strictly_and_reproduces_every_tensor_and_output(tiny) -> None:
    model, upstream = tiny
    for key in (
        'module.pts_bbox_head.transformer.decoder.layers.1.attentions.0.attn.in_proj_weight',
        'module.bbox_head.transformer.encoder.layers.0.attentions.0.sampling_offsets.weight',
        'module.bbox_head.cls_branches.1.weight',
        'module.lcte_head.classifier.layers.2.bias',
        'module.bev_constructor.encoder.layers.0.attentions.1.deformable_attention.value_proj.bias',
        'module.img_backbone.patch_embed.conv1.weight',
    ):
        assert key in upstream, key
    converted, unused = convert_upstream_state_dict({'state_dict': upstream, 'meta': {}}, 'up.pth')
    assert unused == list(UPSTREAM_ONLY)
    fresh = _build(seed=1)  # other weights: loading must overwrite every tensor
    result = fresh.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    own = model.state_dict()
    assert len(own) == len(converted)
    for key, value in own.items():
        assert torch.equal(fresh.state_dict()[key], value), key
    ours, theirs = _outputs(model), _outputs(fresh)
    assert all(torch.isfinite(v).all() for v in ours.values())
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]), key


def test_upstream_only_tensors_are_reported_with_their_reason(tiny) -> None:
    """Genuine architectural difference: upstream's lane head saves the 15 L1 weights of its training
    loss (`code_weights`, all 1.0 in its configs) as a frozen parameter; our loss has no such tensor
    and no prediction depends on it, so the converter reports it rather than dropping it."""
    model, upstream = tiny
    _, unused = convert_upstream_state_dict(upstream)
    assert unused == ['pts_bbox_head.code_weights']
    assert 'L1' in not_loaded_reason('pts_bbox_head.code_weights')
    assert 'code_weights' not in ''.join(model.state_dict())
    _, unused = convert_upstream_state_dict(
        dict(upstream, **{'pts_bbox_head.aux.weight': torch.zeros(1)})
    )
    assert 'pts_bbox_head.aux.weight' in unused
    assert 'unknown' in not_loaded_reason('pts_bbox_head.aux.weight')
    weighted = dict(upstream, **{'module.pts_bbox_head.code_weights': torch.full((15,), 2.0)})
    with pytest.warns(
        UserWarning, match=r'w\.pth: pts_bbox_head\.code_weights are \[2\.0, .*unaffected'
    ):
        convert_upstream_state_dict(weighted, 'w.pth')


@pytest.mark.parametrize('name', ['internimage-s.py', 'baseline_large.py'])
def test_full_config_keys_and_shapes_on_the_meta_device(name: str) -> None:
    model = _build(name, device='meta')
    upstream = to_upstream_state_dict(model)
    for key, shape in upstream_shapes().items():
        assert tuple(upstream[key].shape) == shape, key
    if name == 'internimage-s.py':  # InternImage-S stem: channels // 2 = 40
        assert tuple(upstream['img_backbone.patch_embed.conv1.weight'].shape) == (40, 3, 3, 3)
        assert tuple(upstream['img_neck.lateral_convs.3.conv.weight'].shape) == (256, 640, 1, 1)
    else:  # mmdet ResNet-50 keeps its names (BN statistics included)
        assert 'img_backbone.layer4.2.bn3.running_var' in upstream
        assert tuple(upstream['img_neck.lateral_convs.2.conv.weight'].shape) == (256, 2048, 1, 1)
    converted, unused = convert_upstream_state_dict(upstream, name)
    own = model.state_dict()
    assert converted.keys() == own.keys()
    for key, value in own.items():
        assert converted[key].shape == value.shape, key
    assert unused == list(UPSTREAM_ONLY)


def test_renamed_module_structures_compute_the_same_function(tiny) -> None:
    """The two renames that change module structure: upstream's `MLP` (a `layers` list of Linear,
    ReLU between them in forward) → our `nn.Sequential` at indices 0/2/4, and upstream's bare TE
    classification Linear → our one-Linear `nn.Sequential`. Upstream's forward is written out here."""
    model, upstream = tiny
    x = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(7))

    def upstream_mlp(prefix: str, inputs: torch.Tensor) -> torch.Tensor:
        for i in range(3):
            w, b = upstream[f'{prefix}.layers.{i}.weight'], upstream[f'{prefix}.layers.{i}.bias']
            inputs = torch.nn.functional.linear(inputs, w, b)
            inputs = inputs.relu() if i < 2 else inputs
        return inputs

    with torch.no_grad():
        for head in ('lclc_head', 'lcte_head'):
            ours = getattr(model, head)
            assert torch.equal(ours.mlp_o1(x), upstream_mlp(f'module.{head}.MLP_o1', x))
            assert torch.equal(ours.mlp_o2(x), upstream_mlp(f'module.{head}.MLP_o2', x))
            pairs = torch.randn(2, 5, 256, generator=torch.Generator().manual_seed(8))
            assert torch.equal(
                ours.classifier(pairs), upstream_mlp(f'module.{head}.classifier', pairs)
            )
        for layer, branch in enumerate(model.te_head.cls_branches):
            w = upstream[f'module.bbox_head.cls_branches.{layer}.weight']
            b = upstream[f'module.bbox_head.cls_branches.{layer}.bias']
            assert torch.equal(branch(x), torch.nn.functional.linear(x, w, b))


def test_upstream_layer_names_match_the_real_mmcv_modules(tiny) -> None:
    """The helper's transformer layer names are those of mmcv `BaseTransformerLayer`s built with
    upstream's decoder (both heads) and TE encoder layer configs (mmcv 2 keeps mmcv 1's names)."""
    from mmcv.cnn.bricks.transformer import BaseTransformerLayer

    _, upstream = tiny
    d = 32  # tiny config width
    ffn = dict(type='FFN', embed_dims=d, feedforward_channels=2 * d, num_fcs=2)

    def names(prefix: str) -> set[str]:
        return {k[len(prefix) :] for k in upstream if k.startswith(prefix)}

    for head, levels in (('pts_bbox_head', 1), ('bbox_head', 4)):
        decoder_layer = BaseTransformerLayer(
            attn_cfgs=[
                dict(type='MultiheadAttention', embed_dims=d, num_heads=8),
                dict(type='MultiScaleDeformableAttention', embed_dims=d, num_levels=levels),
            ],
            ffn_cfgs=ffn,
            operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'),
        )
        prefix = f'module.{head}.transformer.decoder.layers.0.'
        assert names(prefix) == set(decoder_layer.state_dict()), head
    encoder_layer = BaseTransformerLayer(
        attn_cfgs=dict(type='MultiScaleDeformableAttention', embed_dims=d),
        ffn_cfgs=ffn,
        operation_order=('self_attn', 'norm', 'ffn', 'norm'),
    )
    prefix = 'module.bbox_head.transformer.encoder.layers.0.'
    assert names(prefix) == set(encoder_layer.state_dict())


def test_incomplete_or_foreign_checkpoints_are_refused_naming_the_missing_parts(tiny) -> None:
    model, upstream = tiny
    lanes_only = {k: v for k, v in upstream.items() if '.bbox_head.' not in k and 'lcte' not in k}
    with pytest.raises(
        UpstreamCheckpointError,
        match=r'lanes\.pth: .*traffic-element head encoder \(bbox_head\.transformer\.encoder\.\*\), '
        r'traffic-element head decoder .*lane-traffic-element topology head \(lcte_head\.\*\)$',
    ):
        convert_upstream_state_dict(lanes_only, 'lanes.pth')
    backbone_only = {k: v for k, v in upstream.items() if '.img_backbone.' in k}
    with pytest.raises(UpstreamCheckpointError, match=r'FPN neck .*BEV constructer encoder .*lane'):
        convert_upstream_state_dict(backbone_only, 'backbone.pth')
    with pytest.raises(UpstreamCheckpointError, match=r'ours\.pth: .*already converted'):
        convert_upstream_state_dict(model.state_dict(), 'ours.pth')
    with pytest.raises(UpstreamCheckpointError, match='expected a state dict'):
        convert_upstream_state_dict({'state_dict': {}}, 'empty.pth')


def test_convert_checkpoint_command(tiny, tmp_path: Path, capsys) -> None:
    model, upstream = tiny
    torch.save({'state_dict': upstream, 'meta': {'epoch': 24}}, tmp_path / 'upstream.pth')
    parser = argparse.ArgumentParser()
    TASK.add_commands(parser.add_subparsers(dest='command', required=True))
    args = parser.parse_args(
        ['convert-checkpoint', str(tmp_path / 'upstream.pth'), str(tmp_path / 'ours.pth')]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f'{len(model.state_dict())} tensors' in out
    assert 'not loaded: pts_bbox_head.code_weights (frozen per-coordinate weights' in out
    assert 'test_dataloader.dataset.pipeline.1.upstream_swap=True' in out
    written = torch.load(tmp_path / 'ours.pth', weights_only=True)
    assert written['meta']['unused'].keys() == set(UPSTREAM_ONLY)
    fresh = _build(seed=1)
    fresh.load_state_dict(written['state_dict'], strict=True)
    assert torch.equal(fresh.lcte_head.classifier[4].weight, model.lcte_head.classifier[4].weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ours.pth', 'upstream.pth']  # no temp
    args = parser.parse_args(['convert-checkpoint', str(tmp_path / 'nope.pth'), 'x.pth'])
    with pytest.raises(MissingPathError, match=r"upstream checkpoint '.*nope\.pth' does not exist"):
        args.func(args)
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    args = parser.parse_args(['convert-checkpoint', str(tmp_path / 'notes.pth'), 'x.pth'])
    with (
        pytest.warns(UserWarning, match='full unpickling'),  # read_checkpoint's safe-load fallback
        pytest.raises(UpstreamCheckpointError, match=r'notes\.pth: not a readable PyTorch'),
    ):
        args.func(args)


@pytest.mark.parametrize('name', ['internimage-s.py', 'baseline_large.py'])
def test_upstream_run_options_apply_to_the_reference_configs(name: str) -> None:
    cfg = _config(name)
    cfg.merge_from_dict(dict(UPSTREAM_RUN_OPTIONS))
    for loader in ('test_dataloader', 'val_dataloader'):
        step = cfg[loader].dataset.pipeline[1]
        assert step.type == 'OLV2ResizeFrontView' and step.upstream_swap is True, loader
    assert cfg.train_dataloader.dataset.pipeline[2].upstream_swap is False  # only for evaluation


def test_cli_refuses_a_foreign_checkpoint_in_one_line(tmp_path: Path, capsys) -> None:
    """Through the real `interndrive` entry point: an upstream occupancy checkpoint is named as not
    an OpenLane-V2 one (exit status 2, no traceback, nothing written)."""
    from interndrive.common.cli import main

    occupancy = {
        'img_backbone.patch_embed.conv1.weight': torch.zeros(2, 3, 3, 3),
        'img_neck.lateral_convs.0.conv.weight': torch.zeros(2, 2, 1, 1),
        'pts_bbox_head.transformer.encoder.layers.0.norms.0.weight': torch.zeros(2),
    }
    torch.save({'state_dict': occupancy}, tmp_path / 'occ.pth')
    argv = ['openlane', 'convert-checkpoint', str(tmp_path / 'occ.pth'), str(tmp_path / 'x.pth')]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert 'occ.pth: not an upstream OpenLane-V2 baseline checkpoint, no keys for BEV' in err
    assert 'Traceback' not in err and not (tmp_path / 'x.pth').exists()
