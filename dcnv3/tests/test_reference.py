"""The pure-PyTorch reference against a loop-by-loop transcription of the CUDA math."""

from __future__ import annotations

import pytest
import torch
from dcnv3_naive import dcnv3_naive
from dcnv3_test_utils import Config

from dcnv3.reference import dcnv3_reference, kernel_grid

CONFIGS = [
    Config(),
    Config(
        group=3,
        group_channels=2,
        kernel_h=3,
        kernel_w=2,
        stride_h=2,
        pad_h=2,
        pad_w=0,
        dilation_h=2,
        offset_scale=0.5,
        remove_center=True,
    ),
    Config(
        group=1,
        group_channels=3,
        kernel_h=5,
        kernel_w=3,
        stride_w=2,
        pad_h=0,
        dilation_w=2,
        offset_scale=2.0,
    ),
    Config(kernel_h=1, kernel_w=1, pad_h=0, pad_w=0),
    Config(pad_h=2, pad_w=0, offset_std=0.5),  # non-square pad: upstream's reference swaps them
]


@pytest.mark.parametrize('cfg', CONFIGS, ids=str)
def test_reference_matches_naive_math(cfg: Config) -> None:
    x, off, mask = cfg.inputs()
    expected = dcnv3_naive(x, off, mask, *cfg.args())
    torch.testing.assert_close(dcnv3_reference(x, off, mask, *cfg.args()), expected)


def test_kernel_grid_order_is_x_outer_and_skips_centre() -> None:
    grid = kernel_grid(3, 2, 1, 1, False)
    # point index = i * kernel_h + j with i over x: x changes slowest.
    assert grid.tolist() == [[0, -1], [0, 0], [0, 1], [1, -1], [1, 0], [1, 1]]
    grid = kernel_grid(3, 3, 1, 1, True)
    assert len(grid) == 8 and [0, 0] not in grid.tolist()


def test_zero_offset_uniform_mask_is_box_filter() -> None:
    """With zero offsets and a uniform mask DCNv3 is a 3x3 mean filter with zero padding."""
    cfg = Config(n=1, group=1, group_channels=1, offset_std=0.0)
    x, off, _ = cfg.inputs()
    mask = torch.full((1, 7, 6, 9), 1 / 9, dtype=torch.float64)
    out = dcnv3_reference(x, off, mask, *cfg.args())
    box = torch.nn.functional.avg_pool2d(
        x.permute(0, 3, 1, 2), 3, stride=1, padding=1, count_include_pad=True
    ).permute(0, 2, 3, 1)
    torch.testing.assert_close(out, box)


def test_reference_empty_batch() -> None:
    cfg = Config(n=0)
    x, off, mask = cfg.inputs()
    out = dcnv3_reference(x, off, mask, *cfg.args())
    assert out.shape == (0, 7, 6, 8)
