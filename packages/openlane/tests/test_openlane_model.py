"""RoadBEVFormer parts on CPU: lane geometry vs a float64 reference, relationship targets vs a loop,
the tiny config's losses/gradients/predictions, learning on one batch, and error messages."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip('mmdet3d.models', reason='mmdet3d 1.4 (with mmcv ops) is not installed')

import torch
from mmengine.config import Config
from openlane_model_inputs import make_batch

import interndrive.openlane.registration  # noqa: F401
from interndrive.openlane.bezier import sample_bezier
from interndrive.openlane.models.lane_geometry import decode_control_points, inverse_sigmoid
from interndrive.openlane.models.relationship_head import relationship_targets
from interndrive.openlane.task import TASK

PC_RANGE = [-51.2, -25.6, -2.3, 51.2, 25.6, 1.7]


def _tiny_model(**overrides):
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(TASK.config_dir / 'olv2_tiny_cpu.py')
    cfg.model.update(overrides)
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def test_decode_control_points_matches_float64_reference():
    gen = torch.Generator().manual_seed(0)
    reg = torch.randn(2, 7, 15, generator=gen)
    ref = torch.rand(2, 7, 3, generator=gen)
    out = decode_control_points(reg, ref, PC_RANGE, 5).double()
    expected = np.empty((2, 7, 5, 3))
    r, f = reg.double().numpy(), ref.double().numpy()
    for b, q, k, d in itertools.product(range(2), range(7), range(5), range(3)):
        logit = r[b, q, 3 * k + d] + np.log(f[b, q, d] / (1 - f[b, q, d]))
        unit = 1 / (1 + np.exp(-logit))
        expected[b, q, k, d] = PC_RANGE[d] + unit * (PC_RANGE[d + 3] - PC_RANGE[d])
    np.testing.assert_allclose(out.reshape(2, 7, 5, 3).numpy(), expected, atol=1e-4)
    # Every decoded point lies in the point-cloud range.
    pts = out.reshape(-1, 3)
    assert (pts >= torch.tensor(PC_RANGE[:3]).double() - 1e-4).all()
    assert (pts <= torch.tensor(PC_RANGE[3:]).double() + 1e-4).all()


def test_inverse_sigmoid_inverts_sigmoid():
    x = torch.linspace(-6, 6, 50)
    torch.testing.assert_close(inverse_sigmoid(x.sigmoid()), x, atol=1e-3, rtol=1e-3)


def test_relationship_targets_match_loop():
    gen = torch.Generator().manual_seed(1)
    gt = (torch.rand(6, 4, generator=gen) > 0.5).float()
    q1, g1 = torch.tensor([3, 0, 7]), torch.tensor([5, 1, 2])
    q2, g2 = torch.tensor([2, 9]), torch.tensor([0, 3])
    out = relationship_targets(gt, (q1, g1), (q2, g2), 10, 12)
    expected = torch.zeros(10, 12)
    for a, i in zip(q1.tolist(), g1.tolist(), strict=True):
        for b, j in zip(q2.tolist(), g2.tolist(), strict=True):
            expected[a, b] = gt[i, j]
    torch.testing.assert_close(out, expected)
    assert relationship_targets(gt, (q1, g1), (q2[:0], g2[:0]), 10, 12).sum() == 0


@pytest.mark.slow  # 8–23 s on 2 busy cores (batch of 2, forward, backward, predict)
def test_tiny_model_losses_gradients_and_predictions():
    model = _tiny_model()
    inputs, samples = make_batch(batch=2)
    losses = model(inputs, samples, mode='loss')
    expected = {'loss_lane_cls', 'loss_lane_reg', 'loss_te_cls', 'loss_te_bbox', 'loss_te_iou',
                'loss_lclc', 'loss_lcte', 'd0.loss_lane_cls', 'd0.loss_lane_reg', 'd0.loss_te_cls',
                'd0.loss_te_bbox', 'd0.loss_te_iou'}  # fmt: skip
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:10]

    model.eval()
    out = model(inputs, make_batch(batch=2)[1], mode='predict')
    sample = out[0]
    assert sample.pred_lc.shape == (20, 15) and sample.pred_lc_scores.shape == (20,)
    assert sample.pred_te.shape == (10, 4) and sample.pred_te_labels.shape == (10,)
    assert sample.pred_topology_lclc.shape == (20, 20)
    assert sample.pred_topology_lcte.shape == (20, 10)
    front_h, front_w = sample.metainfo['img_shape'][0]
    assert (sample.pred_te[:, 0::2] <= front_w).all() and (sample.pred_te[:, 1::2] <= front_h).all()
    assert (sample.pred_te[:, 2:] >= sample.pred_te[:, :2]).all()  # xyxy
    for key in ('pred_lc_scores', 'pred_te_scores', 'pred_topology_lclc', 'pred_topology_lcte'):
        value = getattr(sample, key)
        assert ((value >= 0) & (value <= 1)).all(), key


@pytest.mark.slow  # 13 optimisation steps: 15–55 s on 2 busy cores
def test_tiny_model_fits_one_batch():
    """A few AdamW steps on one batch lower the lane, TE and topology losses (the heads learn)."""
    model = _tiny_model()
    inputs, samples = make_batch(batch=1, seed=3)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(12):
        losses = model(inputs, samples, mode='loss')
        if first is None:
            first = {k: float(v) for k, v in losses.items()}
        optim.zero_grad()
        sum(losses.values()).backward()
        optim.step()
    last = {k: float(v) for k, v in model(inputs, samples, mode='loss').items()}
    for key in ('loss_lane_cls', 'loss_lane_reg', 'loss_te_cls', 'loss_lclc'):
        assert last[key] < first[key], (key, first[key], last[key])


def test_batch_without_traffic_elements_zeroes_te_losses():
    model = _tiny_model()
    inputs, samples = make_batch(batch=1, num_tes=0)
    losses = model(inputs, samples, mode='loss')
    for key in ('loss_te_cls', 'loss_te_bbox', 'loss_te_iou', 'loss_lcte'):
        assert float(losses[key]) == 0.0, key
    sum(losses.values()).backward()  # the graph stays whole
    assert model.te_head.cls_branches[0][-1].weight.grad is not None


def test_error_messages():
    model = _tiny_model()
    inputs, samples = make_batch(batch=1)
    samples[0].gt_lc = torch.zeros(3, 12)
    with pytest.raises(ValueError, match=r'gt_lc has shape \(3, 12\), expected \(L, 15\)'):
        model(inputs, samples, mode='loss')
    inputs, samples = make_batch(batch=1)
    del samples[0].gt_lc
    with pytest.raises(KeyError, match=r"has no 'gt_lc'.*OLV2ParameterizeLane"):
        model(inputs, samples, mode='loss')
    inputs, samples = make_batch(batch=1)
    samples[0].gt_te_labels = torch.tensor([0, 13])
    with pytest.raises(ValueError, match=r'gt_te_labels outside 0\.\.12'):
        model(inputs, samples, mode='loss')
    with pytest.raises(ValueError, match=r'img must be \(B, N, 3, H, W\)'):
        model({'img': torch.zeros(7, 3, 32, 32)}, samples, mode='loss')
    with pytest.raises(ValueError, match="mode must be 'loss', 'predict' or 'tensor'"):
        model(inputs, samples, mode='train')


def test_lane_head_rejects_mismatched_cost_weights():
    from mmdet3d.registry import MODELS

    with pytest.raises(ValueError, match='assigner cost weights must equal the loss weights'):
        MODELS.build(
            dict(
                type='LaneDETRHead', bev_h=4, bev_w=8, pc_range=PC_RANGE, embed_dims=32,
                loss_reg=dict(type='L1Loss', loss_weight=0.5),
            )
        )  # fmt: skip


def test_predictions_round_trip_through_the_metric_format():
    """Predicted control points are sampled at 11 points like upstream's `format_preds`."""
    from interndrive.openlane.targets import format_predictions

    model = _tiny_model().eval()
    inputs, samples = make_batch(batch=1)
    sample = model(inputs, samples, mode='predict')[0]
    pred = format_predictions(
        sample.pred_lc.numpy(), sample.pred_lc_scores.numpy(), sample.pred_te.numpy(),
        sample.pred_te_labels.numpy(), sample.pred_te_scores.numpy(),
        sample.pred_topology_lclc.numpy(), sample.pred_topology_lcte.numpy(),
    )  # fmt: skip
    lane = pred['lane_centerline'][0]['points']
    assert lane.shape == (11, 3)
    np.testing.assert_allclose(lane[0], sample.pred_lc[0, :3].numpy(), atol=1e-4)  # fixed ends
    np.testing.assert_allclose(
        lane, sample_bezier(sample.pred_lc[0].numpy().reshape(5, 3), 11), atol=1e-4
    )
