"""BEVFormerConstructer + BEVFormerEncoder: configs, shapes, gradients, temporal alignment, cameras.

Tiny models (≤ 12×12 BEV, 2 layers, 2–3 cameras, 16 channels) keep every test well under a second.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip('mmcv.ops', reason='the BEV layers need mmcv 2.1 built with ops')

from mmengine.registry import MODELS

import interndrive.common.bev  # noqa: F401  (registers the modules)
from interndrive.common.bev import BEVFormerConstructer, BEVHistory, TemporalSelfAttention

C = 16


def tiny_cfg(
    num_cams: int = 2,
    bev_h: int = 8,
    bev_w: int = 10,
    pc_range=(-10.0, -8.0, -2.0, 10.0, 8.0, 2.0),
    num_layers: int = 2,
    num_points_in_pillar: int = 2,
    encoder_kwargs: dict | None = None,
    **kwargs,
) -> dict:
    layer = dict(
        type='BEVFormerLayer',
        attn_cfgs=[
            dict(
                type='TemporalSelfAttention',
                embed_dims=C,
                num_heads=2,
                num_levels=1,
                num_points=2,
                dropout=0.0,
            ),
            dict(
                type='SpatialCrossAttention',
                embed_dims=C,
                num_cams=num_cams,
                dropout=0.0,
                deformable_attention=dict(
                    type='MSDeformableAttention3D',
                    embed_dims=C,
                    num_heads=2,
                    num_levels=2,
                    num_points=max(4, num_points_in_pillar),  # a multiple of the anchors
                ),
            ),
        ],
        ffn_cfgs=dict(type='FFN', embed_dims=C, feedforward_channels=2 * C, ffn_drop=0.0),
        operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'),
    )
    encoder = dict(
        type='BEVFormerEncoder',
        num_layers=num_layers,
        num_points_in_pillar=num_points_in_pillar,
        transformerlayers=layer,
        **(encoder_kwargs or {}),
    )
    return dict(
        type='BEVFormerConstructer',
        bev_h=bev_h,
        bev_w=bev_w,
        pc_range=list(pc_range),
        embed_dims=C,
        num_feature_levels=2,
        num_cams=num_cams,
        encoder=encoder,
        **kwargs,
    )


def build(**kwargs) -> BEVFormerConstructer:
    torch.manual_seed(0)
    return MODELS.build(tiny_cfg(**kwargs)).eval()


def camera(yaw: float, position=(0.0, 0.0, 1.5), size=(48, 64)) -> np.ndarray:
    """lidar2img of a pinhole camera at `position` (ego frame) looking along `yaw`."""
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.stack([[s, -c, 0.0], [0.0, 0.0, -1.0], [c, s, 0.0]])  # rows: right, down, forward
    ego2cam = np.eye(4)
    ego2cam[:3, :3] = rot
    ego2cam[:3, 3] = -rot @ np.asarray(position)
    k = np.eye(4)
    k[0, 0] = k[1, 1] = size[1] / 2  # 90° horizontal field of view
    k[0, 2], k[1, 2] = size[1] / 2, size[0] / 2
    return k @ ego2cam


def metas(batch: int = 2, cams=(0.0, math.pi), seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for b in range(batch):
        # Each sample gets its own rig orientation so per-sample geometry matters.
        lidar2img = np.stack([camera(yaw + 0.3 * b) for yaw in cams])
        out.append(dict(lidar2img=lidar2img, img_shape=(48, 64, 3), can_bus=rng.normal(size=18)))
    return out


def features(batch: int = 2, num_cams: int = 2, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, num_cams, C, 6, 8, generator=gen),
        torch.randn(batch, num_cams, C, 3, 4, generator=gen),
    ]


def test_builds_from_registry_names_with_upstream_state_dict_keys() -> None:
    model = build()
    keys = set(model.state_dict())
    for key in [
        'bev_embedding.weight',
        'positional_encoding.row_embed.weight',
        'positional_encoding.col_embed.weight',
        'level_embeds',
        'cams_embeds',
        'can_bus_mlp.0.weight',
        'can_bus_mlp.2.weight',
        'can_bus_mlp.norm.weight',
        'encoder.layers.0.attentions.0.sampling_offsets.weight',
        'encoder.layers.0.attentions.0.attention_weights.weight',
        'encoder.layers.0.attentions.0.value_proj.weight',
        'encoder.layers.0.attentions.0.output_proj.weight',
        'encoder.layers.1.attentions.1.deformable_attention.sampling_offsets.weight',
        'encoder.layers.1.attentions.1.deformable_attention.value_proj.weight',
        'encoder.layers.1.attentions.1.output_proj.weight',
        'encoder.layers.1.ffns.0.layers.0.0.weight',
        'encoder.layers.1.ffns.0.layers.1.weight',
        'encoder.layers.1.norms.2.weight',
    ]:
        assert key in keys, key
    assert not any('deformable_attention.output_proj' in k for k in keys)
    # TSA predicts offsets from [previous BEV, query]: 2·C inputs, queue·heads·levels·points·2 outputs.
    assert model.state_dict()['encoder.layers.0.attentions.0.sampling_offsets.weight'].shape == (
        2 * 2 * 1 * 2 * 2,
        2 * C,
    )


def test_full_size_configs_have_upstream_parameter_shapes() -> None:
    """OpenLane-V2 (§5.2) at full size: 100×200 BEV, 3 layers, 7 cameras, 4 anchors, 256 channels."""
    cfg = tiny_cfg(
        num_cams=7,
        bev_h=100,
        bev_w=200,
        pc_range=(-51.2, -25.6, -2.3, 51.2, 25.6, 1.7),
        num_layers=3,
    )
    cfg['embed_dims'] = 256
    cfg['num_feature_levels'] = 4
    layer = cfg['encoder']['transformerlayers']
    layer['attn_cfgs'][0].update(embed_dims=256, num_heads=8, num_points=4)
    layer['attn_cfgs'][1].update(embed_dims=256)
    layer['attn_cfgs'][1]['deformable_attention'].update(
        embed_dims=256, num_heads=8, num_levels=4, num_points=8
    )
    layer['ffn_cfgs'].update(embed_dims=256, feedforward_channels=512)
    sd = MODELS.build(cfg).state_dict()
    assert sd['bev_embedding.weight'].shape == (20000, 256)
    assert sd['positional_encoding.row_embed.weight'].shape == (100, 128)
    assert sd['positional_encoding.col_embed.weight'].shape == (200, 128)
    assert sd['cams_embeds'].shape == (7, 256) and sd['level_embeds'].shape == (4, 256)
    assert sd['encoder.layers.2.attentions.0.sampling_offsets.weight'].shape == (128, 512)
    assert sd['encoder.layers.2.attentions.0.attention_weights.weight'].shape == (64, 512)
    assert sd[
        'encoder.layers.2.attentions.1.deformable_attention.sampling_offsets.weight'
    ].shape == (512, 256)
    assert sd[
        'encoder.layers.2.attentions.1.deformable_attention.attention_weights.weight'
    ].shape == (256, 256)
    assert sd['encoder.layers.2.ffns.0.layers.0.0.weight'].shape == (512, 256)
    assert not any(k.startswith('encoder.layers.3.') for k in sd)


def test_output_shapes_single_frame_temporal_and_intermediate() -> None:
    model = build()
    out = model(features(), metas())
    assert out.shape == (2, 80, C)
    assert model.bev_to_image(out).shape == (2, C, 8, 10)
    temporal = model(features(), metas(), prev_bev=torch.randn(2, 80, C))
    assert temporal.shape == (2, 80, C) and not torch.allclose(temporal, out)
    inter = build(encoder_kwargs=dict(return_intermediate=True))(features(), metas())
    assert inter.shape == (2, 2, 80, C)


def test_forward_backward_on_cpu_reaches_every_parameter() -> None:
    model = build().train()
    # At initialisation TSA's offset and weight projections are zero (Deformable-DETR init), which
    # blocks the gradient to the BEV positional encoding until the first step; take that step.
    for layer in model.encoder.layers:
        for proj in (layer.attentions[0].sampling_offsets, layer.attentions[0].attention_weights):
            nn.init.normal_(proj.weight, std=0.01)
    feats = [f.requires_grad_(True) for f in features()]
    out = model(feats, metas(), prev_bev=torch.randn(2, 80, C))
    (out * torch.randn_like(out)).sum().backward()
    missing = [
        name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert missing == []
    assert all(f.grad.abs().sum() > 0 for f in feats)


def test_autocast_bfloat16_runs_and_stays_close_to_fp32() -> None:
    model = build()
    prev = torch.randn(2, 80, C)
    ref = model(features(), metas(), prev_bev=prev)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = model(features(), metas(), prev_bev=prev)
    assert torch.isfinite(low).all()
    # Post-norm outputs are O(1); bfloat16 keeps ~3 significant digits through two layers.
    assert (low.float() - ref).abs().mean() < 0.05


def test_samples_in_a_batch_are_independent() -> None:
    """Per-sample camera masks, CAN bus, history and shift: sample 1 alone == sample 1 in a batch."""
    model = build()
    prev = torch.randn(2, 80, C)
    batch_metas = metas()
    batched = model(features(), batch_metas, prev_bev=prev)
    alone = model([f[1:] for f in features()], batch_metas[1:], prev_bev=prev[1:])
    torch.testing.assert_close(batched[1:], alone, atol=1e-5, rtol=1e-5)


def test_camera_that_sees_nothing_contributes_nothing() -> None:
    model = build(num_cams=3)
    blind = camera(0.0, position=(1000.0, 0.0, 1.5))  # 1 km ahead, looking further ahead
    batch_metas = metas(cams=(0.0, math.pi, 0.0))
    for meta in batch_metas:
        meta['lidar2img'][2] = blind
    feats = [f.requires_grad_(True) for f in features(num_cams=3)]
    out = model(feats, batch_metas)
    noisy = [f.detach().clone() for f in feats]
    for f in noisy:
        f[:, 2] = torch.randn_like(f[:, 2]) * 100
    torch.testing.assert_close(model(noisy, batch_metas), out, rtol=0, atol=0)
    out.square().sum().backward()
    for f in feats:
        assert torch.count_nonzero(f.grad[:, 2]) == 0
        assert torch.count_nonzero(f.grad[:, 0]) > 0


def world_field(model: BEVFormerConstructer, pose: tuple[float, float, float]) -> torch.Tensor:
    """(1, Q, C) BEV whose channels 0, 1 hold the world x, y of each cell centre, channel 2 holds 1."""
    x0, y0, _, x1, y1, _ = model.pc_range
    gx = x0 + (torch.arange(model.bev_w, dtype=torch.float64) + 0.5) * (x1 - x0) / model.bev_w
    gy = y0 + (torch.arange(model.bev_h, dtype=torch.float64) + 0.5) * (y1 - y0) / model.bev_h
    gy, gx = torch.meshgrid(gy, gx, indexing='ij')
    fwd, left = (gx, gy) if model.bev_axes == 'forward_left' else (gy, -gx)
    px, py, yaw = pose
    wx = px + math.cos(yaw) * fwd - math.sin(yaw) * left
    wy = py + math.sin(yaw) * fwd + math.cos(yaw) * left
    field = torch.zeros(1, model.num_query, C, dtype=torch.float64)
    field[0, :, 0], field[0, :, 1], field[0, :, 2] = wx.reshape(-1), wy.reshape(-1), 1.0
    return field


def identity_tsa() -> TemporalSelfAttention:
    tsa = TemporalSelfAttention(embed_dims=C, num_heads=1, num_levels=1, num_points=1, dropout=0.0)
    for layer in (tsa.sampling_offsets, tsa.attention_weights):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    for layer in (tsa.value_proj, tsa.output_proj):
        nn.init.eye_(layer.weight)
        nn.init.zeros_(layer.bias)
    return tsa.double().eval()


def aligned_previous_bev(
    model: BEVFormerConstructer, prev_pose, cur_pose, prev_bev
) -> torch.Tensor:
    """Runs the real forward, captures what the first TSA receives, and samples the history the
    way TSA does with zero offsets (the learned offsets only add corrections on top)."""
    captured = {}

    def grab(_module, _args, kwargs):
        captured.update(value=kwargs['value'], refs=kwargs['reference_points'])

    def absolute_can_bus(pose) -> np.ndarray:  # what the dataset stores: global pose
        bus = np.zeros(18)
        bus[0:2] = pose[:2]
        bus[-2] = pose[2]
        bus[-1] = math.degrees(pose[2]) % 360.0
        return bus

    # The test-time history turns the absolute poses into the deltas TSA needs.
    meta = metas(batch=1)[0] | dict(scene_token='video')
    video = BEVHistory()
    video.prepare([meta | dict(can_bus=absolute_can_bus(prev_pose))])
    video.update(prev_bev.float())
    cur_metas, history_bev = video.prepare([meta | dict(can_bus=absolute_can_bus(cur_pose))])
    assert history_bev is not None
    handle = model.encoder.layers[0].attentions[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        model(features(batch=1), cur_metas, prev_bev=history_bev)
    finally:
        handle.remove()
    history = captured['value'][:, 0].double()
    refs = captured['refs'].double()
    zeros = torch.zeros_like(history)
    out = identity_tsa()(
        zeros,
        value=torch.stack([history, zeros], 1),
        reference_points=refs,
        spatial_shapes=torch.tensor([[model.bev_h, model.bev_w]]),
        level_start_index=torch.tensor([0]),
    )
    return 2 * out  # TSA averages the history with the (zero) current item


@pytest.mark.parametrize('bev_axes', ['forward_left', 'right_forward'])
@pytest.mark.parametrize(
    ('prev_yaw', 'turn_deg', 'move_ego', 'interpolation'),
    [
        (0.4, 90.0, (2.0, -1.0), 'nearest'),  # exact for nearest: quarter turn, whole cells
        (
            6.1,
            30.0,
            (1.3, 0.4),
            'bilinear',
        ),  # yaw wraps 349.5° -> 19.5°; bilinear of a linear field is exact
        (0.4, -17.0, (-0.6, 2.2), 'bilinear'),
    ],
)
def test_previous_bev_is_aligned_with_the_current_frame(
    bev_axes, prev_yaw, turn_deg, move_ego, interpolation
) -> None:
    """A world-coordinate map from the previous frame, rotated + shifted, must read the current
    cells' own world coordinates wherever the previous frame saw them."""
    model = build(
        bev_h=12,
        bev_w=12,
        pc_range=(-6, -6, -2, 6, 6, 2),
        bev_axes=bev_axes,
        rotate_interpolation=interpolation,
    )
    prev_pose = (105.0, -47.0, prev_yaw)
    yaw = prev_pose[2] + math.radians(turn_deg)
    # The ego moves by `move_ego` metres, expressed in its current frame (x forward, y left).
    dx = math.cos(yaw) * move_ego[0] - math.sin(yaw) * move_ego[1]
    dy = math.sin(yaw) * move_ego[0] + math.cos(yaw) * move_ego[1]
    cur_pose = (prev_pose[0] + dx, prev_pose[1] + dy, yaw)

    aligned = aligned_previous_bev(model, prev_pose, cur_pose, world_field(model, prev_pose))
    expected = world_field(model, cur_pose)
    valid = (aligned[0, :, 2] - 1).abs() < 1e-5  # every contributing sample came from inside
    assert valid.float().mean() > 0.35, 'test needs enough overlap between the two frames'
    err = (aligned[0, valid, :2] - expected[0, valid, :2]).abs().max()
    assert err < 1e-3, f'misaligned by {err:.4f} m'

    # The wrong axis convention misaligns the same motion (what upstream OCC does).
    other = 'right_forward' if bev_axes == 'forward_left' else 'forward_left'
    wrong = build(
        bev_h=12,
        bev_w=12,
        pc_range=(-6, -6, -2, 6, 6, 2),
        bev_axes=other,
        rotate_interpolation=interpolation,
    )
    misaligned = aligned_previous_bev(wrong, prev_pose, cur_pose, world_field(model, prev_pose))
    ok = valid & ((misaligned[0, :, 2] - 1).abs() < 1e-5)
    assert (misaligned[0, ok, :2] - expected[0, ok, :2]).abs().max() > 0.5


def test_shift_ref_2d_bug_flag_controls_which_queue_item_is_shifted() -> None:
    fixed = build().encoder
    buggy = build(encoder_kwargs=dict(reproduce_shift_ref_2d_bug=True)).encoder
    shift = torch.tensor([[0.1, -0.2]])
    base = fixed.temporal_reference_points(2, 3, None, 1, torch.device('cpu'), True)
    refs = fixed.temporal_reference_points(2, 3, shift, 1, torch.device('cpu'), True)
    torch.testing.assert_close(refs[:, 0], base[:, 0] + shift[:, None, None, :])
    torch.testing.assert_close(refs[:, 1], base[:, 1])
    bug = buggy.temporal_reference_points(2, 3, shift, 1, torch.device('cpu'), True)
    torch.testing.assert_close(bug[:, 1], base[:, 1] + shift[:, None, None, :])
    # Without history the fix shifts nothing; upstream's alias still shifts both items.
    torch.testing.assert_close(
        fixed.temporal_reference_points(2, 3, shift, 1, torch.device('cpu'), False), base
    )
    no_hist_bug = buggy.temporal_reference_points(2, 3, shift, 1, torch.device('cpu'), False)
    torch.testing.assert_close(no_hist_bug, base + shift[:, None, None, None, :])


def test_use_prev_bev_false_ignores_history_and_can_bus_is_optional_when_unused() -> None:
    model = build(use_prev_bev=False)
    torch.testing.assert_close(
        model(features(), metas(), prev_bev=torch.randn(2, 80, C)), model(features(), metas())
    )
    plain = build(use_can_bus=False)
    no_can_bus = [{k: v for k, v in m.items() if k != 'can_bus'} for m in metas()]
    assert plain(features(), no_can_bus).shape == (2, 80, C)
    with pytest.raises(KeyError, match=r"img_metas\[0\] has no 'can_bus'"):
        build()(features(), no_can_bus)


def test_clear_errors_for_bad_inputs_and_configs() -> None:
    model = build()
    with pytest.raises(ValueError, match='list of 2 feature levels, got 1 levels'):
        model(features()[:1], metas())
    with pytest.raises(ValueError, match=r'mlvl_feats\[0\] must have shape \(2, 2, 16, h, w\)'):
        model([torch.zeros(2, 3, C, 6, 8), torch.zeros(2, 3, C, 3, 4)], metas())
    with pytest.raises(ValueError, match=r'prev_bev must have shape \(B, 80, 16\)'):
        model(features(), metas(), prev_bev=torch.zeros(2, 81, C))
    with pytest.raises(
        ValueError, match='img_metas has 1 entries but the features have batch size 2'
    ):
        model(features(), metas(batch=1))
    with pytest.raises(
        ValueError, match=r"img_metas\[0\]\['lidar2img'\] must have shape \(2, 4, 4\)"
    ):
        model(features(), [m | dict(lidar2img=m['lidar2img'][:1]) for m in metas()])
    with pytest.raises(ValueError, match='bev_axes must be one of'):
        build(bev_axes='lidar')
    cfg = tiny_cfg()
    cfg['encoder']['pc_range'] = [-1, -1, -1, 1, 1, 1]
    with pytest.raises(ValueError, match=r'encoder\.pc_range'):
        MODELS.build(cfg)
    cfg = tiny_cfg()
    cfg['encoder']['num_point_in_pillar'] = 4  # typo must not be silently ignored
    with pytest.raises(TypeError, match='num_point_in_pillar'):
        MODELS.build(cfg)


def test_occupancy_style_configuration_runs() -> None:
    """Occupancy settings: 8 anchors, ego2lidar, padded-size normalisation, temporal with both
    upstream reproduction flags, upstream shift axes and an explicit torchvision-style centre."""
    model = build(
        bev_h=10,
        bev_w=10,
        pc_range=(-10, -10, -1.0, 10, 10, 5.4),
        num_points_in_pillar=8,
        num_cams=2,
        bev_axes='right_forward',
        rotate_center=(5, 5),
        encoder_kwargs=dict(image_size_key='pad_shape', reproduce_shift_ref_2d_bug=True),
    )
    for layer in model.encoder.layers:
        layer.attentions[1].reproduce_batch0_rebatch_bug = True
    ego2lidar = np.eye(4)
    ego2lidar[:3, 3] = [-0.9, 0.0, -1.8]
    batch_metas = [
        m
        | dict(
            lidar2img=m['lidar2img'] @ np.linalg.inv(ego2lidar),
            ego2lidar=ego2lidar,
            pad_shape=(48, 64),
        )
        for m in metas()
    ]
    out = model(features(), batch_metas, prev_bev=torch.randn(2, 100, C))
    assert out.shape == (2, 100, C) and torch.isfinite(out).all()


def test_openlane_style_configuration_runs() -> None:
    """OpenLane-V2 settings: 7 cameras, non-square BEV, unpadded normalisation, no history."""
    model = build(
        num_cams=7,
        bev_h=5,
        bev_w=10,
        pc_range=(-51.2, -25.6, -2.3, 51.2, 25.6, 1.7),
        num_points_in_pillar=4,
        use_prev_bev=False,
        encoder_kwargs=dict(image_size_key='img_shape'),
    )
    rig = tuple(2 * math.pi * k / 7 for k in range(7))
    batch_metas = [m | dict(pad_shape=(64, 64)) for m in metas(cams=rig)]
    out = model(features(num_cams=7), batch_metas)
    assert out.shape == (2, 50, C) and torch.isfinite(out).all()
    # Normalising by the padded instead of the unpadded size moves the projections.
    padded = build(
        num_cams=7,
        bev_h=5,
        bev_w=10,
        pc_range=(-51.2, -25.6, -2.3, 51.2, 25.6, 1.7),
        num_points_in_pillar=4,
        use_prev_bev=False,
        encoder_kwargs=dict(image_size_key='pad_shape'),
    )
    assert not torch.allclose(padded(features(num_cams=7), batch_metas), out)


@pytest.mark.parametrize('layout', ['occupancy', 'openlane'])
def test_upstream_detector_checkpoint_layout_loads_strictly(layout: str) -> None:
    """Write our weights under the upstream detector's key names, extract, reload: same outputs."""
    from interndrive.common.bev.checkpoint_keys import extract_bev_constructor_state_dict

    source = build()
    upstream = {}
    for key, value in source.state_dict().items():
        if layout == 'openlane':
            upstream['bev_constructor.' + key] = value
        elif key.startswith(('bev_embedding.', 'positional_encoding.')):
            upstream['pts_bbox_head.' + key] = value
        else:
            upstream['pts_bbox_head.transformer.' + key] = value
    upstream['img_backbone.patch_embed.conv1.weight'] = torch.zeros(1)  # not ours: ignored
    upstream['pts_bbox_head.transformer.decoder.0.weight'] = torch.zeros(1)
    target = MODELS.build(tiny_cfg()).eval()  # different random init
    target.load_state_dict(extract_bev_constructor_state_dict(upstream, layout), strict=True)
    torch.testing.assert_close(
        target(features(), metas()), source(features(), metas()), rtol=0, atol=0
    )
    with pytest.raises(KeyError, match='no BEV constructor weights'):
        extract_bev_constructor_state_dict({'backbone.x': torch.zeros(1)}, layout)


@pytest.mark.parametrize('scope', ['mmdet', 'mmdet3d'])
def test_task_configs_build_under_the_mmdet_and_mmdet3d_scopes(scope: str) -> None:
    """Registered in mmengine's root registry, so a task config's default scope finds the types."""
    registry = pytest.importorskip(f'{scope}.registry', reason=f'{scope} is not installed')
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope(scope):
        model = registry.MODELS.build(tiny_cfg())
    assert isinstance(model, BEVFormerConstructer)


@pytest.mark.cuda
def test_cuda_kernel_path_matches_cpu_fallback() -> None:
    if not torch.cuda.is_available():
        pytest.skip('needs a CUDA device (mmcv compiled ms_deform_attn kernel)')
    model = build()
    prev = torch.randn(2, 80, C)
    feats = [f.requires_grad_(True) for f in features()]
    cpu = model(feats, metas(), prev_bev=prev)
    cpu.square().sum().backward()
    cpu_grads = [f.grad.clone() for f in feats]
    gpu_model = model.cuda()
    gpu_feats = [f.detach().cuda().requires_grad_(True) for f in feats]
    gpu = gpu_model(gpu_feats, metas(), prev_bev=prev.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu.detach(), atol=1e-4, rtol=1e-4)
    gpu.square().sum().backward()
    for g, c in zip(gpu_feats, cpu_grads):
        torch.testing.assert_close(g.grad.cpu(), c, atol=1e-3, rtol=1e-3)
    with torch.autocast('cuda', dtype=torch.float16):
        assert torch.isfinite(gpu_model(gpu_feats, metas(), prev_bev=prev.cuda())).all()


# ---------------------------------------------------------------------------------------------
# Upstream algorithm, transcribed from REFERENCE §3.3 items 3-6 as plain float64 loops (batch 1),
# using the model's weights. Guards the wiring and the tensor layouts that upstream checkpoints
# depend on (offset/weight ordering, anchor assignment, queue order, which inputs get `bev_pos`).
# ---------------------------------------------------------------------------------------------


def _bilinear(level: torch.Tensor, x: float, y: float) -> torch.Tensor:
    _, h, w = level.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = level.new_zeros(level.shape[0])
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < h and 0 <= xx < w:
                out += (1 - abs(px - xx)) * (1 - abs(py - yy)) * level[:, yy, xx]
    return out


def _upstream_bev(
    model: BEVFormerConstructer, feats, meta, prev_bev, reproduce_bug: bool
) -> torch.Tensor:
    bev_h, bev_w, q_n = model.bev_h, model.bev_w, model.num_query
    x0, y0, z0, x1, y1, z1 = model.pc_range
    can_bus = torch.as_tensor(meta['can_bus'], dtype=torch.float64)
    # get_bev_features: shift (upstream formula), rotation of the history, CAN bus.
    dx, dy = float(can_bus[0]), float(can_bus[1])
    length = math.hypot(dx, dy)
    bev_angle = math.degrees(float(can_bus[-2])) - math.degrees(math.atan2(dy, dx))
    shift = (
        length * math.sin(math.radians(bev_angle)) / (x1 - x0),
        length * math.cos(math.radians(bev_angle)) / (y1 - y0),
    )
    queries = model.bev_embedding.weight.double()
    pe = model.positional_encoding
    pos = torch.stack(
        [
            torch.cat([pe.col_embed.weight[j], pe.row_embed.weight[i]])
            for i in range(bev_h)
            for j in range(bev_w)
        ]
    ).double()
    grid = prev_bev.double()[0].T.reshape(-1, bev_h, bev_w)
    rotated = torch.zeros_like(grid)
    a = math.radians(float(can_bus[-1]))
    cx, cy = model.rotate_center
    for i in range(bev_h):
        for j in range(bev_w):
            sx = math.cos(a) * (j + 0.5 - cx) - math.sin(a) * (i + 0.5 - cy) + cx - 0.5
            sy = math.sin(a) * (j + 0.5 - cx) + math.cos(a) * (i + 0.5 - cy) + cy - 0.5
            ii, jj = round(sy), round(sx)
            if 0 <= ii < bev_h and 0 <= jj < bev_w:
                rotated[:, i, j] = grid[:, ii, jj]
    prev = rotated.reshape(grid.shape[0], -1).T
    queries = queries + model.can_bus_mlp(can_bus[None])[0]
    # Camera features: flatten levels, add camera and level embeddings.
    levels = [f[0].double() for f in feats]  # (N, C, h, w)
    cam_maps = [
        [
            lvl[n]
            + model.cams_embeds[n].double()[:, None, None]
            + model.level_embeds[li].double()[:, None, None]
            for li, lvl in enumerate(levels)
        ]
        for n in range(levels[0].shape[0])
    ]
    # Encoder geometry.
    enc = model.encoder
    anchors_z = [
        z0 + (0.5 + k * (z1 - z0 - 1.0) / max(enc.num_points_in_pillar - 1, 1))
        for k in range(enc.num_points_in_pillar)
    ]
    cells = [(i, j) for i in range(bev_h) for j in range(bev_w)]
    mats = np.asarray(meta['lidar2img'], dtype=np.float64)
    img_h, img_w = meta['img_shape'][:2]
    ref_cam = np.zeros((len(mats), q_n, len(anchors_z), 2))
    hit = np.zeros((len(mats), q_n, len(anchors_z)), dtype=bool)
    for n, mat in enumerate(mats):
        for q, (i, j) in enumerate(cells):
            for d, z in enumerate(anchors_z):
                p = np.array(
                    [x0 + (j + 0.5) * (x1 - x0) / bev_w, y0 + (i + 0.5) * (y1 - y0) / bev_h, z, 1.0]
                )
                u, v, depth, _ = mat @ p
                u, v = u / max(depth, 1e-5) / img_w, v / max(depth, 1e-5) / img_h
                ref_cam[n, q, d] = u, v
                hit[n, q, d] = depth > 1e-5 and 0 < u < 1 and 0 < v < 1
    ref_2d = [((j + 0.5) / bev_w, (i + 0.5) / bev_h) for i, j in cells]
    shifted = [(x + shift[0], y + shift[1]) for x, y in ref_2d]
    hybrid = [shifted, shifted if reproduce_bug else ref_2d]

    out = queries
    for layer in enc.layers:
        tsa, sca = layer.attentions[0], layer.attentions[1]
        heads, pts = tsa.num_heads, tsa.num_points
        value_items = [prev, queries]  # history and the *encoder input* queries
        q_pos = out + pos
        value_maps = [tsa.value_proj(v).T.reshape(heads, -1, bev_h, bev_w) for v in value_items]
        off_in = torch.cat([value_items[0], q_pos], -1)
        offsets = tsa.sampling_offsets(off_in).view(q_n, heads, 2, 1, pts, 2)
        weights = tsa.attention_weights(off_in).view(q_n, heads, 2, pts).softmax(-1)
        tsa_out = torch.zeros_like(out)
        for q in range(q_n):
            for m in range(heads):
                acc = []
                for t in range(2):
                    s = 0
                    for p in range(pts):
                        x = hybrid[t][q][0] + float(offsets[q, m, t, 0, p, 0]) / bev_w
                        y = hybrid[t][q][1] + float(offsets[q, m, t, 0, p, 1]) / bev_h
                        s = s + weights[q, m, t, p] * _bilinear(value_maps[t][m], x, y)
                    acc.append(s)
                dims = tsa.embed_dims // heads
                tsa_out[q, m * dims : (m + 1) * dims] = (acc[0] + acc[1]) / 2
        out = layer.norms[0](tsa.output_proj(tsa_out) + out)
        # Spatial cross-attention, one camera at a time (no `bev_pos` upstream).
        msda = sca.deformable_attention
        heads, pts, nlev = msda.num_heads, msda.num_points, msda.num_levels
        dims = msda.embed_dims // heads
        slots = torch.zeros_like(out)
        for n, maps in enumerate(cam_maps):
            vmaps = [
                msda.value_proj(mp.flatten(1).T).T.reshape(heads, dims, *mp.shape[1:])
                for mp in maps
            ]
            for q in np.nonzero(hit[n].any(-1))[0]:
                offsets = msda.sampling_offsets(out[q]).view(heads, nlev, pts, 2)
                weights = (
                    msda.attention_weights(out[q])
                    .view(heads, nlev * pts)
                    .softmax(-1)
                    .view(heads, nlev, pts)
                )
                for m in range(heads):
                    for li in range(nlev):
                        h_l, w_l = maps[li].shape[1:]
                        for p in range(pts):
                            u, v = ref_cam[n, q, p % len(anchors_z)]
                            x = u + float(offsets[m, li, p, 0]) / w_l
                            y = v + float(offsets[m, li, p, 1]) / h_l
                            slots[q, m * dims : (m + 1) * dims] += weights[m, li, p] * _bilinear(
                                vmaps[li][m], x, y
                            )
        count = torch.as_tensor(hit.any(-1).sum(0), dtype=torch.float64).clamp(min=1)
        out = layer.norms[1](sca.output_proj(slots / count[:, None]) + out)
        out = layer.norms[2](layer.ffns[0](out))
    return out


@pytest.mark.parametrize('reproduce_bug', [False, True])
def test_matches_a_loop_transcription_of_the_upstream_algorithm(reproduce_bug: bool) -> None:
    model = build(
        bev_h=4,
        bev_w=5,
        pc_range=(-10.0, -8.0, -2.0, 10.0, 8.0, 2.0),
        bev_axes='right_forward',  # upstream's shift formula
        encoder_kwargs=dict(image_size_key='img_shape', reproduce_shift_ref_2d_bug=reproduce_bug),
    ).double()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'sampling_offsets' in name or 'attention_weights' in name:
                p.copy_(
                    torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3
                )  # trained-like, not init
    meta = metas(batch=1)[0]
    meta['can_bus'][[0, 1, -2, -1]] = [1.1, -0.7, 0.4, 17.3]
    feats = [f.double() for f in features(batch=1)]
    prev = torch.randn(1, model.num_query, C, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        ours = model(feats, [meta], prev_bev=prev)
        upstream = _upstream_bev(model, feats, meta, prev, reproduce_bug)
    torch.testing.assert_close(ours[0], upstream, atol=1e-4, rtol=1e-4)


def test_gradient_checkpointing_gives_identical_gradients(monkeypatch) -> None:
    import interndrive.common.bev.encoder as encoder_module

    calls = []
    real_checkpoint = encoder_module.checkpoint
    monkeypatch.setattr(
        encoder_module, 'checkpoint', lambda *a, **k: calls.append(1) or real_checkpoint(*a, **k)
    )
    plain = build().train()
    ckpt = build(encoder_kwargs=dict(with_cp=True)).train()
    ckpt.load_state_dict(plain.state_dict())
    grads = []
    for model in (plain, ckpt):
        feats = [f.requires_grad_(True) for f in features(batch=1)]
        out = model(
            feats,
            metas(batch=1),
            prev_bev=torch.randn(1, 80, C, generator=torch.Generator().manual_seed(1)),
        )
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append([f.grad for f in feats] + [p.grad for p in model.parameters()])
    assert len(calls) == 2  # one per layer, only for the with_cp model
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
