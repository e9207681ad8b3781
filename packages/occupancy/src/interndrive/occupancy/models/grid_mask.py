"""GridMask augmentation of the camera images (upstream `GridMask`, device-agnostic).

Upstream (`projects/mmdet3d_plugin/models/utils/grid_mask.py`) builds the mask with numpy/PIL and
moves it with `.cuda()`, which breaks CPU training. Here the mask is made with torch on the images'
device; the random draws come from torch's CPU generator (whatever the device, so CPU and GPU runs
draw the same masks), which the interndrive training loops reseed every iteration, so a resumed run
draws the same masks.

Pure PyTorch (no mmcv): an `nn.Module` that is a no-op in eval mode.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def grid_mask_pattern(
    height: int,
    width: int,
    period: int,
    length: int,
    start_h: int,
    start_w: int,
    use_h: bool = True,
    use_w: bool = True,
    device: torch.device | str | None = None,
) -> Tensor:
    """The (unrotated, uncropped) 0/1 grid of upstream: ones except stripes of `length` every `period`.

    Args:
        height: Rows of the pattern (upstream draws it 1.5× larger than the image, then crops).
        width: Columns of the pattern.
        period: Distance between stripe starts (`d`).
        length: Stripe thickness (`l`).
        start_h: Offset of the first horizontal stripe.
        start_w: Offset of the first vertical stripe.
        use_h: Draw horizontal stripes.
        use_w: Draw vertical stripes.
        device: Where to allocate.

    Returns:
        `(height, width)` float tensor with 0 on the stripes.
    """
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    keep_rows = torch.ones(height, dtype=torch.bool, device=device)
    keep_cols = torch.ones(width, dtype=torch.bool, device=device)
    # Upstream loops i in range(size // d) and zeroes [d*i + st, d*i + st + l): same stripes here.
    if use_h:
        offset = rows - start_h
        stripe = (offset >= 0) & (offset % period < length) & (offset // period < height // period)
        keep_rows &= ~stripe
    if use_w:
        offset = cols - start_w
        stripe = (offset >= 0) & (offset % period < length) & (offset // period < width // period)
        keep_cols &= ~stripe
    return (keep_rows[:, None] & keep_cols[None, :]).float()


def _randint(low: int, high: int | None = None) -> int:
    """An int from `[low, high)` (or `[0, low)`) drawn from torch's CPU generator."""
    if high is None:
        low, high = 0, low
    return int(torch.randint(low, high, ()).item())


def _rotate(mask: Tensor, degrees: float) -> Tensor:
    """Rotates a 2-D mask about its centre (nearest, zeros outside) with affine_grid/grid_sample."""
    if degrees == 0:
        return mask
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    height, width = mask.shape
    # Normalised coordinates are anisotropic; scale so the rotation is a true rotation in pixels.
    theta = torch.tensor(
        [[cos, -sin * height / width, 0.0], [sin * width / height, cos, 0.0]],
        dtype=mask.dtype,
        device=mask.device,
    )
    grid = F.affine_grid(theta[None], [1, 1, height, width], align_corners=False)
    return F.grid_sample(mask[None, None], grid, mode='nearest', align_corners=False)[0, 0]


class GridMask(nn.Module):
    """Zeroes a regular grid of stripes on all images of a batch (one mask shared by the batch).

    Args:
        use_h: Horizontal stripes.
        use_w: Vertical stripes.
        rotate: Rotation drawn from `[0, rotate)` degrees (upstream: 1, i.e. never rotated).
        offset: Fill the masked area with random noise instead of zeros.
        ratio: Stripe thickness relative to the period.
        mode: 1 inverts the grid (upstream config), 0 keeps it.
        prob: Probability of applying the mask to a batch (upstream: 0.7).
    """

    def __init__(
        self,
        use_h: bool = True,
        use_w: bool = True,
        rotate: int = 1,
        offset: bool = False,
        ratio: float = 0.5,
        mode: int = 1,
        prob: float = 0.7,
    ) -> None:
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'GridMask: prob must be in [0, 1], got {prob}')
        if mode not in (0, 1):
            raise ValueError(f'GridMask: mode must be 0 or 1, got {mode}')
        if rotate < 1:
            raise ValueError(
                f'GridMask: rotate must be >= 1 (degrees drawn from [0, rotate)), got {rotate}'
            )
        self.use_h = use_h
        self.use_w = use_w
        self.rotate = rotate
        self.offset = offset
        self.ratio = ratio
        self.mode = mode
        self.prob = prob

    def make_mask(
        self, height: int, width: int, device: torch.device | str | None = None
    ) -> Tensor:
        """Draws one `(height, width)` mask (1 = keep) with upstream's random recipe."""
        big_h, big_w = int(1.5 * height), int(1.5 * width)
        period = _randint(2, max(height, 3))
        length = min(max(int(period * self.ratio + 0.5), 1), period - 1)
        start_h = _randint(period)
        start_w = _randint(period)
        mask = grid_mask_pattern(
            big_h, big_w, period, length, start_h, start_w, self.use_h, self.use_w, device
        )
        mask = _rotate(mask, float(_randint(self.rotate)))
        top, left = (big_h - height) // 2, (big_w - width) // 2
        mask = mask[top : top + height, left : left + width]
        return 1.0 - mask if self.mode == 1 else mask

    def forward(self, images: Tensor) -> Tensor:
        """Masks `(..., H, W)` images in training mode with probability `prob`."""
        if not self.training or float(torch.rand(())) > self.prob:
            return images
        height, width = images.shape[-2:]
        mask = self.make_mask(height, width, images.device).to(images.dtype)
        if self.offset:
            noise = (2 * (torch.rand(height, width) - 0.5)).to(images)
            return images * mask + noise * (1 - mask)
        return images * mask
