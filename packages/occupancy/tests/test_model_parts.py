"""GridMask, the voxel decoder and the occupancy loss (pure torch, fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from interndrive.occupancy.models.grid_mask import GridMask, grid_mask_pattern
from interndrive.occupancy.models.occ_decoder import OccupancyDecoder, occupancy_loss


def upstream_grid(hh: int, ww: int, d: int, length: int, st_h: int, st_w: int) -> np.ndarray:
    """Upstream GridMask's loops (numpy), before rotation and cropping."""
    mask = np.ones((hh, ww), np.float32)
    for i in range(hh // d):
        s = d * i + st_h
        mask[s : min(s + length, hh), :] *= 0
    for i in range(ww // d):
        s = d * i + st_w
        mask[:, s : min(s + length, ww)] *= 0
    return mask


@pytest.mark.parametrize(
    ('hh', 'ww', 'd', 'length', 'st_h', 'st_w'),
    [(15, 22, 4, 2, 0, 3), (30, 45, 7, 3, 6, 1), (9, 9, 8, 4, 7, 7), (48, 64, 2, 1, 1, 0)],
)
def test_grid_pattern_matches_upstream_loops(hh, ww, d, length, st_h, st_w) -> None:
    ours = grid_mask_pattern(hh, ww, d, length, st_h, st_w).numpy()
    np.testing.assert_array_equal(ours, upstream_grid(hh, ww, d, length, st_h, st_w))


def test_grid_mask_train_eval_and_reproducibility() -> None:
    images = torch.rand(12, 3, 32, 48)
    module = GridMask(prob=1.0)
    module.eval()
    assert module(images) is images  # inference never masks
    module.train()
    torch.manual_seed(3)
    first = module(images)
    torch.manual_seed(3)
    second = module(images)
    assert torch.equal(first, second)  # draws come from torch's (reseeded) generator
    zeroed = first == 0
    assert 0 < zeroed.float().mean() < 1
    # One mask for the whole batch and every channel (upstream expands one mask).
    assert torch.equal(zeroed[0], zeroed[-1]) and torch.equal(zeroed[0, 0], zeroed[0, 2])
    assert torch.equal(GridMask(prob=0.0).train()(images), images)


def test_grid_mask_rotation_and_noise_offset() -> None:
    torch.manual_seed(0)
    rotated = GridMask(prob=1.0, rotate=90).make_mask(40, 40)
    assert rotated.shape == (40, 40) and set(rotated.unique().tolist()) <= {0.0, 1.0}
    torch.manual_seed(0)
    out = GridMask(prob=1.0, offset=True).train()(torch.zeros(2, 3, 16, 16))
    assert out.abs().sum() > 0  # masked area filled with noise instead of zeros


def test_grid_mask_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match='prob'):
        GridMask(prob=1.5)
    with pytest.raises(ValueError, match='mode'):
        GridMask(mode=2)


def test_decoder_output_axes_are_x_y_z() -> None:
    """A BEV cell at row i (y), column j (x) only influences voxels near [x=j, y=i]."""
    torch.manual_seed(0)
    decoder = OccupancyDecoder(embed_dims=32, pillar_h=4, num_classes=5, out_dim=8, occ_size=None)
    decoder.eval()
    bev = torch.zeros(1, 32, 12, 20)  # (B, C, bev_h = y, bev_w = x)
    base = decoder(bev)
    assert base.shape == (1, 20, 12, 4, 5)
    bev[0, :, 3, 15] = 5.0  # y = 3, x = 15
    changed = (decoder(bev) - base).abs().sum(dim=(0, 3, 4)) > 1e-6  # (X, Y)
    xs, ys = torch.nonzero(changed, as_tuple=True)
    assert changed[15, 3]
    assert xs.min() >= 13 and xs.max() <= 17 and ys.min() >= 1 and ys.max() <= 5  # 2 convs: ±2


def test_decoder_channels_split_into_heights() -> None:
    """BEV channel c is feature c // pillar_h at height c % pillar_h (upstream's view)."""
    torch.manual_seed(0)
    decoder = OccupancyDecoder(embed_dims=32, pillar_h=8, num_classes=3, out_dim=4, occ_size=None)
    decoder.eval()
    bev = torch.zeros(1, 32, 6, 6)
    base = decoder(bev)
    bev[0, 0::8] = 1.0  # the 4 features of height 0
    changed = (decoder(bev) - base).abs().sum(dim=(0, 1, 2, 4)) > 1e-6  # per z
    assert changed[:3].all() and not changed[3:].any()  # two 3×3×3 convs reach z ≤ 0 + 2


def test_decoder_upsamples_to_occ_size_and_checks_arguments() -> None:
    decoder = OccupancyDecoder(embed_dims=32, pillar_h=16, num_classes=18, out_dim=8)
    logits = decoder(torch.randn(2, 32, 5, 5))
    assert logits.shape == (2, 200, 200, 16, 18)
    with pytest.raises(ValueError, match='divisible'):
        OccupancyDecoder(embed_dims=30, pillar_h=16)
    with pytest.raises(ValueError, match='occ_size'):
        OccupancyDecoder(embed_dims=32, pillar_h=16, occ_size=(200, 200, 8))
    with pytest.raises(ValueError, match='BEV channels'):
        decoder(torch.randn(1, 64, 5, 5))


def test_loss_plain_and_camera_mask_weighted() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 5, 4, 18, dtype=torch.float64)
    labels = torch.randint(0, 18, (2, 6, 5, 4), dtype=torch.uint8)
    mask = torch.rand(2, 6, 5, 4) < 0.3
    plain = occupancy_loss(logits, labels)
    expected = F.cross_entropy(logits.reshape(-1, 18), labels.reshape(-1).long())
    assert torch.allclose(plain.double(), expected)
    masked = occupancy_loss(logits, labels, mask.to(torch.uint8))
    reference = F.cross_entropy(logits[mask], labels[mask].long())  # mean over visible voxels only
    assert torch.allclose(masked.double(), reference)
    # Invisible voxels do not matter at all with the mask, but do without it.
    other = labels.clone()
    other[~mask] = (other[~mask] + 1) % 18
    assert torch.allclose(occupancy_loss(logits, other, mask.to(torch.uint8)), masked)
    assert not torch.allclose(occupancy_loss(logits, other), plain)
    # No visible voxel: 0, not NaN.
    assert occupancy_loss(logits, labels, torch.zeros_like(mask)).item() == 0.0
    weights = torch.arange(1, 19, dtype=torch.float64)
    weighted = occupancy_loss(logits, labels, class_weight=weights)
    per_voxel = F.cross_entropy(logits.reshape(-1, 18), labels.reshape(-1).long(), reduction='none')
    assert torch.allclose(
        weighted.double(), (per_voxel * weights[labels.reshape(-1).long()]).mean()
    )


def test_loss_rejects_labels_out_of_range() -> None:
    with pytest.raises(ValueError, match=r'labels must be in \[0, 18\)'):
        occupancy_loss(torch.zeros(4, 18), torch.tensor([0, 1, 18, 2]))
