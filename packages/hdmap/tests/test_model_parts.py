"""Unit tests of the VectorMapNet parts on tiny shapes (fast): IPM sampling, BEV neck, detector losses
and matching, generator decoding (KV cache against the naive reference, nucleus filter, token rules)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

pytest.importorskip('mmcv.ops', reason='mmcv with ops (built by the lead) is not installed')

from interndrive.hdmap.data.map_targets import map_targets, vectorize_map
from interndrive.hdmap.models.bev_neck import BEVResNetNeck
from interndrive.hdmap.models.det_losses import (
    generalized_iou,
    hungarian_match,
    lines_loss,
    sigmoid_focal_loss,
)
from interndrive.hdmap.models.ipm_encoder import ipm_sample, plane_grid
from interndrive.hdmap.models.map_element_detector import MapElementDetector
from interndrive.hdmap.models.polyline_generator import (
    STOP_TOKEN,
    PolylineGenerator,
    nucleus_filter,
)
from interndrive.hdmap.models.vectormapnet import DGHead


def test_plane_grid_inclusive_endpoints():
    grid = plane_grid((-30, 30, 0.3), (-15, 15, 0.3), (-1.1, 0, 0.5, 1.1))
    assert grid.shape == (4, 100, 200, 3)
    assert grid[0, 0, 0].tolist() == pytest.approx([-30, -15, -1.1])
    assert grid[3, -1, -1].tolist() == pytest.approx([30, 15, 1.1])
    assert torch.all(grid[:, :, :, 2] == torch.tensor([-1.1, 0, 0.5, 1.1]).view(4, 1, 1))


def _front_camera(width: int, height: int, focal: float = 20.0) -> torch.Tensor:
    """ego (x fwd, y left, z up) → pixels of a camera looking forward at the ego origin."""
    ego2cam = torch.tensor([[0.0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    k = torch.eye(4)
    k[0, 0] = k[1, 1] = focal
    k[0, 2], k[1, 2] = width / 2, height / 2
    return k @ ego2cam


def test_ipm_sample_picks_the_projected_pixel_and_ignores_cameras_behind():
    h, w = 16, 32  # image; features at stride 1 so the sampled value is the pixel's column
    cols = torch.arange(w, dtype=torch.float32).view(1, 1, 1, 1, w).expand(1, 2, 1, h, w)
    feats = cols.clone()
    feats[:, 1] = 1000.0  # the second camera looks backwards: must never contribute
    front = _front_camera(w, h)
    back = front @ torch.diag(torch.tensor([-1.0, -1, 1, 1]))
    ego2img = torch.stack([front, back]).unsqueeze(0)
    points = torch.tensor(
        [[[[10.0, 0.0, 0.0], [10.0, 2.0, 0.0], [-10.0, 0.0, 0.0]]]]
    )  # (1, 1, 3, 3)
    out, count = ipm_sample(feats, ego2img, points, (h, w))
    # (10, 0): u = 16 → pixel 15.5 centre convention of align_corners=False → bilinear of cols 15 and 16
    assert out[0, 0, 0, 0, 0].item() == pytest.approx(15.5, abs=1e-4)
    # (10, 2) is left of the axis: u = 16 − 20·2/10 = 12
    assert out[0, 0, 0, 0, 1].item() == pytest.approx(11.5, abs=1e-4)
    # (−10, 0) is behind the front camera and in front of the back one
    assert count[0, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert out[0, 0, 0, 0, 2].item() == pytest.approx(1000.0)


def test_bev_neck_shapes_and_resnet18_layer1_size():
    neck = BEVResNetNeck(128, 64, 128)
    assert neck(torch.randn(1, 128, 100, 200)).shape == (1, 128, 25, 50)
    layer1 = sum(p.numel() for p in neck.layer1.parameters())
    assert layer1 == 2 * (2 * 64 * 64 * 9 + 2 * 2 * 64)  # torchvision resnet18().layer1


def test_focal_loss_hand_value():
    logits = torch.tensor([[0.0, 2.0]])
    target = torch.tensor([[1.0, 0.0]])
    p = torch.sigmoid(torch.tensor(2.0)).item()
    expected = 0.25 * 0.5**2 * np.log(2) + 0.75 * p**2 * -np.log(1 - p)
    assert sigmoid_focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_lines_loss_beta_half():
    pred = torch.tensor([[0.0, 0.0, 0.0, 2.0]])
    target = torch.tensor([[0.2, 0.0, 0.0, 0.0]])
    # smooth-L1 beta 0.5: 0.5·0.2²/0.5 = 0.04; |2| − 0.25 = 1.75; summed / 4 coordinates
    assert lines_loss(pred, target).item() == pytest.approx((0.04 + 1.75) / 4)


def test_giou_hand_cases():
    a = torch.tensor([[0.0, 0, 2, 2]])
    b = torch.tensor([[1.0, 1, 3, 3], [4.0, 0, 6, 2]])
    giou = generalized_iou(a, b)[0]
    assert giou[0].item() == pytest.approx(1 / 7 - (9 - 7) / 9)
    assert giou[1].item() == pytest.approx(0 - (12 - 8) / 12)


def test_hungarian_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, generator=g)
    boxes = torch.rand(5, 4, generator=g) * 50
    boxes[:, 2:] += boxes[:, :2]
    gt_boxes = torch.rand(3, 4, generator=g) * 50
    gt_boxes[:, 2:] += gt_boxes[:, :2]
    gt_labels = torch.tensor([0, 2, 1])
    q, gi = hungarian_match(logits, boxes, gt_labels, gt_boxes)
    from interndrive.hdmap.models.det_losses import focal_class_cost

    cost = (2 * focal_class_cost(logits, gt_labels) + 0.1 * torch.cdist(boxes, gt_boxes, p=1)
            - generalized_iou(boxes, gt_boxes))  # fmt: skip
    best = min(
        sum(cost[perm[j], j].item() for j in range(3))
        for perm in itertools.permutations(range(5), 3)
    )
    assert cost[q, gi].sum().item() == pytest.approx(best, rel=1e-6)
    assert sorted(gi.tolist()) == [0, 1, 2]


def test_nucleus_filter_keeps_the_smallest_set_reaching_top_p():
    logits = torch.log(torch.tensor([[0.05, 0.5, 0.15, 0.3]]))
    kept = torch.isfinite(nucleus_filter(logits, 0.7))[0].tolist()
    assert kept == [False, True, False, True]
    kept = torch.isfinite(nucleus_filter(logits, 0.9))[0].tolist()
    assert kept == [False, True, True, True]
    assert torch.isfinite(nucleus_filter(logits, 0.9, top_k=1)).sum() == 1


def _generator(**kw) -> PolylineGenerator:
    torch.manual_seed(0)
    args = dict(in_channels=8, d_model=32, nhead=4, dim_feedforward=64, num_layers=2, dropout=0.0,
                re_zero=False, max_sample_length=12, augmentation=False)  # fmt: skip
    args.update(kw)
    return PolylineGenerator(**args).eval()


def _conditions(n: int = 5):
    g = torch.Generator().manual_seed(1)
    bev = torch.randn(2, 8, 4, 6, generator=g)
    index = torch.tensor([0, 1, 1, 0, 1])[:n]
    labels = torch.tensor([0, 1, 2, 2, 1])[:n]
    bbox = torch.stack([torch.randint(1, 201, (n,), generator=g), torch.randint(1, 101, (n,), generator=g),
                        torch.randint(1, 201, (n,), generator=g), torch.randint(1, 101, (n,), generator=g)], 1)  # fmt: skip
    return bev, index, labels, bbox


def test_kv_cache_decoding_equals_naive_decoding():
    gen = _generator()
    args = _conditions()
    cached = gen.generate(*args, greedy=True)
    naive = gen.generate_naive(*args, greedy=True)
    assert len(cached) == 5
    for a, b in zip(cached, naive, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(len(a) > 2 for a in cached)  # a real sequence, not an immediate stop


def test_sampling_is_seeded_and_respects_token_rules():
    gen = _generator(min_vertices=2)
    args = _conditions()
    torch.manual_seed(3)
    first = gen.generate(*args, greedy=False)
    torch.manual_seed(3)
    second = gen.generate(*args, greedy=False)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
        assert len(a) >= 2  # stop was impossible before the 2nd vertex
        assert a.shape[1] == 2 and np.all(a >= 0) and np.all(a <= 1)
    logits = gen._logits(torch.randn(1, 6, 32), 0)[0]
    assert torch.all(logits[1::2, STOP_TOKEN] < -1e8)  # y positions never stop
    assert torch.all(logits[1::2, 101:] < -1e8)  # y tokens only 1..100
    assert torch.all(logits[:4:2, STOP_TOKEN] < -1e8) and logits[4, STOP_TOKEN] > -1e8


def test_generator_loss_backward_and_teacher_forcing_consistency():
    gen = _generator()
    bev, index, labels, bbox = _conditions(2)
    tokens = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 11, 12, 0]])
    weights = torch.full((2, 5), 0.2)
    gen.train()
    loss = gen.loss(bev, index, labels, bbox, tokens, weights)
    loss.backward()
    assert torch.isfinite(loss)
    assert gen.logits_head.weight.grad.abs().sum() > 0
    assert gen.layers[0].cross_attn.k_proj.weight.grad.abs().sum() > 0


def test_generator_overfits_and_greedy_decoding_reproduces_the_training_sequences():
    """Training (teacher forcing) and inference (KV-cache decoding) must agree on which position
    predicts which token: after fitting two sequences, greedy decoding returns them exactly. An
    off-by-one between `loss` and `generate` (or a wrong condition) makes this fail."""
    gen = _generator(re_zero=True)
    bev, index, labels, bbox = _conditions(2)
    lines = [[10, 20, 30, 40, 50, 60], [150, 5, 80, 90]]  # x, y, x, y, ... (cell + 1)
    tokens = torch.zeros(2, 7, dtype=torch.long)  # STOP-terminated, STOP-padded
    weights = torch.zeros(2, 7)
    for i, line in enumerate(lines):
        tokens[i, : len(line)] = torch.tensor(line)
        weights[i, : len(line) + 1] = 1.0
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    gen.train()
    for _ in range(50):
        opt.zero_grad()
        loss = gen.loss(bev, index, labels, bbox, tokens, weights)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    gen.eval()
    out = gen.generate(bev, index, labels, bbox, greedy=True)
    scale = np.array([199.0, 99.0])
    for line, verts in zip(lines, out, strict=True):
        expected = (np.array(line, dtype=np.float64).reshape(-1, 2) - 1) / scale
        np.testing.assert_allclose(verts, expected)


def _line_targets():
    geoms = {0: [np.array([[-5.0, -3, 0], [5, -3, 0], [5, 3, 0], [-5, 3, 0], [-5, -3, 0]])],
             1: [np.array([[-30.0, 1.5, 0], [30, 1.5, 0]])],
             2: [np.array([[-20.0, -7.5, 0], [0, -7.4, 0], [20, -6, 0]])]}  # fmt: skip
    return map_targets(vectorize_map(geoms))


def test_detection_boxes_are_quantised_like_the_gt():
    polys = _line_targets()
    head = DGHead(dict(in_channels=8, embed_dims=32, num_layers=1, num_heads=4, ffn_dims=32, num_query=6),
                  dict(in_channels=8, d_model=32, nhead=4, dim_feedforward=32, num_layers=1))  # fmt: skip
    q = head.quantize_boxes(torch.as_tensor(polys['keypoint']))
    # the GT keypoints are clipped 0.1 inside the canvas, hence at most one cell apart at the borders
    assert (q - torch.as_tensor(polys['qkeypoint']) - 1).abs().max() <= 1


def test_detector_and_head_losses_on_tiny_bev():
    polys = _line_targets()
    torch.manual_seed(0)
    head = DGHead(dict(in_channels=8, embed_dims=32, num_layers=2, num_heads=4, ffn_dims=32, num_query=6,
                       max_lines=4),
                  dict(in_channels=8, d_model=32, nhead=4, dim_feedforward=32, num_layers=1,
                       max_sample_length=6))  # fmt: skip
    head.init_weights()
    bev = torch.randn(2, 8, 5, 10, requires_grad=True)
    losses = head.loss(bev, [polys, polys])
    assert set(losses) == {
        'd0.loss_det_cls',
        'd0.loss_det_reg',
        'loss_det_cls',
        'loss_det_reg',
        'loss_gen',
    }
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert bev.grad.abs().sum() > 0
    head.eval()
    preds = head.predict(bev.detach(), greedy=True)
    assert len(preds) == 2 and len(preds[0]['scores']) == 4
    assert np.all(np.diff(preds[0]['scores']) <= 0)  # global top-k, best first
    _, boxes = head.det_net(bev.detach())
    assert boxes[-1].shape == (2, 6, 4)
    assert torch.all(boxes[-1][..., 0::2] <= 200) and torch.all(boxes[-1][..., 1::2] <= 100)


def test_detector_rejects_unsupported_bbox_size():
    with pytest.raises(ValueError, match='bbox_size'):
        MapElementDetector(bbox_size=3)
