"""BEV attentions: deformable sampling, MSDeformableAttention3D, SpatialCrossAttention, TSA.

Fast (vectorised) implementations are compared with naive float64 loops; the geometric tests set
the learned parts to identities so that the expected output can be written down exactly.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

pytest.importorskip('mmcv.ops', reason='the BEV layers need mmcv 2.1 built with ops')

from interndrive.common.bev import (
    MSDeformableAttention3D,
    SpatialCrossAttention,
    TemporalSelfAttention,
    multi_scale_deformable_attention,
    rebatch_indices,
)
from interndrive.common.bev.geometry import bev_reference_points_2d


def naive_bilinear(level: Tensor, x: float, y: float) -> Tensor:
    """Samples `(C, H, W)` at normalised `(x, y)` (align_corners=False), zeros outside."""
    _, h, w = level.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = level.new_zeros(level.shape[0])
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < h and 0 <= xx < w:
                out += (1 - abs(px - xx)) * (1 - abs(py - yy)) * level[:, yy, xx]
    return out


def naive_deformable_attention(value, shapes, locations, weights) -> Tensor:
    bs, _, heads, dims = value.shape
    _, nq, _, _, points, _ = locations.shape
    starts = [0]
    for h, w in shapes.tolist():
        starts.append(starts[-1] + h * w)
    out = value.new_zeros(bs, nq, heads * dims)
    for b in range(bs):
        for q in range(nq):
            for m in range(heads):
                acc = value.new_zeros(dims)
                for lvl, (h, w) in enumerate(shapes.tolist()):
                    level = value[b, starts[lvl] : starts[lvl + 1], m].T.reshape(dims, h, w)
                    for p in range(points):
                        x, y = locations[b, q, m, lvl, p].tolist()
                        acc += weights[b, q, m, lvl, p] * naive_bilinear(level, x, y)
                out[b, q, m * dims : (m + 1) * dims] = acc
    return out


def test_deformable_sampling_matches_naive_loop_and_returns_fp32_under_autocast() -> None:
    torch.manual_seed(0)
    shapes = torch.tensor([[3, 4], [2, 2]])
    value = torch.randn(2, 16, 2, 3, dtype=torch.float64)
    locations = torch.rand(2, 5, 2, 2, 3, 2, dtype=torch.float64) * 1.4 - 0.2  # some outside
    weights = torch.rand(2, 5, 2, 2, 3, dtype=torch.float64)
    start = torch.tensor([0, 12])
    got = multi_scale_deformable_attention(value, shapes, start, locations, weights)
    expected = naive_deformable_attention(value, shapes, locations, weights)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert (
            multi_scale_deformable_attention(
                value.bfloat16(), shapes, start, locations, weights
            ).dtype
            == torch.float32
        )


def identity_(layer: nn.Linear) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.eye(layer.out_features, layer.in_features))
        layer.bias.zero_()


def zero_(layer: nn.Linear) -> None:
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()


def test_msda3d_assigns_point_k_times_d_plus_d_to_anchor_d() -> None:
    """Upstream layout: with D anchors, sampling point p belongs to anchor p % D."""
    torch.manual_seed(0)
    attn = MSDeformableAttention3D(embed_dims=4, num_heads=1, num_levels=1, num_points=4)
    zero_(attn.sampling_offsets)
    identity_(attn.value_proj)
    shapes = torch.tensor([[5, 6]])
    value = torch.randn(1, 30, 4)
    anchors = torch.tensor([[[[0.2, 0.3], [0.7, 0.6]]]])  # 1 query, D=2 anchors
    level = value[0].T.reshape(4, 5, 6)
    for p in range(4):
        zero_(attn.attention_weights)
        with torch.no_grad():
            attn.attention_weights.bias[p] = 50.0  # all weight on point p
        out = attn(torch.zeros(1, 1, 4), value, anchors, shapes, torch.tensor([0]))
        x, y = anchors[0, 0, p % 2].tolist()
        torch.testing.assert_close(out[0, 0], naive_bilinear(level, x, y), atol=1e-5, rtol=1e-5)


def test_msda3d_rejects_points_not_divisible_by_anchors() -> None:
    attn = MSDeformableAttention3D(embed_dims=4, num_heads=1, num_levels=1, num_points=4)
    with pytest.raises(ValueError, match='multiple of the number of anchors'):
        attn(
            torch.zeros(1, 2, 4),
            torch.zeros(1, 6, 4),
            torch.zeros(1, 2, 3, 2),
            torch.tensor([[2, 3]]),
            torch.tensor([0]),
        )


def make_sca(num_cams: int = 2, channels: int = 8, **kwargs) -> SpatialCrossAttention:
    torch.manual_seed(1)
    sca = SpatialCrossAttention(
        embed_dims=channels,
        num_cams=num_cams,
        dropout=0.0,
        deformable_attention=dict(
            type='MSDeformableAttention3D',
            embed_dims=channels,
            num_heads=2,
            num_levels=2,
            num_points=4,
        ),
        **kwargs,
    )
    # Non-trivial offsets and weights so that padding/rebatching mistakes would show.
    for p in sca.parameters():
        nn.init.normal_(p, std=0.3)
    return sca.double().eval()


def sca_inputs(
    bs: int = 2, num_cams: int = 2, num_query: int = 12, channels: int = 8, anchors: int = 2
):
    torch.manual_seed(2)
    shapes = torch.tensor([[3, 4], [2, 2]])
    query = torch.randn(bs, num_query, channels, dtype=torch.float64)
    value = torch.randn(bs, num_cams, 16, channels, dtype=torch.float64)
    refs = torch.rand(num_cams, bs, num_query, anchors, 2, dtype=torch.float64)
    mask = torch.rand(num_cams, bs, num_query, anchors) > 0.6
    return query, value, refs, mask, shapes, torch.tensor([0, 12])


def naive_sca(
    sca: SpatialCrossAttention, query, value, refs, mask, shapes, start, batch0_indices=False
) -> Tensor:
    """Upstream algorithm with one camera and one sample at a time (no padding at all)."""
    bs = query.shape[0]
    slots = torch.zeros_like(query)
    for b in range(bs):
        for n in range(value.shape[1]):
            idx = mask[n, 0 if batch0_indices else b].any(-1).nonzero().squeeze(-1)
            if idx.numel() == 0:
                continue
            out = sca.deformable_attention(
                query=query[b : b + 1, idx],
                value=value[b : b + 1, n],
                reference_points=refs[n, b : b + 1, idx],
                spatial_shapes=shapes,
                level_start_index=start,
            )
            slots[b, idx] += out[0].to(slots.dtype)
    count = mask.any(-1).permute(1, 2, 0).sum(-1).clamp(min=1)
    return sca.output_proj(slots / count[..., None]) + query


def test_rebatch_indices_lists_each_cameras_hits_first() -> None:
    hit = torch.tensor([[[True, False, True, False], [False, False, False, False]]])
    index, valid = rebatch_indices(hit)
    assert index.shape == (1, 2, 2)
    assert index[0, 0].tolist() == [0, 2] and valid[0, 0].tolist() == [True, True]
    assert valid[0, 1].tolist() == [False, False]


def test_sca_vectorised_rebatch_matches_naive_per_sample_loop() -> None:
    sca = make_sca()
    inputs = sca_inputs()
    query, value, refs, mask, shapes, start = inputs
    assert not torch.equal(mask[:, 0], mask[:, 1]), 'test needs different masks per sample'
    got = sca(query, value, refs, mask, shapes, start)
    torch.testing.assert_close(got, naive_sca(sca, *inputs), atol=1e-6, rtol=1e-6)


def test_sca_batch0_bug_flag_reproduces_upstream_and_differs_from_the_fix() -> None:
    inputs = sca_inputs()
    buggy = make_sca(reproduce_batch0_rebatch_bug=True)
    got = buggy(*inputs[:4], inputs[4], inputs[5])
    torch.testing.assert_close(
        got, naive_sca(buggy, *inputs, batch0_indices=True), atol=1e-6, rtol=1e-6
    )
    fixed = make_sca()
    fixed_out = fixed(*inputs[:4], inputs[4], inputs[5])
    assert not torch.allclose(got[1], fixed_out[1]), 'sample 1 must differ when its mask differs'
    torch.testing.assert_close(got[0], fixed_out[0])  # sample 0 is the same either way


def test_sca_camera_that_sees_nothing_contributes_nothing() -> None:
    sca = make_sca(num_cams=3)
    query, value, refs, mask, shapes, start = sca_inputs(num_cams=3)
    mask[1] = False  # camera 1 sees no anchor of any query in any sample
    value = value.clone().requires_grad_(True)
    out = sca(query, value, refs, mask, shapes, start)
    noisy = value.detach().clone()
    noisy[:, 1] = torch.randn_like(noisy[:, 1]) * 100
    torch.testing.assert_close(sca(query, noisy, refs, mask, shapes, start), out, rtol=0, atol=0)
    out.square().sum().backward()
    assert torch.count_nonzero(value.grad[:, 1]) == 0
    assert torch.count_nonzero(value.grad[:, 0]) > 0
    # Queries no camera sees only get the output projection of zero (plus the residual).
    unseen = ~mask.any(-1).any(0)  # (B, Q)
    assert unseen.any()
    expected = sca.output_proj(torch.zeros(1, 8, dtype=torch.float64))[0] + query[unseen]
    torch.testing.assert_close(out[unseen], expected.detach())


def test_sca_rejects_wrong_camera_count() -> None:
    sca = make_sca(num_cams=2)
    query, value, refs, mask, shapes, start = sca_inputs(num_cams=3)
    with pytest.raises(ValueError, match='built for 2 cameras, got 3'):
        sca(query, value, refs, mask, shapes, start)


def identity_tsa(channels: int = 4) -> TemporalSelfAttention:
    """TSA that samples exactly at the reference points and averages the two queue items."""
    tsa = TemporalSelfAttention(
        embed_dims=channels, num_heads=1, num_levels=1, num_points=1, dropout=0.0
    )
    zero_(tsa.sampling_offsets)
    zero_(tsa.attention_weights)
    identity_(tsa.value_proj)
    identity_(tsa.output_proj)
    return tsa.eval()


def test_tsa_samples_the_previous_bev_at_the_shifted_reference_points() -> None:
    bev_h, bev_w, channels = 4, 5, 4
    tsa = identity_tsa(channels)
    prev = torch.randn(1, bev_h * bev_w, channels)
    current = torch.zeros(1, bev_h * bev_w, channels)
    ref = bev_reference_points_2d(bev_h, bev_w, 1)
    shift = torch.tensor([1.0 / bev_w, -1.0 / bev_h])  # one cell right, one cell up
    refs = torch.stack([ref + shift, ref], dim=1)
    out = tsa(
        current,
        value=torch.stack([prev, current], dim=1),
        reference_points=refs,
        spatial_shapes=torch.tensor([[bev_h, bev_w]]),
        level_start_index=torch.tensor([0]),
    )
    grid_prev = prev.view(bev_h, bev_w, channels)
    grid_out = out.view(bev_h, bev_w, channels)
    for i in range(bev_h):
        for j in range(bev_w):
            src_i, src_j = i - 1, j + 1
            inside = 0 <= src_i < bev_h and 0 <= src_j < bev_w
            expected = 0.5 * grid_prev[src_i, src_j] if inside else torch.zeros(channels)
            torch.testing.assert_close(grid_out[i, j], expected, atol=1e-6, rtol=1e-6)


def test_tsa_without_history_equals_query_as_history_and_samples_are_independent() -> None:
    torch.manual_seed(0)
    tsa = TemporalSelfAttention(
        embed_dims=8, num_heads=2, num_levels=1, num_points=2, dropout=0.0
    ).eval()
    nn.init.normal_(tsa.attention_weights.weight, std=0.2)
    nn.init.normal_(tsa.sampling_offsets.weight, std=0.2)
    query, pos, prev = torch.randn(3, 2, 12, 8).unbind(0)
    refs = bev_reference_points_2d(3, 4, 2)[:, None].expand(-1, 2, -1, -1, -1)
    kw = dict(spatial_shapes=torch.tensor([[3, 4]]), level_start_index=torch.tensor([0]))
    no_history = tsa(query, None, query_pos=pos, reference_points=refs, **kw)
    explicit = tsa(
        query, torch.stack([query, query], 1), query_pos=pos, reference_points=refs, **kw
    )
    torch.testing.assert_close(no_history, explicit)
    # Each sample uses its own history (upstream's value[:bs] mixes samples for batch > 1).
    batched = tsa(query, torch.stack([prev, query], 1), query_pos=pos, reference_points=refs, **kw)
    single = tsa(
        query[1:],
        torch.stack([prev[1:], query[1:]], 1),
        query_pos=pos[1:],
        reference_points=refs[1:],
        **kw,
    )
    torch.testing.assert_close(batched[1:], single)


def test_tsa_rejects_wrong_value_shape() -> None:
    tsa = identity_tsa()
    with pytest.raises(ValueError, match=r'\(\[previous, current\] BEV\)'):
        tsa(
            torch.zeros(1, 6, 4),
            value=torch.zeros(2, 6, 4),
            reference_points=torch.zeros(1, 2, 6, 1, 2),
            spatial_shapes=torch.tensor([[2, 3]]),
            level_start_index=torch.tensor([0]),
        )


def test_gradcheck_sca_and_tsa_in_float64() -> None:
    """Autograd through the rebatch gather/scatter and the sampling locations (offsets)."""
    sca = make_sca(channels=4)
    query, value, refs, mask, shapes, start = sca_inputs(bs=1, num_query=4, channels=4)
    mask[:, :, 0] = True  # at least one query seen by both cameras
    query.requires_grad_(True)
    value.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda q, v: sca(q, v, refs, mask, shapes, start),
        (query, value),
        eps=1e-6,
        atol=1e-5,
        fast_mode=True,
    )
    tsa = TemporalSelfAttention(
        embed_dims=4, num_heads=2, num_levels=1, num_points=2, dropout=0.0
    ).double()
    nn.init.normal_(tsa.sampling_offsets.weight, std=0.3)
    nn.init.normal_(tsa.attention_weights.weight, std=0.3)
    q = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    prev = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    refs2d = torch.rand(1, 2, 6, 1, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b: tsa(
            a,
            torch.stack([b, a], 1),
            reference_points=refs2d,
            spatial_shapes=torch.tensor([[2, 3]]),
            level_start_index=torch.tensor([0]),
        ),
        (q, prev),
        eps=1e-6,
        atol=1e-5,
        fast_mode=True,
    )


def test_sca_key_padding_mask_hides_feature_positions() -> None:
    sca = make_sca()
    query, value, refs, mask, shapes, start = sca_inputs()
    hide_all = torch.ones(value.shape[:3], dtype=torch.bool)
    out = sca(query, value, refs, mask, shapes, start, key_padding_mask=hide_all)
    expected = sca.output_proj(torch.zeros(1, 8, dtype=torch.float64))[0] + query
    torch.testing.assert_close(out, expected.detach().expand_as(out))
    hide_cam1 = torch.zeros_like(hide_all)
    hide_cam1[:, 1] = True
    noisy = value.clone()
    noisy[:, 1] += 50
    torch.testing.assert_close(
        sca(query, noisy, refs, mask, shapes, start, key_padding_mask=hide_cam1),
        sca(query, value, refs, mask, shapes, start, key_padding_mask=hide_cam1),
    )
