"""Upstream VectorMapNet checkpoints → our VectorMapNet (no released weights are reachable here).

The upstream layout comes from `upstream_vectormapnet_layout.py` (inverse mapping written from
upstream's module code); `test_upstream_layer_names_match_the_real_modules` checks its transformer
layer names against the real `nn.TransformerDecoderLayer` and mmcv `BaseTransformerLayer`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmdet3d.models', reason='mmdet3d (built by the lead) is not installed')
pytest.importorskip('mmcv.ops', reason='mmcv with ops (built by the lead) is not installed')

from mmengine.config import Config
from mmengine.registry import init_default_scope
from upstream_vectormapnet_layout import (
    UPSTREAM_ONLY_BUFFERS,
    UPSTREAM_ONLY_LEARNED,
    to_upstream_state_dict,
)

from interndrive.hdmap.checkpoint import (
    UPSTREAM_RUN_OPTIONS,
    convert_upstream_state_dict,
    not_loaded_reason,
)
from interndrive.hdmap.errors import HDMapInputError, MissingPathError
from interndrive.hdmap.models.map_element_detector import coord_grid
from interndrive.hdmap.registration import register_modules
from interndrive.hdmap.task import CONFIG_DIR, TASK


def _build(name: str = 'vectormapnet_tiny_cpu', seed: int = 0):
    from mmdet3d.registry import MODELS

    register_modules()
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(str(CONFIG_DIR / f'{name}.py'))
    cfg.model.backbone_cfg.img_backbone.pop('init_cfg', None)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    # distinct values everywhere (ReZero gates and BN statistics start as constants), so that a
    # swapped or misplaced tensor cannot go unnoticed
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


def _cameras(n: int, width: int, height: int) -> torch.Tensor:
    """(n, 4, 4) ego → pixel projections of n cameras spread around the ego car."""
    out = []
    for i in range(n):
        yaw = 2 * math.pi * i / n
        c, s = math.cos(yaw), math.sin(yaw)
        ego2cam = torch.tensor([[s, -c, 0, 0], [0, 0, -1, 1.5], [c, s, 0, 0], [0, 0, 0, 1.0]])
        k = torch.eye(4)
        k[0, 0] = k[1, 1] = width / 2
        k[0, 2], k[1, 2] = width / 2, height / 2
        out.append(k @ ego2cam)
    return torch.stack(out)


def _outputs(model) -> dict[str, object]:
    g = torch.Generator().manual_seed(5)
    imgs = torch.randn(1, 7, 3, 64, 128, generator=g)
    with torch.no_grad():
        bev = model.neck(model.backbone(imgs, _cameras(7, 128, 64)[None]))
        logits, boxes = model.head.det_net(bev)
        pred = model.head.predict(bev, greedy=True)[0]
    return {'bev': bev, 'logits': logits[-1], 'boxes': boxes[-1], 'pred': pred}


def test_upstream_checkpoint_loads_strictly_and_reproduces_every_tensor_and_output(tiny) -> None:
    model, upstream = tiny
    assert 'module.head.gen_net.decoder.layers.1.self_attn.in_proj_weight' in upstream
    assert 'module.head.det_net.pre_branches.cls.1.weight' in upstream
    converted, unused = convert_upstream_state_dict({'state_dict': upstream, 'meta': {}}, 'up.pth')
    assert unused == sorted(UPSTREAM_ONLY_LEARNED + UPSTREAM_ONLY_BUFFERS)
    fresh = _build(seed=1)  # other weights: loading must overwrite every tensor
    result = fresh.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    ours, theirs = _outputs(model), _outputs(fresh)
    assert torch.isfinite(ours['bev']).all() and len(ours['pred']['vectors']) > 0
    for key in ('bev', 'logits', 'boxes'):
        assert torch.equal(ours[key], theirs[key]), key
    for a, b in zip(ours['pred']['vectors'], theirs['pred']['vectors'], strict=True):
        assert a.shape == b.shape and (a == b).all()


def test_upstream_only_tensors_are_reported_with_their_reason(tiny) -> None:
    """Genuine architectural differences: upstream creates these tensors but its forward never reads
    them (and the buffers are recomputed from the config), so our model has no place for them."""
    _, upstream = tiny
    _, unused = convert_upstream_state_dict(upstream)
    for key in UPSTREAM_ONLY_LEARNED:
        assert key in unused and 'never' in not_loaded_reason(key), key
    for key in UPSTREAM_ONLY_BUFFERS:
        assert key in unused and 'buffer' in not_loaded_reason(key), key
    _, unused = convert_upstream_state_dict(
        dict(upstream, **{'head.aux_seg.weight': torch.zeros(1)})
    )
    assert 'head.aux_seg.weight' in unused
    assert 'unknown' in not_loaded_reason('head.aux_seg.weight')


def test_layout_rewrites_are_the_same_function(tiny) -> None:
    """The (y, x) coordinate embedding and the packed q/k/v attention compute what ours compute."""
    _, upstream = tiny
    converted, _ = convert_upstream_state_dict(upstream)
    fresh = _build(seed=1)
    fresh.load_state_dict(converted)
    h, w = 3, 5
    ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
    yx_grid = torch.stack(torch.meshgrid(ys, xs, indexing='ij'), dim=-1).reshape(-1, 2)
    for net in ('det_net', 'gen_net'):
        weight = upstream[f'module.head.{net}.img_coord_embed.weight']
        bias = upstream[f'module.head.{net}.img_coord_embed.bias']
        ours = getattr(fresh.head, net).img_coord_embed(coord_grid(h, w, 'cpu', torch.float32))
        torch.testing.assert_close(ours, F.linear(yx_grid, weight, bias), rtol=0, atol=1e-6)
    prefix = 'module.head.gen_net.decoder.layers.0.multihead_attn.'
    d = fresh.head.gen_net.d_model
    mha = torch.nn.MultiheadAttention(
        d, fresh.head.gen_net.layers[0].cross_attn.nhead, batch_first=True
    )
    mha.load_state_dict({k[len(prefix) :]: v for k, v in upstream.items() if k.startswith(prefix)})
    q, kv = torch.randn(2, 4, d), torch.randn(2, 6, d)
    attn = fresh.head.gen_net.layers[0].cross_attn
    ours = attn(q, *attn.keys_values(kv))
    torch.testing.assert_close(ours, mha(q, kv, kv, need_weights=False)[0], rtol=1e-5, atol=1e-5)


def test_ipm_fusion_channels_are_in_upstreams_order(tiny) -> None:
    """Upstream flattens (B, C+3, P, ny, nx) to channel c·P + p before `outconvs`; a released fusion
    conv only fits if ours feeds the same order (same shape either way, so no key check can see it)."""
    model, _ = tiny
    enc = model.backbone
    captured = {}
    handle = enc.outconv.register_forward_hook(lambda m, args, out: captured.update(x=args[0]))
    with torch.no_grad():
        enc(torch.randn(1, 7, 3, 64, 128), _cameras(7, 128, 64)[None])
    handle.remove()
    x = captured['x'][0]
    planes = len(enc.heights)
    feats = x.shape[0] // planes - 3
    for p in range(planes):
        for axis in range(3):  # the plane's x, y, z come after the C feature channels
            assert torch.equal(x[(feats + axis) * planes + p], enc.planes[p, ..., axis])


def _meta_model(name: str):
    from mmdet3d.registry import MODELS

    register_modules()
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(str(CONFIG_DIR / f'{name}.py'))
    cfg.model.backbone_cfg.img_backbone.pop('init_cfg', None)
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def test_full_config_keys_and_shapes_on_the_meta_device() -> None:
    model = _meta_model('vectormapnet_intern')
    upstream = to_upstream_state_dict(model)
    # shapes as upstream's code builds them for vectormapnet_intern.py (REFERENCE.md §4.3)
    expected = {
        'backbone.upsample.fscale.3.2.gn.weight': (128,),
        'backbone.upsample.fscale.1.0.conv.bias': (128,),
        'backbone.outconvs.weight': (128, (128 + 3) * 4, 3, 3),
        'backbone.masked_embeds.weight': (4, 128),
        'backbone.bev_planes': (4, 100, 200, 3),
        'neck.0.weight': (64, 128, 7, 7),
        'neck.4.1.bn2.running_var': (64,),
        'neck.5.weight': (128, 64, 1, 1),
        'head.det_net.query_embedding.weight': (120, 512),
        'head.det_net.bbox_embedding.weight': (2, 512),
        'head.det_net.transformer.level_embeds': (1, 256),
        'head.det_net.transformer.decoder.layers.5.attentions.0.attn.in_proj_weight': (768, 256),
        'head.det_net.transformer.decoder.layers.5.attentions.1.sampling_offsets.weight': (64, 256),
        'head.det_net.transformer.decoder.layers.5.ffns.0.layers.0.0.weight': (512, 256),
        'head.det_net.transformer.decoder.layers.5.ffns.0.layers.1.weight': (256, 512),
        'head.det_net.pre_branches.cls.5.weight': (3, 512),
        'head.det_net.pre_branches.reg.5.6.weight': (2, 256),
        'head.gen_net.decoder.layers.5.self_attn.in_proj_weight': (768, 256),
        'head.gen_net.decoder.layers.5.multihead_attn.in_proj_bias': (768,),
        'head.gen_net.decoder.layers.5.res_weight3': (1,),
        'head.gen_net.decoder.layers.5.linear1.weight': (512, 256),
        'head.gen_net.vertex_embed.weight': (201, 256),
        'head.gen_net.pos_embeddings.weight': (500, 256),
        'head.gen_net._project_to_logits.weight': (201, 256),
    }
    for key, shape in expected.items():
        assert tuple(upstream[key].shape) == shape, key
    assert not any(k.endswith(('post_norm.weight', 'final_norm.weight')) for k in upstream)
    converted, unused = convert_upstream_state_dict(upstream)
    own = model.state_dict()
    assert converted.keys() == own.keys()
    for key, value in own.items():
        assert converted[key].shape == value.shape, key
    assert unused == sorted(UPSTREAM_ONLY_LEARNED + UPSTREAM_ONLY_BUFFERS)


def test_resnet50_config_converts_to_exactly_our_keys() -> None:
    """vectormapnet_base: mmdet ResNet-50 with DCNv2 (`conv2.conv_offset`) keeps its names."""
    model = _meta_model('vectormapnet_base')
    upstream = to_upstream_state_dict(model)
    assert 'backbone.img_backbone.layer3.0.conv2.conv_offset.weight' in upstream
    converted, unused = convert_upstream_state_dict(upstream)
    own = model.state_dict()
    assert converted.keys() == own.keys()
    assert all(converted[k].shape == v.shape for k, v in own.items())
    assert unused == sorted(UPSTREAM_ONLY_LEARNED + UPSTREAM_ONLY_BUFFERS)


def test_upstream_layer_names_match_the_real_modules(tiny) -> None:
    """The helper's layer names are those of nn.TransformerDecoderLayer (+ ReZero gates) and of an mmcv
    BaseTransformerLayer built with upstream's detector layer config."""
    from mmcv.cnn.bricks.transformer import BaseTransformerLayer

    _, upstream = tiny
    model = tiny[0]
    gen = model.head.gen_net
    layer = torch.nn.TransformerDecoderLayer(gen.d_model, 4, 2 * gen.d_model)
    prefix = 'module.head.gen_net.decoder.layers.0.'
    names = {k[len(prefix) :] for k in upstream if k.startswith(prefix)}
    assert names == set(layer.state_dict()) | {'res_weight1', 'res_weight2', 'res_weight3'}
    d = model.head.det_net.embed_dims
    mmcv_layer = BaseTransformerLayer(
        attn_cfgs=[
            dict(type='MultiheadAttention', embed_dims=d, num_heads=4),
            dict(type='MultiScaleDeformableAttention', embed_dims=d, num_heads=4, num_levels=1),
        ],
        ffn_cfgs=dict(type='FFN', embed_dims=d, feedforward_channels=2 * d, num_fcs=2),
        operation_order=('norm', 'self_attn', 'norm', 'cross_attn', 'norm', 'ffn'),
    )
    prefix = 'module.head.det_net.transformer.decoder.layers.0.'
    names = {k[len(prefix) :] for k in upstream if k.startswith(prefix)}
    assert names == set(mmcv_layer.state_dict())


def test_incomplete_or_foreign_checkpoints_are_refused_naming_the_missing_parts(tiny) -> None:
    model, upstream = tiny
    no_generator = {k: v for k, v in upstream.items() if '.gen_net.' not in k}
    with pytest.raises(
        HDMapInputError,
        match=r'det\.pth: .*generator decoder \(head\.gen_net\.decoder\.\*\), generator logits',
    ):
        convert_upstream_state_dict(no_generator, 'det.pth')
    backbone_only = {k: v for k, v in upstream.items() if '.img_backbone.' in k}
    with pytest.raises(HDMapInputError, match=r'FPN .*BEV neck .*detector decoder'):
        convert_upstream_state_dict(backbone_only, 'backbone.pth')
    with pytest.raises(HDMapInputError, match='not an upstream VectorMapNet checkpoint'):
        convert_upstream_state_dict(model.state_dict(), 'ours.pth')  # already converted
    with pytest.raises(HDMapInputError, match='expected a state dict'):
        convert_upstream_state_dict({'state_dict': {}}, 'empty.pth')
    iterative = dict(upstream)
    iterative['module.head.det_net.pre_branches.cls.1.weight'] = (
        iterative['module.head.det_net.pre_branches.cls.1.weight'] + 1
    )
    with pytest.raises(
        HDMapInputError, match=r'pre_branches\.cls\.1\.weight differs .*iterative=True'
    ):
        convert_upstream_state_dict(iterative, 'iter.pth')
    no_gate = {k: v for k, v in upstream.items() if not k.endswith('layers.1.res_weight2')}
    with pytest.raises(
        HDMapInputError, match=r'layers\.1\.res_weights: upstream has res_weight\[1, 3\]'
    ):
        convert_upstream_state_dict(no_gate, 'gate.pth')


def test_convert_checkpoint_command(tiny, tmp_path: Path, capsys) -> None:
    model, upstream = tiny
    torch.save({'state_dict': upstream, 'meta': {'epoch': 130}}, tmp_path / 'upstream.pth')
    parser = argparse.ArgumentParser()
    TASK.add_commands(parser.add_subparsers(dest='command', required=True))
    args = parser.parse_args(
        ['convert-checkpoint', str(tmp_path / 'upstream.pth'), str(tmp_path / 'ours.pth')]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f'{len(model.state_dict())} tensors' in out
    assert 'not loaded: backbone.masked_embeds.weight (created by upstream' in out
    assert 'model.head_cfg.upstream_bbox_tokens=True' in out
    written = torch.load(tmp_path / 'ours.pth', weights_only=True)
    assert written['meta']['unused'].keys() == set(UPSTREAM_ONLY_LEARNED + UPSTREAM_ONLY_BUFFERS)
    fresh = _build(seed=1)
    fresh.load_state_dict(written['state_dict'], strict=True)
    assert torch.equal(
        fresh.head.gen_net.layers[1].res_weights, model.head.gen_net.layers[1].res_weights
    )
    args = parser.parse_args(['convert-checkpoint', str(tmp_path / 'nope.pth'), 'x.pth'])
    with pytest.raises(MissingPathError, match=r"upstream checkpoint '.*nope\.pth' does not exist"):
        args.func(args)


def test_upstream_bbox_tokens_for_converted_weights() -> None:
    """Upstream conditions its generator on GT corners `int(norm·(canvas−1))` (no +1) and on `round(box)`
    of the detections; `upstream_bbox_tokens=True` reproduces both for converted weights."""
    from interndrive.hdmap.data.map_targets import map_targets, vectorize_map
    from interndrive.hdmap.models.vectormapnet import DGHead

    det = dict(in_channels=8, embed_dims=32, num_layers=1, num_heads=4, ffn_dims=32, num_query=6)
    gen = dict(in_channels=8, d_model=32, nhead=4, dim_feedforward=32, num_layers=1)
    ours, upstream = DGHead(det, gen), DGHead(det, gen, upstream_bbox_tokens=True)
    boxes = torch.tensor([[0.4, 99.6, 199.5, 100.0], [0.6, 0.2, 200.0, 0.5]])
    assert upstream.quantize_boxes(boxes).tolist() == [[0, 100, 200, 100], [1, 0, 200, 0]]
    assert ours.quantize_boxes(boxes).tolist() == [[1, 99, 199, 100], [1, 1, 200, 1]]
    polys = map_targets(vectorize_map({1: [torch.tensor([[-30.0, 1.5, 0], [30, 1.5, 0]]).numpy()]}))
    q = torch.as_tensor(polys['qkeypoint'], dtype=torch.long)
    assert torch.equal(upstream._gen_targets([polys], torch.device('cpu'))[2], q)
    assert torch.equal(ours._gen_targets([polys], torch.device('cpu'))[2], q + 1)
    from mmdet3d.registry import MODELS

    register_modules()
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(str(CONFIG_DIR / 'vectormapnet_tiny_cpu.py'))
    cfg.merge_from_dict({'model.head_cfg.upstream_bbox_tokens': True})  # the README's --cfg-options
    cfg.model.backbone_cfg.img_backbone.pop('init_cfg', None)
    assert MODELS.build(cfg.model).head.upstream_bbox_tokens is True


@pytest.mark.parametrize('name', ['vectormapnet_intern', 'vectormapnet_base'])
def test_upstream_run_options_apply_to_the_reference_configs(name: str) -> None:
    from mmdet3d.registry import MODELS

    register_modules()
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(str(CONFIG_DIR / f'{name}.py'))
    cfg.merge_from_dict(dict(UPSTREAM_RUN_OPTIONS))
    pad = cfg.test_dataloader.dataset.pipeline[3]
    assert pad.type == 'HDMapPadMultiViewImages' and pad.upstream_pad_rescale is True
    cfg.model.backbone_cfg.img_backbone.pop('init_cfg', None)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.head.upstream_bbox_tokens and model.head.gen_net.min_vertices == 0
